"""Freshness: a process sees its own events at once; another as soon as they are
written and it has read the change feed, not after a cache TTL."""

from __future__ import annotations

from typing import Any

import pytest

from penchant import Catalog, Category, Item, Penchant
from penchant.service import CHANGE_POLL_INTERVAL

CATALOG = Catalog(
    [Category(1, "Injectables"), Category(2, "Laser")],
    [Item("procedure", 1, "Botox", (1,)), Item("procedure", 2, "Resurfacing", (2,))],
)


class Ticker:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _pair(database_url: str) -> tuple[Penchant, Penchant, Ticker]:
    """Two instances on one database, as two worker processes; ``there``'s clock is ours."""
    settings: dict[str, Any] = {
        "database_url": database_url,
        "secret_key": "k-0123456789abcdef",
        "catalog": CATALOG,
        "holdout": 0.0,
    }
    ticker = Ticker()
    here, there = Penchant(**settings), Penchant(**settings, timer=ticker)
    here.init_db()
    return here, there, ticker


def _loads(penchant: Penchant, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every profile read of ``penchant`` from the database."""
    seen: list[str] = []
    store = penchant.store
    load = store.load_profile

    def counting(user_id: str, **kwargs: Any) -> Any:
        seen.append(user_id)
        return load(user_id, **kwargs)

    monkeypatch.setattr(store, "load_profile", counting)
    return seen


def test_another_process_sees_events_once_written_and_polled(database_url: str) -> None:
    here, there, ticker = _pair(database_url)
    visitor = "v" * 32
    assert there.recommend("categories", visitor, limit=1)[0].reason.kind == "popular"
    assert here.track("click", "procedure", 2, user_id=visitor)
    # the same process: at once, before anything is written
    assert here.recommend("categories", visitor, limit=1)[0].item.id == 2
    assert here.flush(timeout=10)
    # the other process: its cached profile serves until it next reads the feed ...
    assert there.recommend("categories", visitor, limit=1)[0].reason.kind == "popular"
    ticker.now += CHANGE_POLL_INTERVAL + 0.01
    # ... long before the cache's TTL
    assert ticker.now - 1000.0 < there.settings.affinity_cache_ttl
    top = there.recommend("categories", visitor, limit=1)[0]
    assert top.item.id == 2 and top.reason.kind != "popular"
    here.close()
    there.close()


def test_an_erasure_elsewhere_drops_the_cached_profile(database_url: str) -> None:
    here, there, ticker = _pair(database_url)
    visitor = "e" * 32
    assert here.track("click", "procedure", 1, user_id=visitor)
    assert here.flush(timeout=10)
    assert there.recommend("categories", visitor, limit=1)[0].item.id == 1
    assert there.profile(visitor).affinities
    here.erase(visitor)
    ticker.now += CHANGE_POLL_INTERVAL + 0.01
    assert not there.profile(visitor).affinities
    assert there.recommend("categories", visitor, limit=1)[0].reason.kind == "popular"
    here.close()
    there.close()


def test_unrelated_visitors_keep_their_cached_profiles(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    here, there, ticker = _pair(database_url)
    visitors = [f"{n:032x}" for n in range(1, 6)]
    loads = _loads(there, monkeypatch)
    for visitor in visitors:
        there.profile(visitor)
    assert sorted(loads) == sorted(visitors)
    assert here.track("click", "procedure", 1, user_id=visitors[0])
    assert here.flush(timeout=10)
    ticker.now += CHANGE_POLL_INTERVAL + 0.01
    loads.clear()
    for visitor in visitors:
        there.profile(visitor)
    # only the visitor who changed (and any sharing their 16-bit bucket) is read again
    assert visitors[0] in loads and len(loads) < len(visitors)
    here.close()
    there.close()


def test_page_views_without_a_target_keep_the_visitors_cached_profile(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    penchant = Penchant(
        database_url=database_url, secret_key="k-0123456789abcdef", catalog=CATALOG, holdout=0.0
    )
    penchant.init_db()
    visitor = "p" * 32
    assert penchant.track("click", "procedure", 1, user_id=visitor)
    assert penchant.flush(timeout=10)
    loads = _loads(penchant, monkeypatch)
    first = penchant.recommend("procedures", visitor, limit=2)
    assert loads == [visitor]
    for _ in range(3):
        assert penchant.track("view", "page", None, user_id=visitor, extra_data={"path": "/"})
    assert penchant.flush(timeout=10)
    again = penchant.recommend("procedures", visitor, limit=2)
    assert again == first
    assert loads == [visitor]  # the page views moved nothing: no second read
    # a view of a procedure does move the profile: read again once written
    assert penchant.track("view", "procedure", 2, user_id=visitor)
    assert penchant.flush(timeout=10)
    penchant.recommend("procedures", visitor, limit=2)
    assert loads == [visitor, visitor]
    penchant.close()


def test_a_process_that_writes_but_never_reads_keeps_no_growing_set(database_url: str) -> None:
    from penchant.service import OWN_CHANGES_KEPT

    penchant = Penchant(
        database_url=database_url, secret_key="k-0123456789abcdef", catalog=CATALOG, holdout=0.0
    )
    penchant.init_db()
    for n in range(20):
        assert penchant.track("click", "procedure", 1, user_id=f"{n:032x}")
    assert penchant.flush(timeout=10)
    assert penchant.change_feed.own == set()  # not reading the feed: nothing to remember
    penchant.profile("a" * 32)  # now it reads the feed
    assert penchant.track("click", "procedure", 1, user_id="b" * 32)
    assert penchant.flush(timeout=10)
    assert len(penchant.change_feed.own) == 1  # its own write, skipped by its next poll
    feed = penchant.change_feed
    feed.remember_own(list(range(1_000_000, 1_000_000 + OWN_CHANGES_KEPT)))
    assert len(feed.own) == OWN_CHANGES_KEPT  # more than it keeps: it starts again
    feed.remember_own([2_000_000])
    assert feed.own == {2_000_000}
    penchant.close()


def test_a_profile_read_while_a_write_finishes_is_not_cached(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read may predate the write; caching it would hide the visitor's own event
    until the cache expires (the change feed skips a process's own writes)."""
    here, _, _ = _pair(database_url)
    visitor = "w" * 32
    load = here.store.load_profile
    reads: list[int] = []

    def read_then_write_lands(user_id: str) -> Any:
        profile = load(user_id)  # before the event is stored
        reads.append(len(profile.history))
        if len(reads) == 1:
            assert here.track("click", "procedure", 2, user_id=visitor)
            assert here.flush(timeout=10)  # stored, and let go of by the overlay
        return profile

    monkeypatch.setattr(here.store, "load_profile", read_then_write_lands)
    assert list(here.profile(visitor).history) == []
    # the next read goes to the database, which has the click
    assert [h.target_id for h in here.profile(visitor).history] == [2]
    assert reads == [0, 1]
    here.close()


def test_a_profile_read_while_erasing_is_not_cached(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    here, _, _ = _pair(database_url)
    visitor = "x" * 32
    assert here.track("click", "procedure", 2, user_id=visitor)
    assert here.flush(timeout=10)
    load = here.store.load_profile
    reads: list[int] = []

    def read_then_erased(user_id: str) -> Any:
        profile = load(user_id)
        reads.append(len(profile.history))
        if len(reads) == 1:
            here.erase(visitor)
        return profile

    monkeypatch.setattr(here.store, "load_profile", read_then_erased)
    assert len(here.profile(visitor).history) == 1  # read just before the erasure
    assert list(here.profile(visitor).history) == []  # not served from the cache
    assert reads == [1, 0]
    here.close()
