"""Four OS processes update the same visitor at once; no update is lost."""

from __future__ import annotations

import importlib
import multiprocessing
from pathlib import Path

import pytest

from penchant.storage.store import Store


@pytest.mark.slow
def test_four_processes_updating_one_visitor_lose_nothing(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the spawned children import the worker module by name from this folder
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    workers = importlib.import_module("pg_workers")
    processes_count, per_process, batch = 4, 500, 25

    store = Store(pg_url)
    store.create_all()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes_count)
    processes = [
        ctx.Process(
            target=workers.apply_interactions, args=(pg_url, w, per_process, batch, barrier)
        )
        for w in range(processes_count)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0] * processes_count

    serial: dict[int, object] = {}
    everything = [e for w in range(processes_count) for e in workers.interactions(w, per_process)]
    for delta in workers.deltas_for(everything):
        serial[delta.category_id] = delta.apply(None, workers.RATE)
    try:
        assert store.count_interactions(workers.VISITOR) == processes_count * per_process
        stored = store.load_profile(workers.VISITOR).affinities
        assert set(stored) == set(serial) == {1, 2, 3, 4}
        for category, expected in serial.items():
            state = stored[category]
            assert state.score < 0.9  # far from the cap: a lost update would change the sum
            assert state.score == pytest.approx(expected.score, rel=1e-9)  # type: ignore[attr-defined]
            assert state.raw == pytest.approx(expected.raw, rel=1e-9)  # type: ignore[attr-defined]
            assert state.last_updated == expected.last_updated  # type: ignore[attr-defined]
    finally:
        store.dispose()


@pytest.mark.slow
def test_four_processes_recording_the_same_events_store_each_once(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Overlapping batches in different orders: no deadlock, no loss, nothing twice."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    workers = importlib.import_module("pg_workers")
    processes_count, count, batch = 4, 2000, 200

    store = Store(pg_url)
    store.create_all()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes_count)
    out = ctx.Queue()
    processes = [
        ctx.Process(target=workers.record_overlapping, args=(pg_url, w, count, batch, barrier, out))
        for w in range(processes_count)
    ]
    for process in processes:
        process.start()
    totals = [out.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=120)
    try:
        assert [p.exitcode for p in processes] == [0] * processes_count
        assert sum(t[0] for t in totals) == count  # each event stored by exactly one worker
        assert all(t[0] + t[1] == count and t[2] == 0 for t in totals)
        assert store.count_interactions() == count
        assert store.dead_letter_count() == 0
        stored = {e.event_id: e for e in store.recent_interactions(limit=count)}
        expected = {e.event_id: e for e in workers.shared_events(count)}
        assert stored == expected
        # the affinity of every visitor counts each event once, as one serial pass would
        for n in (0, 17, 49):
            user = f"{n:032x}"
            serial: dict[int, object] = {}
            for delta in workers.deltas_for([e for e in expected.values() if e.user_id == user]):
                serial[delta.category_id] = delta.apply(None, workers.RATE)
            affinities = store.load_profile(user).affinities
            assert set(affinities) == set(serial)
            for category, state in serial.items():
                assert affinities[category].score == pytest.approx(state.score, rel=1e-9)  # type: ignore[attr-defined]
    finally:
        store.dispose()
