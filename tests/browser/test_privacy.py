"""Headless Chromium: a visitor browses, opts out on the privacy page, browses on.

Afterwards the database holds nothing of them: what was recorded before is
erased, and nothing after the opt-out is recorded, neither by the server (page
views) nor by the tracker (clicks).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("playwright.sync_api")

import uvicorn
from playwright.sync_api import Browser, sync_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from penchant import Penchant
from tests.browser.chromium import CHROMIUM, DESKTOP_USER_AGENT, chromium_args, require_chromium
from tests.harness import URL_PATTERNS, all_rows, catalog

pytestmark = pytest.mark.browser

USER_AGENT = DESKTOP_USER_AGENT
ARGS = chromium_args(user_agent=USER_AGENT, lang="en-US")


def _page(request: Request, title: str) -> HTMLResponse:
    p = request.state.personalization
    cards = "".join(
        f'<a class="card" href="{r.item.url}" data-penchant-type="{r.item.target_type}" '
        f'data-penchant-id="{r.item.id}">{r.item.name}</a> '
        for r in p.procedures()
    )
    return HTMLResponse(
        f"<!doctype html><html><head><title>{title}</title>{p.script_tag()}</head><body>"
        f"<h1>{title}</h1><nav>{cards}</nav>"
        f'<a id="privacy" href="{p.privacy_url}">Privacy</a></body></html>'
    )


async def home(request: Request) -> HTMLResponse:
    return _page(request, "Home")


async def procedure(request: Request) -> HTMLResponse:
    return _page(request, f"Procedure {request.path_params['id']}")


class Server:
    def __init__(self, app: Any) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_chromium()
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield instance
        instance.close()


@pytest.mark.parametrize("mode", ["opt-out", "opt-in"])
def test_opting_out_in_the_browser_leaves_nothing(
    browser: Browser, tmp_path: Path, mode: str
) -> None:
    url = f"sqlite:///{tmp_path / 'browser.db'}"
    penchant = Penchant(
        database_url=url,
        secret_key="browser-secret-0123456789abcdef",
        catalog=catalog(),
        url_patterns=URL_PATTERNS,
        holdout=0.0,
        flush_interval=0.05,
        allow_webdriver=True,
        consent=mode,
    )
    penchant.init_db()
    app = penchant.asgi(
        Starlette(routes=[Route("/", home), Route("/procedures/{id:int}", procedure)])
    )
    context = browser.new_context()
    page = context.new_page()
    try:
        with Server(app) as base:
            page.goto(f"{base}/")
            if mode == "opt-in":
                # Nothing before consent; the privacy page's plain form gives it.
                page.click("#privacy")
                page.click("text=Allow personalization")
                page.wait_for_url("**/personalization/privacy")
                page.goto(f"{base}/")
            page.click("a.card >> nth=0")
            page.wait_for_url("**/procedures/*")
            page.goto(f"{base}/procedures/4")
            assert penchant.flush(timeout=5.0)
            recorded = all_rows(url)
            assert {r["interaction_type"] for r in recorded} >= {"view", "click"}

            page.click("#privacy")
            page.click("text=Turn personalization off and delete my data")
            page.wait_for_url("**/personalization/privacy")
            assert "you opted out" in page.content()
            assert penchant.flush(timeout=5.0)
            assert all_rows(url) == []
            reached = penchant.health()["accepted"]

            # Browse on: the server records no view, the tracker sends no click.
            page.goto(f"{base}/")
            assert 'data-off="1"' in page.content()
            page.click("a.card >> nth=1")
            page.wait_for_url("**/procedures/*")
            page.goto(f"{base}/procedures/2", wait_until="networkidle")
            page.close(run_before_unload=True)
            # One more page of the same visitor: anything sent at unload has arrived by now.
            last = context.new_page()
            last.goto(f"{base}/", wait_until="networkidle")
            assert penchant.flush(timeout=5.0)
            # Nothing reached penchant at all: not even a beacon to drop.
            assert penchant.health()["accepted"] == reached
            assert all_rows(url) == []
            assert penchant.health()["stored"] == len(recorded)
    finally:
        context.close()
        penchant.close(timeout=5.0)
