"""The batch insert through COPY (PostgreSQL) stores exactly what the INSERT path stores.

Every test runs on both databases; on PostgreSQL each runs once through the COPY
path and once with it switched off, on SQLite once through the one-statement JSON
batch and once through the driver's executemany, so the paths are held to the
same rows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from penchant.engine.affinity import AffinityDelta, AffinityState
from penchant.engine.events import Interaction
from penchant.storage.schema import dead_letter, user_interactions
from penchant.storage.store import Store, StoreUnavailable, copy_text

Event = Callable[..., Interaction]
Deltas = Callable[[Sequence[Interaction]], list[AffinityDelta]]
RowOf = Callable[[Interaction], dict[str, object]]

AWKWARD = [
    "tab\there",
    "new\nline",
    "carriage\rreturn",
    "back\\slash",
    "\\N",  # COPY's NULL marker, as text
    "\\.",  # COPY's end-of-data marker, as text
    "'single' \"double\"",
    "ünïcødé ✓ 😀 中文",
    "trailing backslash\\",
    "",
]


def visitor(n: int) -> str:
    return f"{n:032x}"


@pytest.fixture(params=["fast", "plain"])
def path_store(request: pytest.FixtureRequest, database_url: str) -> Iterator[Store]:
    """A store on a fresh database whose batches go in the fast way (COPY on
    PostgreSQL, one JSON statement on SQLite) or the plain one (executemany)."""
    fast = request.param == "fast"
    store = Store(database_url, fast_batches=fast)
    store.create_all()
    try:
        expected = ("copy" if store.dialect == "postgresql" else "json") if fast else "executemany"
        assert store.batch_path == expected
        yield store
    finally:
        store.dispose()


def stored_rows(store: Store) -> dict[tuple[str, str], tuple[object, ...]]:
    ui = user_interactions
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                ui.c.user_id,
                ui.c.event_id,
                ui.c.session_id,
                ui.c.interaction_type,
                ui.c.target_type,
                ui.c.target_id,
                ui.c.extra_data,
                ui.c.timestamp,
            )
        ).all()
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


def expected_row(e: Interaction) -> tuple[object, ...]:
    return (
        e.session_id,
        e.interaction_type,
        e.target_type,
        e.target_id,
        None if e.extra_data is None else json.dumps(e.extra_data, separators=(",", ":")),
        e.timestamp,
    )


def awkward_batch(ev: Event, t0: datetime) -> list[Interaction]:
    batch = []
    for i, text in enumerate(AWKWARD):
        batch.append(
            ev(
                visitor(i),
                None if i % 2 else 10 + i,
                at=t0 + timedelta(microseconds=i * 1001),
                session_id=text,
                kind=text[:50],
                target_type=text[:50] or "page",
                extra_data={"q": text, "nested": {"t": [text, i]}},
                event_id=f"{i:032x}",
            )
        )
    # a very long extra_data, and awkward text in the ids themselves
    batch.append(ev(visitor(50), None, extra_data={"blob": "x\t\\y\n" * 100_000}))
    batch.append(ev("vis\\itor\ttab", 10, event_id="ev\nnt\\id"))
    return batch


def test_awkward_values_are_stored_exactly(
    path_store: Store,
    ev: Event,
    deltas: Deltas,
    rate: float,
    t0: datetime,
    caplog: pytest.LogCaptureFixture,
    row_of: RowOf,
) -> None:
    batch = awkward_batch(ev, t0)
    assert copy_text([row_of(e) for e in batch]) is not None  # COPY can carry them
    with caplog.at_level(logging.WARNING, logger="personalization"):
        result = path_store.record(batch, deltas, rate)
    assert "row by row" not in caplog.text  # the batch went in whole, not by the fallback
    assert (result.stored, result.duplicates, result.dead_lettered) == (len(batch), 0, 0)
    assert stored_rows(path_store) == {(e.user_id, e.event_id): expected_row(e) for e in batch}
    assert path_store.dead_letter_count() == 0


def insertion_order(store: Store) -> list[str]:
    ui = user_interactions
    with store.engine.connect() as conn:
        return list(conn.scalars(sa.select(ui.c.user_id).order_by(ui.c.id)))


# code point order: uppercase before lowercase, "é" after "z" (not a language's order)
ORDER_IDS = ["b" * 32, "B" * 32, "é" + "a" * 31, "z" * 32, "a" * 32]


def test_rows_are_inserted_in_lock_order(
    path_store: Store, ev: Event, deltas: Deltas, rate: float
) -> None:
    batch = [ev(user, 10, event_id=f"{n:032x}") for n, user in enumerate(ORDER_IDS)]
    result = path_store.record(batch, deltas, rate)
    assert [e.user_id for e in result.inserted] == sorted(ORDER_IDS)
    assert insertion_order(path_store) == sorted(ORDER_IDS)


def test_lock_order_does_not_follow_the_database_collation(
    pg_url: str, ev: Event, deltas: Deltas, rate: float
) -> None:
    """On a database whose default collation is a language's, rows still go in code point order."""
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    name = f"{pg_url.rsplit('/', 1)[1]}_icu"
    with admin.connect() as conn:
        conn.execute(
            sa.text(
                f'CREATE DATABASE "{name}" TEMPLATE template0'
                " LOCALE_PROVIDER icu ICU_LOCALE 'en' LOCALE 'C.UTF-8'"
            )
        )
    store = Store(pg_url.rsplit("/", 1)[0] + "/" + name)
    try:
        store.create_all()
        with store.engine.connect() as conn:
            by_language = list(
                conn.scalars(
                    sa.text("SELECT u FROM unnest(CAST(:ids AS VARCHAR[])) AS u ORDER BY u"),
                    {"ids": ORDER_IDS},
                )
            )
        assert by_language != sorted(ORDER_IDS)  # the collation does differ
        batch = [ev(user, 10, event_id=f"{n:032x}") for n, user in enumerate(ORDER_IDS)]
        assert store.record(batch, deltas, rate).stored == len(ORDER_IDS)
        assert insertion_order(store) == sorted(ORDER_IDS)
    finally:
        store.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.parametrize("field", ["session_id", "target_type", "event_id"])
def test_a_nul_character_is_dead_lettered_or_stored_never_lost(
    path_store: Store, ev: Event, deltas: Deltas, rate: float, t0: datetime, field: str
) -> None:
    good = awkward_batch(ev, t0)
    bad = ev(visitor(99), 10, **{field: "a\x00b"})
    batch = [*good[:3], bad, *good[3:]]
    result = path_store.record(batch, deltas, rate)
    assert result.stored + result.dead_lettered == len(batch)
    if path_store.dialect == "sqlite":  # SQLite's text holds a NUL
        assert result.dead_lettered == 0
        assert stored_rows(path_store)[(bad.user_id, bad.event_id)] == expected_row(bad)
    else:  # PostgreSQL's cannot: the row is dead-lettered, the others stored as they are
        assert result.failed == (bad,)
        assert path_store.dead_letter_count() == 1
        assert stored_rows(path_store) == {(e.user_id, e.event_id): expected_row(e) for e in good}


def test_nul_and_lone_surrogates_in_extra_data_are_stored_escaped(
    path_store: Store, ev: Event, deltas: Deltas, rate: float
) -> None:
    event = ev(visitor(1), 10, extra_data={"q": "nul\x00 lone \udc80"})
    assert path_store.record([event], deltas, rate).stored == 1
    stored = stored_rows(path_store)[(event.user_id, event.event_id)]
    assert stored[4] == '{"q":"nul\\u0000 lone \\udc80"}'


def test_a_lone_surrogate_in_a_column_is_dead_lettered_with_the_batch_kept(
    path_store: Store, ev: Event, deltas: Deltas, rate: float
) -> None:
    good = [ev(visitor(i), 10) for i in range(5)]
    bad = ev(visitor(9), 10, session_id="lone \udc80")
    result = path_store.record([*good, bad], deltas, rate)
    assert (result.stored, result.dead_lettered) == (5, 1)
    assert result.failed == (bad,)
    assert set(stored_rows(path_store)) == {(e.user_id, e.event_id) for e in good}


def test_duplicates_within_and_across_batches(
    path_store: Store, ev: Event, deltas: Deltas, rate: float, t0: datetime
) -> None:
    first = [ev(visitor(i % 4), 10, at=t0 + timedelta(seconds=i)) for i in range(40)]
    result = path_store.record([*first, *first[:10], first[3]], deltas, rate)
    assert (result.stored, result.duplicates, result.dead_lettered) == (40, 11, 0)
    second = [*first[20:], *(ev(visitor(i % 4), 11) for i in range(15))]
    result = path_store.record(second, deltas, rate)
    assert (result.stored, result.duplicates) == (15, 20)
    assert {e.event_id for e in result.inserted} == {e.event_id for e in second[20:]}
    assert path_store.count_interactions() == 55
    replay = path_store.record(second, deltas, rate)
    assert (replay.stored, replay.duplicates, replay.inserted) == (0, 35, ())


def test_a_failed_batch_leaves_the_next_one_on_the_fast_path(
    path_store: Store, ev: Event, deltas: Deltas, rate: float, caplog: pytest.LogCaptureFixture
) -> None:
    # integer out of range: the whole batch fails, then goes row by row
    result = path_store.record([ev(visitor(1), 10), ev(visitor(2), 2**70)], deltas, rate)
    assert (result.stored, result.dead_lettered) == (1, 1)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="personalization"):
        result = path_store.record([ev(visitor(i), 10) for i in range(30)], deltas, rate)
    assert result.stored == 30
    assert "row by row" not in caplog.text
    with path_store.engine.connect() as conn:
        payload = conn.scalar(sa.select(dead_letter.c.payload))
    assert payload is not None and str(2**70) in payload


def test_a_restarted_session_gets_a_new_staging_table(
    path_store: Store, ev: Event, deltas: Deltas, rate: float, caplog: pytest.LogCaptureFixture
) -> None:
    assert path_store.record([ev(visitor(1), 10)], deltas, rate).stored == 1
    if path_store.dialect == "postgresql":
        # the server ends every session of this database (an admin, a failover)
        admin = sa.create_engine(path_store.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            ended = conn.scalar(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        admin.dispose()
        assert ended >= 1
    with caplog.at_level(logging.WARNING, logger="personalization"):
        result = path_store.record([ev(visitor(i), 10) for i in range(2, 12)], deltas, rate)
    assert result.stored == 10
    assert "row by row" not in caplog.text
    assert path_store.count_interactions() == 11


def test_copy_text_leaves_other_values_to_the_insert(t0: datetime, row_of: RowOf) -> None:
    row = row_of(Interaction(visitor(1), "s", "view", "procedure", 10, t0, "e" * 32, {"a": "b"}))
    assert copy_text([row]) == (
        f"{visitor(1)}\ts\tview\tprocedure\t{'e' * 32}\t"
        '{"a":"b"}\t10\t2024-03-01T12:00:00\n'.encode()
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("target_id", 10.0),
        ("target_id", True),
        ("session_id", b"bytes"),
        ("timestamp", "2024-03-01"),
        ("event_id", None),
        ("user_id", "a\x00b"),
        ("session_id", "\ud800"),
    ],
)
def test_copy_text_leaves_a_batch_with_another_value_to_the_insert(
    t0: datetime, row_of: RowOf, name: str, value: object
) -> None:
    row = row_of(Interaction(visitor(1), "s", "view", "procedure", 10, t0, "e" * 32, {"a": "b"}))
    assert copy_text([row]) is not None
    assert copy_text([row, {**row, name: value}]) is None


def test_affinity_upserts_through_staging_match_python_arithmetic(
    path_store: Store, ev: Event, deltas: Deltas, rate: float, t0: datetime
) -> None:
    """Many visitors and categories per batch, each batch decaying the rows stored before."""
    kinds = ["view", "click", "search", "form_submit"]
    targets = [("procedure", 10), ("procedure", 20), ("doctor", 100), ("procedure", 30)]
    python: dict[tuple[str, int], AffinityState] = {}
    for day in range(8):
        batch = [
            ev(
                visitor(i % 23),
                targets[(day + i) % 4][1],
                target_type=targets[(day + i) % 4][0],
                at=t0 + timedelta(days=day, minutes=7 * i, microseconds=i),
                kind=kinds[(day + i) % 4],
                extra_data={"categories": [2, 3]} if kinds[(day + i) % 4] == "search" else None,
            )
            for i in range(60)
        ]
        path_store.record(batch, deltas, rate)
        for delta in deltas(batch):
            key = (delta.user_id, delta.category_id)
            python[key] = delta.apply(python.get(key), rate)
    stored = {
        (user, category): state
        for user in {u for u, _ in python}
        for category, state in path_store.load_profile(user).affinities.items()
    }
    assert set(stored) == set(python)
    for key, state in python.items():
        assert stored[key].score == pytest.approx(state.score, rel=1e-12), key
        assert stored[key].raw == pytest.approx(state.raw, rel=1e-12), key
        assert stored[key].last_updated == state.last_updated, key


def test_a_connection_lost_during_copy_is_unavailable_not_bad_data(
    pg_url: str, ev: Event, deltas: Deltas, rate: float
) -> None:
    """The server ends the session just before the COPY: nothing is dead-lettered, all kept."""
    store = Store(pg_url)
    store.create_all()
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")

    def killed(conn: sa.Connection) -> None:
        # the batch's transaction begins; the first statement it sends is the COPY
        pid = conn.connection.dbapi_connection.get_backend_pid()  # type: ignore[union-attr]
        with admin.connect() as other:
            other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

    try:
        # the pool's one connection gets its staging tables with a first batch
        assert store.record([ev(visitor(99), 10)], deltas, rate).stored == 1
        batch = [ev(visitor(i), 10) for i in range(20)]
        sa.event.listen(store.engine, "begin", killed, once=True)
        with pytest.raises(StoreUnavailable) as lost:
            store.record(batch, deltas, rate)
        assert "COPY" in str(getattr(lost.value.__cause__, "statement", ""))
        assert store.count_interactions() == 1
        assert store.dead_letter_count() == 0
        result = store.record(batch, deltas, rate)  # the caller's retry
        assert (result.stored, result.dead_lettered) == (20, 0)
    finally:
        store.dispose()
        admin.dispose()


@pytest.mark.parametrize("text", ["a\tb", "a\nb", "a\rb", "a\\b", "\\N", "\\", "\r\n"])
def test_one_special_character_alone_in_a_batch_is_stored_exactly(
    path_store: Store,
    ev: Event,
    deltas: Deltas,
    rate: float,
    text: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each character COPY escapes, as the only one in an otherwise plain batch."""
    batch = [ev(visitor(i), 10) for i in range(5)]
    batch.append(ev(visitor(9), None, target_type="page", session_id=text))
    with caplog.at_level(logging.WARNING, logger="personalization"):
        result = path_store.record(batch, deltas, rate)
    assert "row by row" not in caplog.text  # stored by the batch path, not the fallback
    assert (result.stored, result.dead_lettered) == (6, 0)
    assert stored_rows(path_store) == {(e.user_id, e.event_id): expected_row(e) for e in batch}
