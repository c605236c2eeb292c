"""Shared pieces of the security tests: their visitor of the small site, and what the
page and the database show of it."""

from __future__ import annotations

from collections.abc import Callable

from penchant import Penchant
from tests.harness import Client, all_rows

__all__ = ["BROWSER", "SAME_ORIGIN", "OpenSite", "page_token", "page_views"]

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAME_ORIGIN = {"User-Agent": BROWSER, "Accept-Language": "en-GB", "Sec-Fetch-Site": "same-origin"}

OpenSite = Callable[..., tuple[Client, Penchant]]


def page_token(client: Client, headers: dict[str, str] | None = None) -> str:
    """The beacon token the page hands to this visitor's tracker (one is handed out)."""
    token = client.token(headers=headers or SAME_ORIGIN)
    assert token, "the page handed this visitor no token"
    return token


def page_views(database_url: str) -> int:
    """How many page views are stored."""
    return sum(1 for r in all_rows(database_url) if r["interaction_type"] == "view")
