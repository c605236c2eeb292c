"""The batch writer: batching, bounded queue, flush and close, outages, exact accounting."""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime

import pytest

from penchant.engine.affinity import AffinityDelta
from penchant.engine.events import Interaction
from penchant.engine.ranking import HistoryEntry
from penchant.storage.store import RecordResult, Store
from penchant.storage.writer import DROP_REASONS, Writer, WriterStats

Event = Callable[..., Interaction]
Deltas = Callable[[Sequence[Interaction]], list[AffinityDelta]]
DOWN_URL = "postgresql://postgres@127.0.0.1:1/penchant"  # nothing listens on port 1


def visitor(n: int) -> str:
    return f"{n:032x}"


def balanced(stats: WriterStats) -> bool:
    return stats.accepted == (
        stats.stored + stats.duplicates + stats.dropped_total + stats.in_flight
    )


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll until ``condition`` holds (a bounded wait, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


class CountingStore(Store):
    """A real Store that remembers the size of every batch it recorded."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.batches: list[int] = []

    def record(
        self,
        batch: Sequence[Interaction],
        deltas_for: Callable[[Sequence[Interaction]], list[AffinityDelta]],
        rate: float,
    ) -> RecordResult:
        self.batches.append(len(batch))
        return super().record(batch, deltas_for, rate)


@pytest.fixture
def sqlite_store(tmp_path: object) -> Iterator[CountingStore]:
    store = CountingStore(f"sqlite:///{tmp_path}/writer.db")
    store.create_all()
    yield store
    store.dispose()


MakeWriter = Callable[..., Writer]


@pytest.fixture
def make_writer() -> Iterator[MakeWriter]:
    """Writer(store_factory, deltas, **options) with fast test timings; closed at teardown."""
    made: list[Writer] = []

    def make(store_factory: Callable[[], Store], deltas: Deltas, **options: object) -> Writer:
        defaults: dict[str, object] = {
            "rate": 0.9,
            "flush_interval": 0.05,
            "backoff_initial": 0.02,
            "backoff_max": 0.1,
        }
        defaults.update(options)
        writer = Writer(store_factory, deltas, **defaults)  # type: ignore[arg-type]
        made.append(writer)
        return writer

    yield make
    for writer in made:
        writer.close(timeout=2)


def test_writes_in_batches_and_flush_waits_for_them(
    make_writer: MakeWriter, sqlite_store: CountingStore, ev: Event, deltas: Deltas
) -> None:
    written: list[Interaction] = []
    writer = make_writer(
        lambda: sqlite_store, deltas, batch_size=10, flush_interval=30.0, on_stored=written.extend
    )
    events = [ev(visitor(i % 3), 10) for i in range(35)]
    assert all(writer.submit(e) for e in events)
    assert writer.flush(timeout=20)
    stats = writer.stats()
    assert (stats.accepted, stats.stored, stats.in_flight) == (35, 35, 0)
    assert max(sqlite_store.batches) <= 10 and sum(sqlite_store.batches) == 35
    assert sqlite_store.count_interactions() == 35
    assert {e.event_id for e in written} == {e.event_id for e in events}
    assert writer.close(timeout=5) == 0


def test_flush_interval_writes_a_partial_batch_without_flush(
    make_writer: MakeWriter, sqlite_store: CountingStore, ev: Event, deltas: Deltas
) -> None:
    writer = make_writer(lambda: sqlite_store, deltas, batch_size=100, flush_interval=0.05)
    writer.submit(ev(visitor(1), 10))
    wait_for(lambda: writer.stats().stored == 1)
    writer.close(timeout=5)


def test_replayed_events_are_counted_as_duplicates(
    make_writer: MakeWriter, sqlite_store: CountingStore, ev: Event, deltas: Deltas
) -> None:
    writer = make_writer(lambda: sqlite_store, deltas)
    events = [ev(visitor(1), 10) for _ in range(5)]
    for event in [*events, *events]:
        writer.submit(event)
    assert writer.flush(timeout=20)
    for event in events:
        writer.submit(event)
    assert writer.flush(timeout=20)
    stats = writer.stats()
    assert (stats.accepted, stats.stored, stats.duplicates) == (15, 5, 10)
    assert balanced(stats)
    writer.close(timeout=5)


def test_bounded_queue_drops_and_counts_without_blocking(
    make_writer: MakeWriter, sqlite_store: CountingStore, ev: Event, deltas: Deltas
) -> None:
    gate = threading.Event()

    def slow_factory() -> Store:
        gate.wait(30)  # the writer thread is stuck until the test opens the gate
        return sqlite_store

    writer = make_writer(slow_factory, deltas, queue_size=5, batch_size=100)
    results = [writer.submit(ev(visitor(1), 10)) for _ in range(12)]
    assert results == [True] * 5 + [False] * 7
    stats = writer.stats()
    assert stats.dropped["queue_full"] == 7 and stats.in_flight == 5 and balanced(stats)
    gate.set()
    assert writer.flush(timeout=20)
    stats = writer.stats()
    assert (stats.stored, stats.in_flight, stats.dropped["queue_full"]) == (5, 0, 7)
    assert balanced(stats)
    writer.close(timeout=5)


def test_invariant_holds_at_every_moment_under_concurrent_submits(
    make_writer: MakeWriter, sqlite_store: CountingStore, ev: Event, deltas: Deltas
) -> None:
    writer = make_writer(lambda: sqlite_store, deltas, batch_size=7, queue_size=40)
    stop = threading.Event()
    unbalanced: list[WriterStats] = []
    samples = 0

    def watch() -> None:
        nonlocal samples
        while not stop.is_set():
            stats = writer.stats()
            samples += 1
            if not balanced(stats):
                unbalanced.append(stats)

    def produce(n: int) -> None:
        for i in range(150):
            writer.submit(ev(visitor(n), 10 + i % 2))
            if i % 10 == 0:
                writer.count_dropped("bot")

    watcher = threading.Thread(target=watch)
    watcher.start()
    producers = [threading.Thread(target=produce, args=(n,)) for n in range(4)]
    for thread in producers:
        thread.start()
    for thread in producers:
        thread.join()
    assert writer.flush(timeout=30)
    stop.set()
    watcher.join()
    stats = writer.stats()
    assert unbalanced == [] and samples > 0
    assert stats.accepted == 4 * 150 + 4 * 15
    assert stats.dropped["bot"] == 60
    assert stats.stored == sqlite_store.count_interactions()
    assert stats.stored + stats.dropped["queue_full"] == 600
    assert stats.in_flight == 0
    writer.close(timeout=5)


def test_outage_keeps_events_then_writes_them_when_the_database_returns(
    make_writer: MakeWriter,
    database_url: str,
    ev: Event,
    deltas: Deltas,
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = Store(database_url)
    good.create_all()
    down = Store(DOWN_URL, connect_timeout=1)
    current: list[Store] = [down]
    writer = make_writer(lambda: current[0], deltas, batch_size=8, queue_size=50)
    events = [ev(visitor(i % 4), 10) for i in range(30)]
    assert all(writer.submit(e) for e in events)
    wait_for(lambda: writer.stats().consecutive_failures >= 3)
    stats = writer.stats()
    assert (stats.stored, stats.in_flight) == (0, 30) and balanced(stats)
    assert stats.errors >= 3 and stats.last_error
    assert not writer.flush(timeout=0.05)  # nothing can be written yet
    # accepted during the outage up to the bound; beyond it dropped and counted
    more = [writer.submit(ev(visitor(9), 11)) for _ in range(25)]
    assert more.count(True) == 20 and writer.stats().dropped["queue_full"] == 5
    assert "could not write" in caplog.text

    current[0] = good
    assert writer.flush(timeout=30)
    stats = writer.stats()
    assert (stats.stored, stats.in_flight, stats.consecutive_failures) == (50, 0, 0)
    assert stats.accepted == 55 and balanced(stats)
    assert good.count_interactions() == 50
    assert writer.close(timeout=5) == 0
    good.dispose()
    down.dispose()


def test_close_during_an_outage_counts_what_could_not_be_written(
    make_writer: MakeWriter, ev: Event, deltas: Deltas
) -> None:
    down = Store(DOWN_URL, connect_timeout=1)
    writer = make_writer(lambda: down, deltas, backoff_initial=0.5, backoff_max=5.0)
    for _ in range(12):
        writer.submit(ev(visitor(1), 10))
    wait_for(lambda: writer.stats().errors >= 1)
    lost = writer.close(timeout=0.5)
    stats = writer.stats()
    assert lost == 12
    assert stats.dropped["db_error"] == 12 and stats.in_flight == 0 and balanced(stats)
    assert writer.submit(ev(visitor(1), 10)) is False  # closed: counted, not queued
    stats = writer.stats()
    assert stats.dropped["shutdown"] == 1 and balanced(stats)
    assert writer.close(timeout=1) == 0
    down.dispose()


def test_close_writes_what_is_queued_within_the_deadline(
    make_writer: MakeWriter, sqlite_store: CountingStore, ev: Event, deltas: Deltas
) -> None:
    writer = make_writer(lambda: sqlite_store, deltas, flush_interval=60.0, batch_size=1000)
    for _ in range(40):
        writer.submit(ev(visitor(2), 20))
    assert writer.close(timeout=10) == 0
    assert sqlite_store.count_interactions() == 40
    assert writer.stats().stored == 40


def test_dead_lettered_rows_are_counted_as_dropped(
    make_writer: MakeWriter, sqlite_store: CountingStore, ev: Event, deltas: Deltas
) -> None:
    writer = make_writer(lambda: sqlite_store, deltas)
    writer.submit(ev(visitor(1), 2**70))
    for _ in range(9):
        writer.submit(ev(visitor(1), 10))
    assert writer.flush(timeout=20)
    stats = writer.stats()
    assert (stats.stored, stats.dropped["dead_letter"]) == (9, 1) and balanced(stats)
    writer.close(timeout=5)


def test_unexpected_errors_drop_the_batch_after_retries(
    make_writer: MakeWriter, ev: Event, deltas: Deltas, tmp_path: object
) -> None:
    class Broken(Store):
        def record(self, *args: object, **kwargs: object) -> RecordResult:
            raise RuntimeError("bug")

    broken = Broken(f"sqlite:///{tmp_path}/b.db")
    writer = make_writer(lambda: broken, deltas, backoff_initial=0.001, backoff_max=0.002)
    writer.submit(ev(visitor(1), 10))
    assert writer.flush(timeout=20)
    stats = writer.stats()
    assert stats.dropped["db_error"] == 1 and stats.errors >= 5 and balanced(stats)
    writer.close(timeout=1)
    broken.dispose()


def test_pairs_for_gets_history_from_before_the_batch(
    make_writer: MakeWriter, sqlite_store: CountingStore, ev: Event, deltas: Deltas, t0: datetime
) -> None:
    seen: list[tuple[list[str], dict[str, list[int]]]] = []

    def pairs_for(
        new: Sequence[Interaction], recent: Mapping[str, Sequence[HistoryEntry]]
    ) -> dict[tuple[tuple[str, int], tuple[str, int]], float]:
        seen.append(
            ([e.event_id for e in new], {u: [h.target_id for h in hs] for u, hs in recent.items()})
        )
        return {(("procedure", 10), ("procedure", 11)): 1.0}

    sqlite_store.record([ev(visitor(1), 30, at=t0)], deltas, 0.9)
    writer = make_writer(lambda: sqlite_store, deltas, pairs_for=pairs_for)
    first = ev(visitor(1), 10)
    writer.submit(first)
    assert writer.flush(timeout=20)
    assert seen == [([first.event_id], {visitor(1): [30]})]
    writer.submit(first)  # a replay: nothing new, no co-occurrence
    assert writer.flush(timeout=20)
    assert len(seen) == 1
    assert sqlite_store.neighbours([("procedure", 10)])[("procedure", 10)] == [
        (("procedure", 11), 1.0)
    ]
    writer.close(timeout=5)


def test_discard_drops_a_visitors_queued_events(
    make_writer: MakeWriter, sqlite_store: CountingStore, ev: Event, deltas: Deltas
) -> None:
    gate = threading.Event()

    def slow() -> Store:
        gate.wait(30)
        return sqlite_store

    writer = make_writer(slow, deltas, flush_interval=60.0, batch_size=1000)
    for n in (1, 2, 1, 3):
        writer.submit(ev(visitor(n), 10))
    assert writer.discard(visitor(1)) == 2
    gate.set()
    assert writer.flush(timeout=20)
    stats = writer.stats()
    assert (stats.stored, stats.dropped["erased"]) == (2, 2) and balanced(stats)
    assert sqlite_store.count_interactions(visitor(1)) == 0
    writer.close(timeout=5)


def test_stats_report_every_reason_and_serialise(deltas: Deltas) -> None:
    writer = Writer(lambda: Store("sqlite://"), deltas, rate=0.9)
    writer.count_dropped("cross_site", 3)
    writer.count_dropped("invalid", 0)
    data = writer.stats().as_dict()
    assert set(data["dropped"]) >= set(DROP_REASONS)  # type: ignore[arg-type]
    assert data["accepted"] == 3 and data["dropped_total"] == 3
    assert writer.close(timeout=1) == 0


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_forked_child_gets_its_own_books_thread_and_store(
    make_writer: MakeWriter, tmp_path: object, ev: Event, deltas: Deltas
) -> None:
    url = f"sqlite:///{tmp_path}/fork.db"
    parent_store = Store(url)
    parent_store.create_all()
    made: list[int] = []

    def factory() -> Store:
        made.append(os.getpid())
        return Store(url)

    writer = make_writer(factory, deltas, flush_interval=60.0)
    writer.submit(ev(visitor(1), 10))
    assert writer.flush(timeout=20)
    writer.submit(ev(visitor(1), 11))  # still queued in the parent at fork time
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            fresh = writer.stats()
            ok = (fresh.accepted, fresh.in_flight) == (0, 0)
            writer.submit(ev(visitor(2), 10))
            ok = ok and writer.flush(timeout=20) and writer.stats().stored == 1
            ok = ok and made[-1] == os.getpid()  # the store was made in the child
            code = 0 if ok else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert writer.flush(timeout=20)
    assert writer.stats().stored == 2
    assert parent_store.count_interactions(visitor(1)) == 2  # the parent wrote its own
    assert parent_store.count_interactions(visitor(2)) == 1  # the child wrote its own
    parent_store.dispose()


def test_submit_never_raises(deltas: Deltas) -> None:
    writer = Writer(lambda: Store("sqlite://"), deltas, rate=0.9, backoff_initial=0.001)
    assert writer.submit(None) in (True, False)  # type: ignore[arg-type]
    writer.close(timeout=2)


class ListIntake:
    """Work handed to the writer before it is an event: each entry submits one."""

    def __init__(self) -> None:
        self.items: list[Callable[[], object]] = []
        self.drained_by: list[str] = []
        self.looked = 0  # how often the writer asked how much it holds

    def __len__(self) -> int:
        self.looked += 1
        return len(self.items)

    def drain(self) -> None:
        items, self.items = self.items, []
        if items:
            self.drained_by.append(threading.current_thread().name)
        for item in items:
            item()


class IntakeBrokenOnce(ListIntake):
    """An intake whose first drain fails: a bug on the writer's thread."""

    def __init__(self) -> None:
        super().__init__()
        self.broken_in: list[threading.Thread] = []

    def drain(self) -> None:
        if not self.broken_in:
            self.broken_in.append(threading.current_thread())
            raise RuntimeError("bug in the hand-over")
        super().drain()


def test_a_writer_thread_killed_by_a_bug_is_restarted_by_the_next_submit(
    make_writer: MakeWriter,
    sqlite_store: CountingStore,
    ev: Event,
    deltas: Deltas,
    caplog: pytest.LogCaptureFixture,
) -> None:
    intake = IntakeBrokenOnce()
    writer = make_writer(
        lambda: sqlite_store, deltas, batch_size=5, flush_interval=0.01, intake=intake
    )
    intake.items.extend(functools.partial(writer.submit, ev(visitor(i), 10)) for i in range(5))
    writer.wake()  # a batch is due: the thread drains the hand-over, and dies of it
    wait_for(lambda: "writer thread failed" in caplog.text)
    (dead,) = intake.broken_in
    dead.join(5)
    assert not dead.is_alive() and not writer.running
    assert len(intake) == 5  # what it held still waits
    second = [ev(visitor(i), 11) for i in range(3)]
    assert writer.submit(second[0])
    assert writer.running  # the submit started a new thread
    for event in second[1:]:
        assert writer.submit(event)
    wait_for(lambda: writer.stats().stored == 8)
    assert intake.drained_by == ["penchant-writer"]
    stats = writer.stats()
    assert (stats.stored, stats.duplicates, stats.in_flight) == (8, 0, 0)
    assert sqlite_store.count_interactions() == 8
    assert balanced(stats)


def test_the_intake_is_drained_by_the_writers_thread_when_its_batch_is_due(
    make_writer: MakeWriter, sqlite_store: CountingStore, ev: Event, deltas: Deltas
) -> None:
    intake = ListIntake()
    writer = make_writer(
        lambda: sqlite_store, deltas, batch_size=100, flush_interval=0.05, intake=intake
    )
    events = [ev(visitor(i), 10) for i in range(3)]
    intake.items.extend(functools.partial(writer.submit, e) for e in events)
    writer.wake()  # nothing is submitted: only the hand-over holds work
    wait_for(lambda: writer.stats().stored == 3)
    assert intake.drained_by == ["penchant-writer"]
    assert sqlite_store.batches == [3]
    assert balanced(writer.stats())


def test_a_full_intake_is_drained_without_waiting_for_the_interval(
    make_writer: MakeWriter, sqlite_store: CountingStore, ev: Event, deltas: Deltas
) -> None:
    intake = ListIntake()
    writer = make_writer(
        lambda: sqlite_store, deltas, batch_size=5, flush_interval=3600.0, intake=intake
    )
    writer.submit(ev(visitor(0), 10))  # starts the thread, which waits the hour ...
    wait_for(lambda: intake.looked > 0)  # ... once it has found the intake empty
    intake.items.extend(functools.partial(writer.submit, ev(visitor(n), 10)) for n in range(1, 5))
    writer.wake()  # the hand-over has work: the queue and the intake make a batch
    wait_for(lambda: writer.stats().stored == 5)
    assert sqlite_store.batches == [5]


def test_close_writes_what_the_intake_still_holds(
    make_writer: MakeWriter, sqlite_store: CountingStore, ev: Event, deltas: Deltas
) -> None:
    intake = ListIntake()
    writer = make_writer(
        lambda: sqlite_store, deltas, batch_size=100, flush_interval=3600.0, intake=intake
    )
    writer.submit(ev(visitor(0), 10))
    intake.items.append(lambda: writer.submit(ev(visitor(1), 10)))
    assert writer.close(timeout=10) == 0
    assert sqlite_store.count_interactions() == 2
    assert intake.items == []
