"""Store reads: profiles, history, popularity, neighbours, privacy, retention, monitoring."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from penchant.engine.affinity import AffinityDelta
from penchant.engine.events import Interaction
from penchant.storage.store import Store

Event = Callable[..., Interaction]
Deltas = Callable[[Sequence[Interaction]], list[AffinityDelta]]


def visitor(n: int) -> str:
    return f"{n:032x}"


def test_load_profile_history_is_recent_first_limited_and_own(
    store: Store, ev: Event, deltas: Deltas, rate: float, t0: datetime
) -> None:
    mine = [ev(visitor(1), 10 + i % 2, at=t0 + timedelta(minutes=i)) for i in range(30)]
    page = ev(visitor(1), None, target_type="page", at=t0 + timedelta(hours=5))
    other = ev(visitor(2), 30, at=t0 + timedelta(hours=6))
    store.record([*mine, page, other], deltas, rate)

    profile = store.load_profile(visitor(1), history_limit=10)
    assert [h.timestamp for h in profile.history] == [
        t0 + timedelta(minutes=i) for i in range(29, 19, -1)
    ]
    assert {h.target_id for h in profile.history} == {10, 11}
    assert set(profile.affinities) == {1}
    assert not profile.is_empty
    assert store.load_profile(visitor(99)).is_empty


def test_load_profile_reads_through_the_visitor_time_index(
    store: Store, ev: Event, deltas: Deltas, rate: float, t0: datetime
) -> None:
    # statistics that say "one row per visitor" must not tempt the planner into
    # sorting a heavy visitor's whole history
    crowd = [ev(visitor(n), 10, at=t0 + timedelta(seconds=n)) for n in range(3000)]
    heavy = [ev(visitor(9999), 10, at=t0 + timedelta(seconds=3 * i)) for i in range(150)]
    for start in range(0, len(crowd), 500):
        store.record(crowd[start : start + 500], deltas, rate)
    store.record(heavy, deltas, rate)
    # the history query as load_profile sends it, with its parameters
    sent: list[tuple[str, Any]] = []

    def history_query(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if "FROM user_interactions" in statement and "ORDER BY" in statement:
            sent.append((statement, parameters))

    sa.event.listen(store.engine, "before_cursor_execute", history_query)
    try:
        assert len(store.load_profile(visitor(9999)).history) == 50
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", history_query)
    ((sql, parameters),) = sent
    with store.engine.connect() as conn:
        if store.dialect == "sqlite":
            conn.exec_driver_sql("ANALYZE")
            explained = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, parameters)
            plan = " ".join(str(row[-1]) for row in explained)
        else:
            conn.exec_driver_sql("ANALYZE user_interactions")
            conn.exec_driver_sql("SET enable_seqscan = off")  # a tiny table would be scanned
            plan = " ".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql, parameters))
    if store.dialect == "sqlite":
        assert "idx_user_interactions_user_time" in plan and "TEMP B-TREE" not in plan
    else:  # an index on the visitor, never a walk along the time index or the table
        assert "Index Cond: ((user_id)" in plan
        assert "Seq Scan" not in plan and "idx_user_interactions_timestamp" not in plan


def test_recent_history_per_visitor(
    store: Store, ev: Event, deltas: Deltas, rate: float, t0: datetime
) -> None:
    events = [
        ev(visitor(v), 10 + i, at=t0 + timedelta(minutes=10 * i + v))
        for v in range(1, 4)
        for i in range(5)
    ]
    store.record(events, deltas, rate)
    recent = store.recent_history([visitor(1), visitor(2), visitor(9)], limit_per_user=3)
    assert set(recent) == {visitor(1), visitor(2), visitor(9)}
    assert [h.target_id for h in recent[visitor(1)]] == [14, 13, 12]
    assert [h.target_id for h in recent[visitor(2)]] == [14, 13, 12]
    assert recent[visitor(9)] == []
    many = store.recent_history([visitor(i) for i in range(120)], limit_per_user=1)
    assert len(many) == 120 and len(many[visitor(3)]) == 1


def test_popularity_counts_distinct_visitors_so_spam_does_not_win(
    store: Store, ev: Event, deltas: Deltas, rate: float, t0: datetime
) -> None:
    spam = [ev(visitor(1), 10, at=t0 + timedelta(seconds=i)) for i in range(200)]
    crowd = [ev(visitor(v), 11, at=t0) for v in range(2, 5)]
    old = [ev(visitor(v), 30, at=t0 - timedelta(days=40)) for v in range(5, 15)]
    doctor = [ev(visitor(v), 100, target_type="doctor", at=t0) for v in range(2, 4)]
    store.record([*spam, *crowd, *old, *doctor], deltas, rate)

    popularity = store.popularity(t0 - timedelta(days=30))
    assert popularity.of("procedure", 11) == 3
    assert popularity.of("procedure", 10) == 1  # 200 events, one visitor
    assert popularity.of("procedure", 30) == 0  # outside the window
    assert popularity.of("doctor", 100) == 2
    top = store.popularity(t0 - timedelta(days=30), limit_per_type=1)
    assert dict(top.counts["procedure"]) == {11: 3}


def test_neighbours_accumulate_rank_and_trim(store: Store, t0: datetime) -> None:
    a, b, c, d = ("procedure", 10), ("procedure", 11), ("procedure", 20), ("doctor", 100)
    store.add_neighbours({(a, b): 1.0, (b, a): 1.0, (a, c): 0.5, (a, d): 2.0}, t0)
    store.add_neighbours({(a, b): 1.5, (a, a): 9.0, (c, a): float("nan")}, t0)
    found = store.neighbours([a, b, c, ("package", 1)])
    assert found[a] == [(b, 2.5), (d, 2.0), (c, 0.5)]
    assert found[b] == [(a, 1.0)]
    assert found[c] == []  # NaN and self-pairs are never stored
    assert found[("package", 1)] == []
    assert store.neighbours([a], limit_per_item=1)[a] == [(b, 2.5)]

    deleted = store.trim_neighbours(2)
    assert deleted == 1
    assert store.neighbours([a])[a] == [(b, 2.5), (d, 2.0)]
    assert store.trim_neighbours(2) == 0


def test_neighbours_of_many_items_in_one_read(store: Store, t0: datetime) -> None:
    """More items than one statement's union holds on SQLite (PostgreSQL reads
    them in one statement): each item gets its own best, in order."""
    items = [("procedure", i) for i in range(1, 61)] + [("doctor", 7)]
    pairs = {(item, ("package", k)): float(k + n) for n, item in enumerate(items) for k in range(3)}
    store.add_neighbours(pairs, t0)
    found = store.neighbours([*items, ("procedure", 999)], limit_per_item=2)
    assert len(found) == len(items) + 1
    for n, item in enumerate(items):
        assert found[item] == [(("package", 2), float(2 + n)), (("package", 1), float(1 + n))]
    assert found[("procedure", 999)] == []


def test_neighbour_upserts_from_threads_add_up(store: Store, t0: datetime) -> None:
    a, b = ("procedure", 10), ("procedure", 11)

    def add() -> None:
        for _ in range(10):
            store.add_neighbours({(a, b): 1.0, (b, a): 1.0}, t0)

    threads = [threading.Thread(target=add) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.neighbours([a])[a] == [(b, 40.0)]


def test_erase_and_export_touch_one_visitor_only(
    store: Store, ev: Event, deltas: Deltas, rate: float, t0: datetime
) -> None:
    store.record(
        [ev(visitor(1), 10, extra_data={"k": "v"}), ev(visitor(1), 20), ev(visitor(2), 10)],
        deltas,
        rate,
    )
    exported = store.export(visitor(1))
    assert exported["user_id"] == visitor(1)
    interactions = exported["interactions"]
    affinities = exported["affinities"]
    assert isinstance(interactions, list) and isinstance(affinities, list)
    assert sorted(i["target_id"] for i in interactions) == [10, 20]
    assert {i["extra_data"] == {"k": "v"} for i in interactions} == {True, False}
    assert [a["category_id"] for a in affinities] == [1, 2]
    assert all(isinstance(i["timestamp"], str) for i in interactions)

    assert store.erase(visitor(1)) == 4  # two interactions, two affinities
    assert store.export(visitor(1))["interactions"] == []
    assert store.count_interactions(visitor(1)) == 0
    assert store.count_interactions(visitor(2)) == 1
    assert store.load_profile(visitor(2)).affinities


def test_purge_deletes_exactly_the_expired_rows(
    store: Store, ev: Event, deltas: Deltas, rate: float, t0: datetime
) -> None:
    cutoff = t0
    store.record(
        [
            ev(visitor(1), 10, at=cutoff - timedelta(days=10)),
            ev(visitor(1), 11, at=cutoff - timedelta(microseconds=1)),
            ev(visitor(2), 10, at=cutoff),
            ev(visitor(2), 20, at=cutoff + timedelta(days=1)),
        ],
        deltas,
        rate,
    )
    # visitor 1's Injectables affinity was last updated before the cutoff
    assert store.purge_counts(cutoff).interactions == 2
    result = store.purge(cutoff)
    assert (result.interactions, result.affinities) == (2, 1)
    assert store.count_interactions(visitor(1)) == 0
    assert store.count_interactions(visitor(2)) == 2
    assert set(store.load_profile(visitor(2)).affinities) == {1, 2}
    assert store.purge(cutoff).interactions == 0


def test_daily_counts_and_engaged_visitors(
    store: Store, ev: Event, deltas: Deltas, rate: float, t0: datetime
) -> None:
    day1, day2 = t0, t0 + timedelta(days=1)
    events = [ev(visitor(1), 10, at=day1 + timedelta(minutes=i)) for i in range(6)]
    events += [ev(visitor(2), 10, at=day1 + timedelta(minutes=i)) for i in range(5)]
    events += [ev(visitor(2), 10, at=day2, kind="click"), ev(visitor(3), 10, at=day2)]
    events += [ev(visitor(4), 10, at=t0 - timedelta(days=30)) for _ in range(9)]
    store.record(events, deltas, rate)

    since = t0 - timedelta(days=7)
    assert store.daily_counts(since) == [
        (day1.date().isoformat(), "view", 11),
        (day2.date().isoformat(), "click", 1),
        (day2.date().isoformat(), "view", 1),
    ]
    # more than 5: visitor 1 (6) and visitor 2 (6), not visitor 3, not visitor 4 (too old)
    assert store.engaged_visitors(since) == [(visitor(1), 6), (visitor(2), 6)]
    assert store.engaged_visitors(since, minimum=6) == []
    assert store.engaged_visitors(t0 - timedelta(days=60), minimum=8) == [(visitor(4), 9)]


def test_top_categories_and_counts(store: Store, ev: Event, deltas: Deltas, rate: float) -> None:
    store.record(
        [ev(visitor(1), 10), ev(visitor(2), 10), ev(visitor(2), 30, kind="click")], deltas, rate
    )
    top = store.top_categories(5)
    assert [cid for cid, _ in top] == [3, 1]
    assert top[0][1] == pytest.approx(0.3) and top[1][1] == pytest.approx(0.2)
    assert store.top_categories(1) == top[:1]
    assert store.count_interactions() == 3
    assert store.dead_letter_count() == 0


def test_meta_is_set_once_even_when_raced(store: Store) -> None:
    assert store.get_meta("secret_key") is None
    results: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def race(n: int) -> None:
        start.wait()
        value = store.set_meta_if_absent("secret_key", f"value-{n}")
        with lock:
            results.append(value)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 6 and len(set(results)) == 1
    assert store.get_meta("secret_key") == results[0]
    assert store.set_meta_if_absent("secret_key", "later") == results[0]


def test_create_all_raced_from_threads(database_url: str) -> None:
    stores = [Store(database_url) for _ in range(3)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(stores))

    def create(s: Store) -> None:
        start.wait()
        try:
            s.create_all()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert "user_interactions" in sa.inspect(stores[0].engine).get_table_names()
    finally:
        for s in stores:
            s.dispose()


def test_in_memory_sqlite_is_shared_between_threads(ev: Event, deltas: Deltas, rate: float) -> None:
    store = Store("sqlite://")
    store.create_all()
    thread = threading.Thread(target=lambda: store.record([ev(visitor(1), 10)], deltas, rate))
    thread.start()
    thread.join()
    assert store.count_interactions() == 1
    assert store.ping()
    store.dispose()


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_store_keeps_working_on_both_sides_of_a_fork(
    store: Store, ev: Event, deltas: Deltas, rate: float
) -> None:
    store.record([ev(visitor(1), 10)], deltas, rate)  # the parent's pool holds a connection
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            store.record([ev(visitor(2), 10)], deltas, rate)
            code = 0 if store.count_interactions() == 2 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    store.record([ev(visitor(3), 10)], deltas, rate)
    assert store.count_interactions() == 3


def test_erase_and_purge_cover_exposures_and_dead_letters(database_url: str) -> None:
    from datetime import datetime, timedelta

    import sqlalchemy as sa

    from penchant.storage.reporting import Exposure, record_exposures
    from penchant.storage.schema import dead_letter, exposures
    from penchant.storage.store import Store

    store = Store(database_url)
    store.create_all()
    now = datetime(2026, 6, 1)
    old, recent = now - timedelta(days=100), now - timedelta(days=1)
    keep, gone = "a" * 32, "b" * 32
    record_exposures(
        store,
        [
            Exposure(
                keep, "s", "pv1", "personalized", "procedures", (("procedure", 1, 1),), recent
            ),
            Exposure(keep, "s", "pv0", "personalized", "procedures", (("procedure", 1, 1),), old),
            Exposure(gone, "s", "pv2", "holdout", "doctors", (("doctor", 2, 1),), recent),
        ],
    )
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(dead_letter),
            [{"failed_at": recent, "error": "x", "payload": f'{{"user_id": "{gone}"}}'}],
        )
    assert store.erase(gone) == 2  # one exposure, one dead-lettered row
    assert store.purge_counts(now - timedelta(days=90)).exposures == 1
    assert store.purge(now - timedelta(days=90)).exposures == 1
    with store.engine.connect() as conn:
        left = conn.execute(sa.select(exposures.c.user_id, exposures.c.page_view_id)).all()
        dead = conn.execute(sa.select(sa.func.count()).select_from(dead_letter)).scalar()
    assert [tuple(r) for r in left] == [(keep, "pv1")]
    assert dead == 0
    store.dispose()
