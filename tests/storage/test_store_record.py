"""Store.record: idempotence, the affinity arithmetic in SQL, dead letters, errors."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from penchant.engine.affinity import AffinityDelta, AffinityState, apply_update, fold
from penchant.engine.catalog import Catalog
from penchant.engine.events import Interaction
from penchant.storage.schema import dead_letter, user_category_affinity, user_interactions
from penchant.storage.store import Store, StoreError, StoreUnavailable

Event = Callable[..., Interaction]
Deltas = Callable[[Sequence[Interaction]], list[AffinityDelta]]


def visitor(n: int) -> str:
    return f"{n:032x}"


def scores(store: Store, user_id: str) -> dict[int, AffinityState]:
    return dict(store.load_profile(user_id).affinities)


def test_create_all_is_idempotent(store: Store) -> None:
    store.create_all()
    store.create_all()
    names = set(sa.inspect(store.engine).get_table_names())
    assert {"user_interactions", "user_category_affinity", "penchant_dead_letter"} <= names


def test_record_stores_a_batch_and_replay_stores_nothing_twice(
    store: Store, ev: Event, deltas: Deltas, rate: float, t0: datetime
) -> None:
    batch = [ev(visitor(1), 10, at=t0 + timedelta(minutes=i)) for i in range(20)]
    first = store.record(batch, deltas, rate)
    assert (first.stored, first.duplicates, first.dead_lettered) == (20, 0, 0)
    assert sorted(e.event_id for e in first.inserted) == sorted(e.event_id for e in batch)
    before = scores(store, visitor(1))

    replay = store.record(batch, deltas, rate)
    assert (replay.stored, replay.duplicates, replay.dead_lettered) == (0, 20, 0)
    assert replay.inserted == ()
    assert store.count_interactions() == 20
    assert scores(store, visitor(1)) == before  # a duplicate moves no affinity


def test_duplicates_inside_one_batch_count_once(
    store: Store, ev: Event, deltas: Deltas, rate: float
) -> None:
    event = ev(visitor(1), 10)
    result = store.record([event, event, ev(visitor(1), 11)], deltas, rate)
    assert (result.stored, result.duplicates) == (2, 1)
    assert scores(store, visitor(1))[1].score == pytest.approx(0.2)


def test_same_event_id_for_two_visitors_is_two_events(
    store: Store, ev: Event, deltas: Deltas, rate: float
) -> None:
    result = store.record(
        [ev(visitor(1), 10, event_id="a" * 32), ev(visitor(2), 10, event_id="a" * 32)],
        deltas,
        rate,
    )
    assert result.stored == 2


def test_affinity_upsert_matches_hand_computed_values(
    store: Store, ev: Event, deltas: Deltas, rate: float, t0: datetime
) -> None:
    user = visitor(7)
    # day 0: a view of Botox (Injectables) -> 0.1
    store.record([ev(user, 10, at=t0)], deltas, rate)
    assert scores(store, user)[1].score == pytest.approx(0.1, rel=1e-12)
    # day 2: a click -> 0.1 * 0.9**2 + 0.3 = 0.381
    store.record([ev(user, 11, at=t0 + timedelta(days=2), kind="click")], deltas, rate)
    state = scores(store, user)[1]
    assert state.score == pytest.approx(0.381, rel=1e-12)
    assert state.raw == pytest.approx(0.381, rel=1e-12)
    assert state.last_updated == t0 + timedelta(days=2)
    # day 5, one batch: two form submits 12 hours apart; decay 3 days then 0.5 days
    batch = [
        ev(user, 10, at=t0 + timedelta(days=5), kind="form_submit"),
        ev(user, 10, at=t0 + timedelta(days=5, hours=12), kind="form_submit"),
    ]
    store.record(batch, deltas, rate)
    expected = apply_update(0.381, 0.5, 3.0, rate)  # 0.7777...
    expected = apply_update(expected, 0.5, 0.5, rate)  # capped at 1.0
    raw = (0.381 * rate**3 + 0.5) * rate**0.5 + 0.5
    state = scores(store, user)[1]
    assert expected == 1.0
    assert state.score == pytest.approx(1.0, rel=1e-12)
    assert state.raw == pytest.approx(raw, rel=1e-12)
    assert raw > 1.0  # the uncapped sum keeps growing past the cap
    assert state.last_updated == t0 + timedelta(days=5, hours=12)


def test_sql_arithmetic_equals_python_arithmetic_over_many_batches(
    store: Store, ev: Event, deltas: Deltas, rate: float, t0: datetime
) -> None:
    user = visitor(8)
    kinds = ["view", "click", "search", "form_submit", "view"]
    targets = [("procedure", 10), ("procedure", 20), ("doctor", 100), ("procedure", 30)]
    python: dict[int, AffinityState] = {}
    for day in range(12):
        batch = [
            ev(
                user,
                targets[(day + i) % 4][1],
                target_type=targets[(day + i) % 4][0],
                at=t0 + timedelta(days=day, hours=3 * i),
                kind=kinds[(day * 3 + i) % len(kinds)],
                extra_data={"categories": [2, 3]} if kinds[(day * 3 + i) % 5] == "search" else None,
            )
            for i in range(day % 3 + 1)
        ]
        store.record(batch, deltas, rate)
        for delta in deltas(batch):
            python[delta.category_id] = delta.apply(python.get(delta.category_id), rate)
    stored = scores(store, user)
    assert set(stored) == set(python) == {1, 2, 3}
    for category, state in python.items():
        assert stored[category].score == pytest.approx(state.score, rel=1e-12)
        assert stored[category].raw == pytest.approx(state.raw, rel=1e-12)
        assert stored[category].last_updated == state.last_updated


def test_unknown_targets_are_stored_but_move_nothing(
    store: Store, ev: Event, deltas: Deltas, rate: float
) -> None:
    result = store.record(
        [ev(visitor(1), 999), ev(visitor(1), None, target_type="page")], deltas, rate
    )
    assert result.stored == 2
    assert scores(store, visitor(1)) == {}


def test_older_event_does_not_move_last_updated_back(
    store: Store, ev: Event, deltas: Deltas, rate: float, t0: datetime
) -> None:
    user = visitor(3)
    store.record([ev(user, 10, at=t0 + timedelta(days=1))], deltas, rate)
    store.record([ev(user, 10, at=t0)], deltas, rate)  # a late beacon
    state = scores(store, user)[1]
    assert state.last_updated == t0 + timedelta(days=1)
    assert state.score == pytest.approx(0.2, rel=1e-12)  # no decay for a negative gap


def test_extra_data_is_json_text_and_survives_hostile_strings(
    store: Store, ev: Event, deltas: Deltas, rate: float
) -> None:
    extra = {"q": "nul\x00 and lone \ud800 surrogate", "n": 3, "sql": "'); DROP TABLE x; --"}
    store.record([ev(visitor(1), 10, extra_data=extra)], deltas, rate)
    with store.engine.connect() as conn:
        text = conn.scalar(sa.select(user_interactions.c.extra_data))
    assert isinstance(text, str)
    assert json.loads(text) == extra
    exported = store.export(visitor(1))["interactions"]
    assert isinstance(exported, list)
    assert exported[0]["extra_data"] == extra


@pytest.mark.parametrize("poison", ["huge_target_id", "nan_metadata", "nul_session"])
def test_one_bad_row_does_not_sink_the_batch(
    store: Store, ev: Event, deltas: Deltas, rate: float, t0: datetime, poison: str
) -> None:
    good = [ev(visitor(i % 7), 10 + i % 2, at=t0 + timedelta(seconds=i)) for i in range(99)]
    bad = {
        "huge_target_id": ev(visitor(1), 2**70),
        "nan_metadata": ev(visitor(1), 10, extra_data={"x": math.nan}),
        "nul_session": ev(visitor(1), 10, session_id="a\x00b"),
    }[poison]
    result = store.record([*good[:50], bad, *good[50:]], deltas, rate)
    if poison == "nul_session" and store.dialect == "sqlite":
        # SQLite stores a NUL character; only PostgreSQL rejects it
        assert (result.stored, result.dead_lettered) == (100, 0)
        return
    assert (result.stored, result.duplicates, result.dead_lettered) == (99, 0, 1)
    assert result.failed == (bad,)
    assert store.count_interactions() == 99
    assert store.dead_letter_count() == 1
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(dead_letter.c.error, dead_letter.c.payload)).one()
    assert json.loads(row.payload)["event_id"] == bad.event_id
    assert row.error and "\x00" not in row.error
    # the good rows' affinities were applied: visitor 0 saw Botox and Fillers
    python: dict[int, AffinityState] = {}
    for delta in deltas([e for e in good if e.user_id == visitor(0)]):
        python[delta.category_id] = delta.apply(None, rate)
    assert scores(store, visitor(0))[1].score == pytest.approx(python[1].score, rel=1e-12)


def test_a_failing_deltas_function_keeps_the_interactions(
    store: Store, ev: Event, rate: float, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(batch: Sequence[Interaction]) -> list[AffinityDelta]:
        raise RuntimeError("catalog exploded")

    result = store.record([ev(visitor(1), 10)], broken, rate)
    assert result.stored == 1
    assert scores(store, visitor(1)) == {}
    assert "catalog exploded" in caplog.text


def test_search_moves_matched_categories(
    store: Store, ev: Event, rate: float, catalog: Catalog, weights: dict[str, float]
) -> None:
    event = ev(visitor(1), None, kind="search", target_type="page", extra_data={"categories": [2]})
    store.record([event], lambda b: fold(b, catalog, weights, rate), rate)
    assert scores(store, visitor(1))[2].score == pytest.approx(0.2)


def test_timezone_aware_timestamps_are_stored_as_naive_utc(
    store: Store, ev: Event, deltas: Deltas, rate: float
) -> None:
    from datetime import timezone

    aware = datetime(2024, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    store.record([ev(visitor(1), 10, at=aware)], deltas, rate)
    history = store.load_profile(visitor(1)).history
    assert history[0].timestamp == datetime(2024, 3, 1, 12, 0)


def test_unreachable_database_raises_store_unavailable(ev: Event, deltas: Deltas) -> None:
    store = Store("postgresql://postgres@127.0.0.1:1/nothing", connect_timeout=1)
    try:
        assert store.ping() is False
        with pytest.raises(StoreUnavailable, match="unavailable"):
            store.record([ev(visitor(1), 10)], deltas, 0.9)
        with pytest.raises(StoreUnavailable):
            store.load_profile(visitor(1))
    finally:
        store.dispose()


@pytest.mark.parametrize(
    "url",
    ["nosuchdb://x/y", "not a url at all", "mysql://root@localhost/x", "postgresql+nodriver://x/y"],
)
def test_bad_url_is_a_store_error_with_a_clear_message(url: str) -> None:
    with pytest.raises(StoreError) as info:
        Store(url)
    assert not isinstance(info.value, StoreUnavailable)
    assert "sqlite" in str(info.value) or "database" in str(info.value)


def test_password_is_not_in_messages() -> None:
    store = Store("postgresql://u:hunter2@127.0.0.1:1/x", connect_timeout=1)
    try:
        with pytest.raises(StoreUnavailable) as info:
            store.count_interactions()
        assert "hunter2" not in str(info.value)
        assert "hunter2" not in store.display_url
    finally:
        store.dispose()


def test_affinity_rows_are_unique_per_visitor_and_category(
    store: Store, ev: Event, deltas: Deltas, rate: float
) -> None:
    for _ in range(3):
        store.record([ev(visitor(1), 10), ev(visitor(1), 100, target_type="doctor")], deltas, rate)
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(user_category_affinity.c.category_id).order_by("category_id")
        ).all()
    assert [r[0] for r in rows] == [1, 2]


def test_several_deltas_for_one_category_apply_in_order(
    store: Store, ev: Event, deltas: Deltas, rate: float, t0: datetime
) -> None:
    user = visitor(5)
    store.record([ev(user, 10, at=t0)], deltas, rate)
    batch = [ev(user, 10, at=t0 + timedelta(days=d), kind="click") for d in (1, 2, 4)]

    def one_per_event(events: Sequence[Interaction]) -> list[AffinityDelta]:
        ordered = sorted(events, key=lambda e: e.timestamp)
        return [delta for event in ordered for delta in deltas([event])]

    store.record(batch, one_per_event, rate)
    expected = 0.1
    for gap in (1, 1, 2):
        expected = apply_update(expected, 0.3, gap, rate)
    assert scores(store, user)[1].score == pytest.approx(expected, rel=1e-12)
