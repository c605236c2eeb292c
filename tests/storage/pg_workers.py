"""Worker processes for the concurrency test (imported by name in spawned children)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from penchant.engine.affinity import AffinityDelta, fold
from penchant.engine.catalog import Catalog, Category, Item
from penchant.engine.events import Interaction
from penchant.storage.store import Store

VISITOR = "c0ffee" + "0" * 26
T0 = datetime(2024, 3, 1, 12, 0, 0)
RATE = 1.0  # no decay: the final score is a sum, so a lost update shows
# small weights: 500 events per category stay far below the cap of 1.0
WEIGHTS = {"view": 0.0001, "search": 0.0002, "click": 0.0003, "form_submit": 0.0004}
KINDS = ("view", "click", "form_submit", "view", "click")
CATALOG = Catalog(
    [Category(c, f"Category {c}") for c in range(1, 5)],
    [Item("procedure", 10 * c, f"Procedure {c}", (c,)) for c in range(1, 5)],
)


def deltas_for(batch: Sequence[Interaction]) -> list[AffinityDelta]:
    return fold(batch, CATALOG, WEIGHTS, RATE)


def interactions(worker: int, count: int) -> list[Interaction]:
    """The same events in the worker and in the test's serial computation."""
    return [
        Interaction(
            user_id=VISITOR,
            session_id=f"{worker:064x}",
            interaction_type=KINDS[(worker + i) % len(KINDS)],
            target_type="procedure",
            target_id=10 * (1 + (i + worker) % 4),
            timestamp=T0 + timedelta(seconds=4 * i + worker),
            event_id=f"{worker:04x}{i:028x}",
        )
        for i in range(count)
    ]


def apply_interactions(url: str, worker: int, count: int, batch: int, barrier: Any) -> None:
    store = Store(url)
    events = interactions(worker, count)
    barrier.wait(timeout=60)
    try:
        for start in range(0, count, batch):
            store.record(events[start : start + batch], deltas_for, RATE)
    finally:
        store.dispose()


def shared_events(count: int) -> list[Interaction]:
    """Events of 50 visitors that every worker of the overlap test records, in its own order."""
    return [
        Interaction(
            user_id=f"{i % 50:032x}",
            session_id=f"{i % 7:064x}",
            interaction_type=KINDS[i % len(KINDS)],
            target_type="procedure",
            target_id=10 * (1 + i % 4),
            timestamp=T0 + timedelta(seconds=i),
            event_id=f"{i:032x}",
            extra_data={"path": "/a\tb\\c\n"} if i % 3 == 0 else None,
        )
        for i in range(count)
    ]


def record_overlapping(
    url: str, worker: int, count: int, batch: int, barrier: Any, out: Any
) -> None:
    """Record all the shared events, shuffled per worker; put (stored, duplicates, dead) in out."""
    import random

    store = Store(url)
    events = shared_events(count)
    random.Random(worker).shuffle(events)
    totals = [0, 0, 0]
    barrier.wait(timeout=60)
    try:
        for start in range(0, count, batch):
            result = store.record(events[start : start + batch], deltas_for, RATE)
            totals[0] += result.stored
            totals[1] += result.duplicates
            totals[2] += result.dead_lettered
    finally:
        store.dispose()
    out.put(tuple(totals))
