"""Inflating popularity: crawlers are not counted, and one visitor counts once."""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests.harness import BEACON, all_rows, beacon_event
from tests.security.helpers import BROWSER, OpenSite, page_token

GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def _browser(n: int) -> dict[str, str]:
    return {"User-Agent": f"{BROWSER} Visitor/{n}", "Sec-Fetch-Site": "same-origin"}


def test_a_spamming_visitor_and_crawlers_do_not_make_an_item_popular(
    adapter: str, tmp_path: Any, open_site: OpenSite
) -> None:
    url = f"sqlite:///{tmp_path / 'popular.db'}"
    client, penchant = open_site(adapter, url, popular_ttl=0.01, visitor_rate_limit=0)
    for _ in range(40):  # one visitor, over and over
        client.get("/procedures/7", headers=_browser(0))
    for n in range(1, 4):  # three different people, once each
        client.get("/procedures/3", headers=_browser(n))
    for _ in range(40):  # a crawler
        client.get("/procedures/5", headers={"User-Agent": GOOGLEBOT})
    # A crawler's beacon (even with a page token it obtained) is dropped too.
    token = page_token(client, {"User-Agent": GOOGLEBOT, "Sec-Fetch-Site": "same-origin"})
    body = json.dumps({"token": token, "events": [beacon_event(uuid.uuid4().hex, target_id=5)]})
    reply = client.post(
        BEACON, body, headers={"User-Agent": GOOGLEBOT, "Content-Type": "text/plain"}
    )
    assert reply.status == 202
    assert penchant.flush(10)
    assert penchant.refresh_popularity()

    rows = all_rows(url, "user_interactions")
    assert not [r for r in rows if r["target_id"] == 5]
    assert len([r for r in rows if r["target_id"] == 7]) == 40  # stored, but one visitor

    newcomer = client.get("/personalization/recommendations/procedures", headers=_browser(99))
    ranked = [r["id"] for r in newcomer.json()["recommendations"]]
    assert 3 in ranked
    assert 7 not in ranked or ranked.index(3) < ranked.index(7)
    popularity = penchant.popularity()
    assert popularity.of("procedure", 3) == 3
    assert popularity.of("procedure", 7) == 1
    assert popularity.of("procedure", 5) == 0
