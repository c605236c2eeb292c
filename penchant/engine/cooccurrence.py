"""Item-to-item co-occurrence: "visitors who viewed X also viewed Y".

Kept incrementally: each batch of newly stored interactions yields weight
increments for item pairs, which the store adds to its neighbour table (and
trims to the top N per item). No nightly job is needed for correctness.

A pair is counted when a visitor interacts with item Y after item X within
``window``. Its weight grows with both interactions' weights (two views count
1.0) and shrinks with the time between them. A visitor returning to an item
they already had within the window adds nothing, so going back and forth
between two pages cannot inflate their pair.

:func:`pair_increments_per_visitor` keeps each visitor's increments apart, for
a caller that counts each network once per pair (:class:`PairIncrements`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from penchant.config import DEFAULT_WEIGHTS
from penchant.engine.events import ITEM_TYPES, Interaction
from penchant.engine.ranking import HistoryEntry

__all__ = ["PairIncrements", "pair_increments", "pair_increments_per_visitor"]

_Key = tuple[str, int]
_Pair = tuple[_Key, _Key]


def pair_increments(
    new: Sequence[Interaction],
    recent: Mapping[str, Sequence[HistoryEntry]],
    *,
    window: timedelta = timedelta(days=1),
    max_pairs_per_event: int = 20,
    half_life: timedelta = timedelta(hours=1),
    order_decay: float = 0.7,
    weights: Mapping[str, float] | None = None,
) -> dict[_Pair, float]:
    """Symmetric co-occurrence increments from newly stored interactions.

    ``recent`` holds each visitor's stored history before this batch (it must
    not contain ``new`` itself); earlier events of the batch count as history
    too. Each item event pairs with at most ``max_pairs_per_event`` distinct
    items the visitor had in the ``window`` before it, most recent first, the
    k-th (from 0) adding ``sqrt(w_x * w_y) / w_view / (1 + gap / half_life) *
    order_decay**k``: items next to each other in one visit count most, without
    erasing the rest of the window.
    ``weights`` default to the original interaction weights.
    Non-item targets, unknown interaction types and zero weights add nothing.
    Both orders of a pair get the same increment; an item never pairs with itself.
    """
    table = DEFAULT_WEIGHTS if weights is None else weights
    unit = table.get("view", 0.0) or 1.0
    half = max(half_life.total_seconds(), 1e-9)
    out: dict[_Pair, float] = {}
    visitors: dict[str, _Visitor] = {}
    for event in sorted(new, key=lambda e: e.timestamp):
        if event.target_type not in ITEM_TYPES or event.target_id is None:
            continue
        strength = table.get(event.interaction_type, 0.0)
        if strength <= 0:
            continue
        visitor = visitors.get(event.user_id)
        if visitor is None:
            visitor = visitors[event.user_id] = _Visitor(recent.get(event.user_id, ()), table)
        key: _Key = (event.target_type, event.target_id)
        at = event.timestamp
        start = at - window
        previous = visitor.last_at.get(key)
        repeat = previous is not None and start <= previous <= at
        if not repeat:
            paired: set[_Key] = set()
            for then, other, other_strength in reversed(visitor.entries):
                if then > at:  # a stored entry after this event (clocks differ): not before it
                    continue
                if then < start or len(paired) >= max_pairs_per_event:
                    break
                if other in paired or other == key:
                    continue
                gap = (at - then).total_seconds()
                value = (
                    math.sqrt(strength * other_strength)
                    / unit
                    / (1.0 + gap / half)
                    * order_decay ** len(paired)
                )
                paired.add(other)
                out[(other, key)] = out.get((other, key), 0.0) + value
                out[(key, other)] = out.get((key, other), 0.0) + value
        visitor.add(at, key, strength)
    return out


class PairIncrements(dict[_Pair, float]):
    """Pair increments, and for each pair how many sources not counted before saw
    it (``networks``, filled in by whoever knows what was counted before)."""

    def __init__(self) -> None:
        super().__init__()
        self.networks: dict[_Pair, int] = {}


def pair_increments_per_visitor(
    new: Sequence[Interaction],
    recent: Mapping[str, Sequence[HistoryEntry]],
    **options: Any,
) -> dict[str, dict[_Pair, float]]:
    """:func:`pair_increments` of each visitor apart (their sum is the batch's):
    for a caller that counts each source of a pair once (see :class:`PairIncrements`)."""
    by_visitor: dict[str, list[Interaction]] = {}
    for event in new:
        by_visitor.setdefault(event.user_id, []).append(event)
    out: dict[str, dict[_Pair, float]] = {}
    for user_id, events in by_visitor.items():
        found = pair_increments(events, recent, **options)
        if found:
            out[user_id] = found
    return out


class _Visitor:
    """One visitor's item history, oldest first, and when each item was last seen."""

    __slots__ = ("entries", "last_at")

    def __init__(self, stored: Sequence[HistoryEntry], table: Mapping[str, float]) -> None:
        self.entries: list[tuple[datetime, _Key, float]] = []
        self.last_at: dict[_Key, datetime] = {}
        for entry in sorted(stored, key=lambda h: h.timestamp):
            strength = table.get(entry.interaction_type, 0.0)
            if entry.target_type in ITEM_TYPES and strength > 0:
                self.add(entry.timestamp, (entry.target_type, entry.target_id), strength)

    def add(self, at: datetime, key: _Key, strength: float) -> None:
        self.entries.append((at, key, strength))
        previous = self.last_at.get(key)
        if previous is None or at > previous:
            self.last_at[key] = at
