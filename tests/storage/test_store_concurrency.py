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
