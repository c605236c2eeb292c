"""Freshness: a process sees its own events at once; another once written and its cache expires."""

from __future__ import annotations

from pathlib import Path

from penchant import Catalog, Category, Item, Penchant

CATALOG = Catalog(
    [Category(1, "Injectables"), Category(2, "Laser")],
    [Item("procedure", 1, "Botox", (1,)), Item("procedure", 2, "Resurfacing", (2,))],
)


class Ticker:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_another_process_sees_events_after_the_writer_and_the_cache_ttl(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    settings = {"database_url": url, "secret_key": "k", "catalog": CATALOG, "holdout": 0.0}
    here, there = Penchant(**settings), Penchant(**settings)
    here.init_db()
    ticker = Ticker()
    there._profiles._clock = ticker  # the other process's monotonic clock
    visitor = "v" * 32
    assert there.recommend("categories", visitor, limit=1)[0].reason.kind == "popular"
    assert here.track("click", "procedure", 2, user_id=visitor)
    # the same process: at once, before anything is written
    assert here.recommend("categories", visitor, limit=1)[0].item.id == 2
    assert here.flush(timeout=10)
    # the other process: its cached profile still serves until it expires ...
    assert there.recommend("categories", visitor, limit=1)[0].reason.kind == "popular"
    ticker.now += there.settings.affinity_cache_ttl + 0.01
    # ... then it reads what was written
    top = there.recommend("categories", visitor, limit=1)[0]
    assert top.item.id == 2 and top.reason.kind != "popular"
    here.close()
    there.close()
