"""A page that used the visitor (its recommendations, its page token) is that
visitor's: no shared cache may keep it and hand it to the next one. Both adapters."""

from __future__ import annotations

from typing import Any

from tests.security.helpers import SAME_ORIGIN, OpenSite


def _cache_control(reply: Any) -> list[str]:
    return [v.strip().lower() for h in reply.all("Cache-Control") for v in h.split(",")]


def _vary(reply: Any) -> list[str]:
    return [v.strip().lower() for h in reply.all("Vary") for v in h.split(",")]


def test_a_personalized_page_is_private(adapter: str, tmp_path: Any, open_site: OpenSite) -> None:
    client, _ = open_site(adapter, f"sqlite:///{tmp_path / 'private.db'}")
    # The procedure page shows "Because you viewed ..." reasons; the home page the
    # tracker's tag with a token bound to this visitor.
    for path in ("/procedures/1", "/"):
        reply = client.get(path, headers=SAME_ORIGIN)
        assert reply.status == 200
        assert "private" in _cache_control(reply), (path, reply.headers)
        assert "cookie" in _vary(reply), (path, reply.headers)
    # A response that never asked for the visitor is left as the host made it.
    untouched = client.get("/api/ping", headers=SAME_ORIGIN)
    assert untouched.all("Cache-Control") == [] and untouched.all("Vary") == []


def test_a_visitor_who_may_not_be_tracked_still_gets_a_private_page(
    adapter: str, tmp_path: Any, open_site: OpenSite
) -> None:
    client, _ = open_site(adapter, f"sqlite:///{tmp_path / 'gpc.db'}")
    reply = client.get("/", headers={**SAME_ORIGIN, "Sec-GPC": "1"})
    # The tag says "send nothing" to this visitor: a cached copy would say it to others.
    assert "private" in _cache_control(reply)
    assert "cookie" in _vary(reply)


def test_a_site_that_caches_its_pages_can_turn_it_off(
    adapter: str, tmp_path: Any, open_site: OpenSite
) -> None:
    client, _ = open_site(adapter, f"sqlite:///{tmp_path / 'public.db'}", cache_private=False)
    reply = client.get("/procedures/1", headers=SAME_ORIGIN)
    assert reply.status == 200
    assert "private" not in _cache_control(reply)
