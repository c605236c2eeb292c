"""Headless Debian Chromium for the browser tests: one set of flags, one availability check."""

from __future__ import annotations

import os

import pytest

CHROMIUM = "/usr/bin/chromium"
# A desktop browser's User-Agent: headless Chromium's own is on the crawler list.
DESKTOP_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_args(*, user_agent: str | None = None, lang: str | None = None) -> list[str]:
    """Launch flags; the User-Agent and language go here, not per context (beacons
    sent while a page unloads escape per-context overrides)."""
    args = list(_FLAGS)
    if user_agent is not None:
        args.append(f"--user-agent={user_agent}")
    if lang is not None:
        args.append(f"--lang={lang}")
    return args


def require_chromium() -> None:
    """Skip without Chromium, except under CI=true, where its absence is a failure."""
    if os.path.exists(CHROMIUM):
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and no Chromium at {CHROMIUM}")
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
