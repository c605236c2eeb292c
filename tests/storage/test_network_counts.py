"""What the database keeps for the identity budget: who did not count on a day, and
how many networks saw a co-viewed pair (never which)."""

from __future__ import annotations

from datetime import datetime, timedelta

from penchant.config import DEFAULT_WEIGHTS
from penchant.engine.affinity import fold
from penchant.engine.catalog import Catalog, Category, Item
from penchant.engine.events import Interaction
from penchant.storage import popular
from penchant.storage.store import Store

NOW = datetime(2026, 11, 30, 15, 0, 0)
CATALOG = Catalog(
    [Category(1, "Injectables")], [Item("procedure", i, f"P{i}", (1,)) for i in range(1, 4)]
)
P1, P2, P3 = ("procedure", 1), ("procedure", 2), ("procedure", 3)


def _store(url: str) -> Store:
    store = Store(url)
    store.create_all()
    return store


def _view(user: str, item: int, at: datetime) -> Interaction:
    return Interaction(user, "s", "view", "procedure", item, at, f"{user}{item:04d}".ljust(32, "0"))


def test_visitors_left_out_on_a_day_do_not_make_content_popular(database_url: str) -> None:
    store = _store(database_url)
    yesterday = NOW - timedelta(days=1)
    events = [_view(f"real{i}", 1, NOW) for i in range(3)]
    events += [_view(f"fake{i}", 2, NOW) for i in range(10)]
    events += [_view("fake0", 3, yesterday)]  # left out today, counted yesterday
    store.record(events, lambda batch: fold(batch, CATALOG, DEFAULT_WEIGHTS, 0.95), 0.95)
    store.mark_unshared([(f"fake{i}", NOW.date()) for i in range(1, 10)])
    store.mark_unshared([("fake1", NOW.date())])  # again: nothing changes

    popular.refresh(store, NOW, 30)
    summary = popular.read_popularity(store, NOW - timedelta(days=30))
    direct = store.popularity(NOW - timedelta(days=30))
    for counted in (summary, direct):
        assert counted.of("procedure", 1) == 3
        assert counted.of("procedure", 2) == 1  # fake0 only
        assert counted.of("procedure", 3) == 1

    # erasure and retention take the rows along
    store.erase("fake1")
    store.purge(NOW + timedelta(days=1))
    assert store.count_interactions() == 0
    store.dispose()


def test_a_pair_is_read_once_two_networks_saw_it(database_url: str) -> None:
    store = _store(database_url)
    one = {(P1, P2): 5.0, (P2, P1): 5.0, (P1, P3): 1.0, (P3, P1): 1.0}
    store.add_neighbours(one, NOW, networks={(P1, P2): 1, (P2, P1): 1, (P1, P3): 1, (P3, P1): 1})
    assert store.neighbours([P1], min_networks=2) == {P1: []}
    assert store.neighbours([P1]) == {P1: [(P2, 5.0), (P3, 1.0)]}
    # the same network again adds score but no network (the caller counted it before)
    store.add_neighbours({(P1, P2): 5.0, (P2, P1): 5.0}, NOW, networks={})
    store.add_neighbours({(P1, P3): 1.0, (P3, P1): 1.0}, NOW, networks={(P1, P3): 1, (P3, P1): 1})
    assert store.neighbours([P1], min_networks=2) == {P1: [(P3, 2.0)]}
    # trimming keeps the pairs two networks saw before any other
    store.trim_neighbours(1)
    assert store.neighbours([P1]) == {P1: [(P3, 2.0)]}
    store.dispose()
