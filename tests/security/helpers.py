"""Shared pieces of the security tests."""

from __future__ import annotations

import re
from collections.abc import Callable

from penchant import Penchant
from tests.reliability.sites import SiteClient

__all__ = ["BROWSER", "SAME_ORIGIN", "TOKEN", "OpenSite", "page_token"]

TOKEN = re.compile(r'data-token="([^"]*)"')
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAME_ORIGIN = {"User-Agent": BROWSER, "Accept-Language": "en-GB", "Sec-Fetch-Site": "same-origin"}

OpenSite = Callable[..., tuple[SiteClient, Penchant]]


def page_token(client: SiteClient, headers: dict[str, str] | None = None) -> str:
    """The beacon token the page hands to this visitor's tracker."""
    reply = client.get("/", headers=headers or SAME_ORIGIN)
    found = TOKEN.search(reply.text)
    assert found is not None and found.group(1), reply.text
    return found.group(1)
