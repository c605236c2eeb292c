"""SQLite's batch insert: one statement per batch, stored exactly as SQLAlchemy stores rows.

The writer hands SQLite a batch as one JSON array unpacked by ``json_each``. These
tests hold it to what SQLAlchemy's own ``DateTime`` and ``Integer`` handling would
have stored, and to the same accounting of new, replayed and failed rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from penchant.engine.affinity import AffinityDelta
from penchant.engine.events import Interaction
from penchant.storage.schema import user_interactions
from penchant.storage.store import Store

Event = Callable[..., Interaction]
Deltas = Callable[[Sequence[Interaction]], list[AffinityDelta]]
RowOf = Callable[[Interaction], dict[str, object]]


def visitor(n: int) -> str:
    return f"{n:032x}"


@pytest.fixture(params=["json", "executemany"])
def sqlite_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'batch.db'}", fast_batches=request.param == "json")
    store.create_all()
    assert store.batch_path == request.param, "this SQLite has no JSON functions"
    try:
        yield store
    finally:
        store.dispose()


def raw(store: Store, sql: str) -> list[tuple[object, ...]]:
    """Rows as SQLite holds them (no SQLAlchemy type processing)."""
    path = store.url.database
    assert path is not None
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()


def raw_rows(store: Store) -> list[tuple[object, ...]]:
    return raw(
        store,
        "SELECT user_id, target_id, typeof(target_id), extra_data, timestamp, event_id"
        " FROM user_interactions ORDER BY id",
    )


def test_rows_are_stored_as_sqlalchemy_stores_them(
    sqlite_store: Store, tmp_path: Path, ev: Event, deltas: Deltas, rate: float, row_of: RowOf
) -> None:
    moments = [
        datetime(2024, 3, 1, 12, 0, 0),  # no microseconds: still written with six digits
        datetime(2024, 3, 1, 12, 0, 0, 1),
        datetime(2024, 12, 31, 23, 59, 59, 999999),
    ]
    batch = [
        ev(visitor(n), target, at=moment, extra_data=extra, event_id=f"{n:032x}")
        for n, (moment, target, extra) in enumerate(
            zip(
                moments,
                [10, None, 2**62],
                [None, {"path": "/a"}, {"q": "ü", "n": [1, 2.5]}],
                strict=True,
            )
        )
    ]
    assert sqlite_store.record(batch, deltas, rate).stored == 3
    # the same rows through SQLAlchemy's insert, into a second database
    reference = Store(f"sqlite:///{tmp_path / 'reference.db'}")
    reference.create_all()
    try:
        with reference.engine.begin() as conn:
            conn.execute(user_interactions.insert(), [row_of(e) for e in batch])
        assert raw_rows(sqlite_store) == raw_rows(reference)
    finally:
        reference.dispose()
    stored = raw_rows(sqlite_store)
    assert [r[2] for r in stored] == ["integer", "null", "integer"]
    assert stored[0][4] == "2024-03-01 12:00:00.000000"


def test_a_mixed_batch_reports_exactly_its_new_rows(
    sqlite_store: Store, ev: Event, deltas: Deltas, rate: float, t0: datetime
) -> None:
    old = [ev(visitor(i), 10, at=t0 + timedelta(seconds=i)) for i in range(6)]
    sqlite_store.record(old, deltas, rate)
    new = [ev(visitor(i), 11, at=t0 + timedelta(minutes=i)) for i in range(4)]
    mixed = [old[0], new[0], old[3], new[1], new[2], old[5], new[3]]
    result = sqlite_store.record(mixed, deltas, rate)
    assert (result.stored, result.duplicates, result.dead_lettered) == (4, 3, 0)
    assert {e.event_id for e in result.inserted} == {e.event_id for e in new}
    assert sqlite_store.count_interactions() == 10


def test_a_missing_value_is_dead_lettered_not_counted_as_a_duplicate(
    sqlite_store: Store, ev: Event, deltas: Deltas, rate: float
) -> None:
    good = [ev(visitor(i), 10) for i in range(3)]
    bad = ev(visitor(7), 10, session_id=None)
    result = sqlite_store.record([good[0], bad, *good[1:]], deltas, rate)
    assert (result.stored, result.duplicates, result.dead_lettered) == (3, 0, 1)
    assert result.failed == (bad,)


@pytest.mark.parametrize("target", [2**63, -(2**63) - 1, "10", 1.5])
def test_a_target_id_sqlite_cannot_hold_as_an_integer_is_dead_lettered(
    sqlite_store: Store, ev: Event, deltas: Deltas, rate: float, target: object
) -> None:
    good = ev(visitor(1), 10)
    bad = ev(visitor(2), target)
    result = sqlite_store.record([good, bad], deltas, rate)
    assert (result.stored, result.dead_lettered) == (1, 1)
    with sqlite_store.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(user_interactions)) == 1


def test_a_non_datetime_timestamp_is_dead_lettered(
    sqlite_store: Store, ev: Event, deltas: Deltas, rate: float
) -> None:
    bad = ev(visitor(2), 10, at="2024-03-01 12:00:00")
    result = sqlite_store.record([ev(visitor(1), 10), bad], deltas, rate)
    assert (result.stored, result.dead_lettered) == (1, 1)
    assert result.failed == (bad,)


def affinity_rows(store: Store) -> list[tuple[object, ...]]:
    return raw(
        store,
        "SELECT user_id, category_id, affinity_score, raw_score, last_updated"
        " FROM user_category_affinity ORDER BY user_id, category_id",
    )


def test_the_set_based_affinity_upsert_stores_what_the_per_row_upsert_stores(
    tmp_path: Path, ev: Event, deltas: Deltas, rate: float, t0: datetime
) -> None:
    set_based = Store(f"sqlite:///{tmp_path / 'set.db'}")
    per_row = Store(f"sqlite:///{tmp_path / 'rows.db'}", fast_batches=False)
    stores = [set_based, per_row]
    used: list[str] = []

    def counted(conn: sa.Connection, cursor: object, statement: str, *args: object) -> None:
        # the set-based upsert reads the batch's deltas from a temporary table
        if "INTO user_category_affinity" in statement and "FROM temp." in statement:
            used.append(str(conn.engine.url.database))

    kinds = ["view", "click", "search", "form_submit"]
    targets = [("procedure", 10), ("procedure", 20), ("doctor", 100), ("procedure", 30)]
    for store in stores:
        store.create_all()
    sa.event.listen(sa.Engine, "before_cursor_execute", counted)
    try:
        for day in range(15):
            # uneven gaps: fractions of a second, hours, and events older than the row
            batch = [
                ev(
                    visitor((day + i) % 5),
                    targets[(day * 7 + i) % 4][1],
                    target_type=targets[(day * 7 + i) % 4][0],
                    at=t0 + timedelta(days=day, seconds=i * 3607.123457 - (i % 3) * 7200),
                    kind=kinds[(day + i) % 4],
                    extra_data={"categories": [2, 3]} if (day + i) % 4 == 2 else None,
                )
                for i in range(day % 4 + 1)
            ]
            for store in stores:
                store.record(batch, deltas, rate)
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", counted)
        for store in stores:
            store.dispose()
    assert used, "this SQLite lacks pow() or upsert row values"
    assert set(used) == {set_based.url.database}
    # the same text, the same floats to the last bit
    assert affinity_rows(set_based) == affinity_rows(per_row) != []
