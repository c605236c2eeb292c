"""After a visitor opts out, no table holds anything under their id."""

from __future__ import annotations

from typing import Any

from tests.harness import all_rows, every_value
from tests.security.helpers import SAME_ORIGIN, OpenSite


def _opt_out_after_browsing(adapter: str, database_url: str, open_site: OpenSite) -> str:
    client, penchant = open_site(adapter, database_url)
    for pid in (1, 2, 3):
        client.get(f"/procedures/{pid}", headers=SAME_ORIGIN)
    assert penchant.flush(10)
    (user_id,) = {r["user_id"] for r in all_rows(database_url, "user_interactions")}
    # A page showed this visitor a list (the holdout comparison's record of it).
    penchant.record_exposure(
        user_id=user_id,
        session_id="s",
        page_view_id="0" * 32,
        variant=penchant.variant(user_id),
        content_type="procedures",
        recommendations=penchant.recommend("procedures", user_id, limit=3),
    )
    assert penchant.flush(10)
    penchant.report()  # writes the buffered exposures
    reply = client.post("/personalization/opt-out", headers=SAME_ORIGIN)
    assert reply.status == 303
    assert penchant.flush(10)
    return user_id


def test_opting_out_erases_interactions_and_affinities(
    adapter: str, database_url: str, open_site: OpenSite
) -> None:
    user_id = _opt_out_after_browsing(adapter, database_url, open_site)
    for table in ("user_interactions", "user_category_affinity"):
        assert [r for r in all_rows(database_url, table) if r["user_id"] == user_id] == []


def test_opting_out_leaves_the_visitors_id_in_no_table(
    adapter: str, database_url: str, open_site: OpenSite
) -> None:
    user_id = _opt_out_after_browsing(adapter, database_url, open_site)
    leftovers: list[Any] = [(t, c) for t, c, v in every_value(database_url) if user_id in v]
    assert leftovers == []
