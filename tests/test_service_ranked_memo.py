"""A visitor's ranked lists are reused only while what they were ranked from holds."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from penchant import Catalog, Category, Item, Penchant
from tests.harness import Clock

CATALOG = Catalog(
    [Category(1, "Injectables"), Category(2, "Laser")],
    [Item("procedure", i, f"P{i}", ((i % 2) + 1,)) for i in range(1, 9)],
)
VISITOR = "m" * 32


def _ranking_calls(penchant: Penchant, monkeypatch: Any) -> list[str]:
    from penchant.engine import ranking

    calls: list[str] = []
    real = ranking.recommend

    def counting(content_type: str, **kwargs: Any) -> Any:
        calls.append(content_type)
        return real(content_type, **kwargs)

    monkeypatch.setattr(ranking, "recommend", counting)
    return calls


def test_lists_are_reused_until_profile_popularity_catalog_or_time_moves(
    database_url: str, monkeypatch: Any
) -> None:
    clock = Clock(datetime(2026, 11, 30, 12, 0, 0))
    penchant = Penchant(
        database_url=database_url,
        secret_key="k-0123456789abcdef",
        catalog=CATALOG,
        holdout=0.0,
        clock=clock,
    )
    penchant.init_db()
    assert penchant.track("click", "procedure", 3, user_id=VISITOR)
    assert penchant.flush(timeout=10)
    calls = _ranking_calls(penchant, monkeypatch)
    first = penchant.recommend("procedures", VISITOR, limit=3)
    assert penchant.recommend("procedures", VISITOR, limit=3) == first
    assert calls == ["procedures"]  # ranked once
    # another length or list is ranked on its own
    penchant.recommend("procedures", VISITOR, limit=2)
    assert calls == ["procedures", "procedures"]
    # the visitor's own new event: ranked again, from the new profile
    assert penchant.track("click", "procedure", 6, user_id=VISITOR)
    after = penchant.recommend("procedures", VISITOR, limit=3)
    assert len(calls) == 3 and 6 not in [r.item.id for r in after]  # seen: excluded
    # popular content refreshed: ranked again
    assert penchant.flush(timeout=10)
    penchant.recommend("procedures", VISITOR, limit=3)
    calls.clear()
    assert penchant.refresh_popularity()
    penchant.recommend("procedures", VISITOR, limit=3)
    assert calls == ["procedures"]
    # a new catalog: ranked again, from it
    penchant.set_catalog(Catalog(CATALOG.categories, [Item("procedure", 99, "New", (1,))]))
    assert [r.item.id for r in penchant.recommend("procedures", VISITOR, limit=3)] == [99]
    assert calls == ["procedures", "procedures"]
    # more than a minute later (history recency weighs by time): ranked again
    penchant.recommend("procedures", VISITOR, limit=3)
    clock.now += timedelta(minutes=2)
    penchant.recommend("procedures", VISITOR, limit=3)
    assert calls == ["procedures"] * 3
    penchant.close()


def test_erasure_forgets_the_ranked_lists(database_url: str) -> None:
    penchant = Penchant(
        database_url=database_url, secret_key="k-0123456789abcdef", catalog=CATALOG, holdout=0.0
    )
    penchant.init_db()
    other = "o" * 32
    for visitor in (VISITOR, other):
        assert penchant.track("click", "procedure", 3, user_id=visitor)
        assert penchant.recommend("procedures", visitor, limit=3)
        assert penchant.recommend("categories", visitor, limit=2)
    assert penchant.health()["cached_lists"] == 4  # two lists of each visitor
    penchant.erase(VISITOR)
    assert penchant.health()["cached_lists"] == 2  # the other visitor's stay
    penchant.close()
