"""Popular content from the daily summary: distinct visitors per item and day."""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from penchant import Catalog, Category, Item, Penchant
from penchant.engine.events import Interaction
from penchant.storage import popular
from penchant.storage.schema import popular_days
from penchant.storage.store import Store
from tests.harness import Timer

NOW = datetime(2026, 11, 30, 15, 0, 0)
CATALOG = Catalog(
    [Category(1, "Injectables")], [Item("procedure", i, f"P{i}", (1,)) for i in range(1, 6)]
)


def _store(url: str) -> Store:
    store = Store(url)
    store.create_all()
    return store


def _events(store: Store, rows: list[tuple[str, int, datetime]]) -> None:
    batch = [
        Interaction(
            user_id=user,
            session_id="s",
            interaction_type="view",
            target_type="procedure",
            target_id=item,
            timestamp=at,
            event_id=f"{user[:8]}{item:04d}{int(at.timestamp()):020d}",
        )
        for user, item, at in rows
    ]
    result = store.record(batch, lambda _: [], 0.95)
    assert result.stored == len(batch)


def test_a_visitor_counts_once_per_item_and_day(database_url: str) -> None:
    store = _store(database_url)
    a, b, c = "a" * 32, "b" * 32, "c" * 32
    _events(
        store,
        [
            *[(a, 1, NOW - timedelta(minutes=m)) for m in range(10)],  # a repeats: once
            (b, 1, NOW - timedelta(hours=1)),
            (c, 2, NOW - timedelta(hours=1)),
            (a, 2, NOW - timedelta(days=3)),  # another day: counts again
            (a, 2, NOW - timedelta(days=3, minutes=5)),
            (b, 3, NOW - timedelta(days=40)),  # outside the window
        ],
    )
    assert popular.refresh(store, NOW, 30) >= 3
    found = popular.read_popularity(store, NOW - timedelta(days=30))
    assert found.of("procedure", 1) == 2
    assert found.of("procedure", 2) == 2  # c today, a three days ago
    assert found.of("procedure", 3) == 0
    # the summary holds counts, never a visitor id
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(popular_days)).all()
    assert rows and not any(v in str(r) for r in rows for v in (a, b, c))
    store.dispose()


def test_today_and_yesterday_are_recomputed_older_days_are_final(database_url: str) -> None:
    store = _store(database_url)
    a, b = "a" * 32, "b" * 32
    _events(store, [(a, 1, NOW - timedelta(days=5)), (a, 2, NOW - timedelta(hours=1))])
    popular.refresh(store, NOW, 30)
    # late events: one for yesterday, one for a day already summarized for good
    _events(store, [(b, 1, NOW - timedelta(days=1)), (b, 1, NOW - timedelta(days=5, hours=1))])
    popular.refresh(store, NOW, 30)
    found = popular.read_popularity(store, NOW - timedelta(days=30))
    assert found.of("procedure", 1) == 2  # a (day -5) and b (yesterday); not b on day -5
    # days that left the window leave the summary
    popular.refresh(store, NOW + timedelta(days=30), 30)
    with store.engine.connect() as conn:
        days = {r[0] for r in conn.execute(sa.select(popular_days.c.day))}
    assert days == {NOW.date()}
    store.dispose()


def _penchant(url: str, **kwargs: Any) -> Penchant:
    penchant = Penchant(
        database_url=url, secret_key="k-0123456789abcdef", catalog=CATALOG, holdout=0.0, **kwargs
    )
    penchant.init_db()
    return penchant


def test_popular_content_counts_what_was_tracked(database_url: str) -> None:
    penchant = _penchant(database_url, popular_ttl=0.001)
    for n in range(3):
        assert penchant.track("click", "procedure", 4, user_id=f"{n:032x}")
    assert penchant.flush(timeout=10)
    assert penchant.popularity().of("procedure", 4) == 3
    top = penchant.recommend("procedures", None, limit=1)[0]
    assert top.item.id == 4
    penchant.close()


def test_a_slow_refresh_is_not_waited_for_and_never_opens_the_read_breaker(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    timer = Timer(1000.0)
    penchant = _penchant(database_url, popular_ttl=60.0, read_timeout=1.0, timer=timer)
    assert penchant.track("click", "procedure", 2, user_id="a" * 32)
    assert penchant.flush(timeout=10)
    release = threading.Event()
    real = popular.refresh

    def big_site(*args: Any, **kwargs: Any) -> int:
        timer.seconds += 1.0  # the first refresh takes a second: a big site
        monkeypatch.setattr(popular, "refresh", slow)
        return real(*args, **kwargs)

    def slow(*args: Any, **kwargs: Any) -> int:
        release.wait(10)  # far longer than read_timeout
        return real(*args, **kwargs)

    monkeypatch.setattr(popular, "refresh", big_site)
    assert penchant.refresh_popularity()
    first = penchant.popularity()
    assert first.of("procedure", 2) == 1
    assert penchant.track("click", "procedure", 3, user_id="b" * 32)
    assert penchant.flush(timeout=10)
    timer.seconds += 61.0  # the cached lists have expired
    started = time.monotonic()
    assert penchant.popularity() is first  # the previous lists, at once:
    assert time.monotonic() - started < 0.5  # not after read_timeout (1 s) of waiting
    # reads of profiles still go to the database (an open breaker would refuse this one)
    assert penchant.profile("a" * 32).history
    release.set()
    deadline = time.monotonic() + 10
    while penchant.popularity() is first and time.monotonic() < deadline:
        time.sleep(0.01)  # the refresh in progress finishes and is used
    assert penchant.popularity().of("procedure", 3) == 1
    penchant.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_forked_worker_refreshes_on_its_own(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refresh running in the parent at fork time has no thread in the child."""
    penchant = _penchant(f"sqlite:///{tmp_path / 'fork.db'}", popular_ttl=60.0)
    assert penchant.track("click", "procedure", 5, user_id="a" * 32)
    assert penchant.flush(timeout=10)
    parent = os.getpid()
    release = threading.Event()
    real = popular.refresh

    def stuck_in_the_parent(*args: Any, **kwargs: Any) -> int:
        if os.getpid() == parent:
            release.wait(30)  # in progress at fork time, and long after
        return real(*args, **kwargs)

    monkeypatch.setattr(popular, "refresh", stuck_in_the_parent)
    assert not penchant.refresh_popularity(timeout=0.05)  # started, not finished
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        ok = penchant.popularity().of("procedure", 5) == 1
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    release.set()
    assert os.waitstatus_to_exitcode(status) == 0
    penchant.close()
