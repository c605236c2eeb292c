"""The change feed: ordered ids, buckets instead of visitor ids, own rows left out, trimming."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from penchant.storage import changes
from penchant.storage.schema import changes as changes_table
from penchant.storage.store import Store

NOW = datetime(2026, 11, 30, 12, 0, 0)


def _store(url: str) -> Store:
    store = Store(url)
    store.create_all()
    return store


def test_a_reader_sees_each_change_once_by_bucket(database_url: str) -> None:
    store = _store(database_url)
    start = changes.latest_change(store)
    assert start == 0
    written = changes.note_changes(store, ["a" * 32, "b" * 32, "a" * 32], NOW)
    assert len(written) == len({changes.bucket("a" * 32), changes.bucket("b" * 32)})
    last, stale = changes.changes_since(store, start)
    assert last == max(written)
    assert stale == {changes.bucket("a" * 32), changes.bucket("b" * 32)}
    # nothing new after the last id read
    assert changes.changes_since(store, last) == (last, frozenset())
    later = changes.note_changes(store, ["c" * 32], NOW)
    assert min(later) > last
    assert changes.changes_since(store, last) == (max(later), {changes.bucket("c" * 32)})
    store.dispose()


def test_the_feed_holds_no_visitor_id(database_url: str) -> None:
    store = _store(database_url)
    visitor = "f" * 32
    changes.note_changes(store, [visitor], NOW)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(changes_table)).all()
    assert rows and all(visitor not in str(value) for row in rows for value in row)
    store.dispose()


def test_a_readers_own_rows_are_left_out(database_url: str) -> None:
    store = _store(database_url)
    own = changes.note_changes(store, ["a" * 32], NOW)
    other = changes.note_changes(store, ["b" * 32], NOW)
    last, stale = changes.changes_since(store, 0, set(own))
    assert last == max(other)
    assert stale == {changes.bucket("b" * 32)}
    store.dispose()


def test_too_many_changes_mean_drop_everything(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(database_url)
    monkeypatch.setattr(changes, "MAX_ROWS", 3)
    changes.note_changes(store, [f"{n:032x}" for n in range(10)], NOW)
    last, stale = changes.changes_since(store, 0)
    assert stale is None and last > 0
    store.dispose()


def test_trimming_deletes_only_old_rows(database_url: str) -> None:
    store = _store(database_url)
    changes.note_changes(store, ["a" * 32], NOW - changes.KEEP - timedelta(minutes=1))
    kept = changes.note_changes(store, ["b" * 32], NOW)
    assert changes.trim_changes(store, NOW) == 1
    assert changes.changes_since(store, 0) == (max(kept), {changes.bucket("b" * 32)})
    store.dispose()
