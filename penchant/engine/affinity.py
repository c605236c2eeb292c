"""Affinity arithmetic: the original's weights, cap and daily decay.

The original updates a score as ``min(1, score * rate**days + weight)`` where
``days`` is the time since ``last_updated``. A run of such updates composes into
one update of the same shape, ``min(cap, scale * score * rate**days + add)``, so
a batch of interactions for one (visitor, category) becomes one atomic SQL upsert.

Ranking also needs an order that the cap destroys (two heavy visitors both sit at
1.0), so each row also keeps an uncapped decayed sum, ``raw``, updated the same
way without the cap, and mapped smoothly into 0..1 by :func:`smooth`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from penchant.engine.catalog import Catalog
from penchant.engine.events import Interaction

__all__ = [
    "AffinityDelta",
    "AffinityState",
    "apply_update",
    "days_between",
    "decayed",
    "fold",
    "smooth",
]

_DAY = 86_400.0


def days_between(earlier: datetime, later: datetime) -> float:
    """Days from ``earlier`` to ``later``, never negative (clocks of workers differ)."""
    return max(0.0, (later - earlier).total_seconds() / _DAY)


def decayed(score: float, days: float, rate: float) -> float:
    return score * math.pow(rate, days)


def apply_update(score: float, weight: float, days: float, rate: float) -> float:
    """One original update: decay by ``rate`` per day, add ``weight``, cap at 1."""
    return min(1.0, decayed(score, days, rate) + weight)


def smooth(raw: float) -> float:
    """Map an uncapped decayed sum into [0, 1) keeping its order."""
    return 1.0 - math.exp(-raw) if raw > 0 else 0.0


@dataclass(frozen=True, slots=True)
class AffinityState:
    """A stored affinity row as ranking sees it."""

    category_id: int
    score: float
    raw: float
    last_updated: datetime

    def raw_at(self, now: datetime, rate: float) -> float:
        """The uncapped score decayed to ``now``."""
        return decayed(self.raw, days_between(self.last_updated, now), rate)


@dataclass(frozen=True, slots=True)
class AffinityDelta:
    """Many updates of one (visitor, category), composed into one.

    Applied to a stored ``(score, raw, last_updated)`` as::

        days  = max(0, first - last_updated) in days
        score = min(cap, scale * score * rate**days + add)
        raw   = scale * raw * rate**days + add_raw
        last_updated = last

    and to a missing row as ``score = min(cap, add)``, ``raw = add_raw``.
    """

    user_id: str
    category_id: int
    first: datetime
    last: datetime
    scale: float
    add: float
    cap: float
    add_raw: float

    def apply(self, state: AffinityState | None, rate: float) -> AffinityState:
        """The same arithmetic in Python (read-your-writes and tests)."""
        if state is None:
            return AffinityState(self.category_id, min(self.cap, self.add), self.add_raw, self.last)
        factor = self.scale * math.pow(rate, days_between(state.last_updated, self.first))
        return AffinityState(
            self.category_id,
            min(self.cap, factor * state.score + self.add),
            factor * state.raw + self.add_raw,
            max(self.last, state.last_updated),
        )


def fold(
    interactions: Iterable[Interaction],
    catalog: Catalog,
    weights: Mapping[str, float],
    rate: float,
) -> list[AffinityDelta]:
    """Compose each (visitor, category)'s updates, in time order, into one delta.

    An interaction moves the categories of its target (a doctor's and a
    package's through their procedures; a search through the categories its
    query matched). Unknown targets and zero weights move nothing.
    """
    acc: dict[tuple[str, int], _Run] = {}
    for event in sorted(interactions, key=lambda e: e.timestamp):
        weight = weights.get(event.interaction_type, 0.0)
        if weight <= 0:
            continue
        for category_id in categories_moved(event, catalog):
            run = acc.get((event.user_id, category_id))
            if run is None:
                acc[(event.user_id, category_id)] = _Run(event.timestamp, event.timestamp, weight)
            else:
                run.then(event.timestamp, weight, rate)
    return [
        AffinityDelta(user, cid, r.first, r.last, r.scale, r.add, r.cap, r.add_raw)
        for (user, cid), r in acc.items()
    ]


class _Run:
    """A composed update ``s -> min(cap, scale*s + add)`` being extended in time order."""

    __slots__ = ("add", "add_raw", "cap", "first", "last", "scale")

    def __init__(self, at: datetime, _unused: datetime, weight: float) -> None:
        self.first = self.last = at
        self.scale, self.add, self.cap, self.add_raw = 1.0, weight, 1.0, weight

    def then(self, at: datetime, weight: float, rate: float) -> None:
        # g(f(s)) with f(s) = min(cap, scale*s + add) and g(s) = min(1, d*s + w)
        #        = min(min(1, d*cap + w), d*scale*s + d*add + w)
        d = math.pow(rate, days_between(self.last, at))
        self.last = at
        self.scale *= d
        self.add = d * self.add + weight
        self.cap = min(1.0, d * self.cap + weight)
        self.add_raw = d * self.add_raw + weight


def categories_moved(event: Interaction, catalog: Catalog) -> tuple[int, ...]:
    """The categories whose affinity this interaction moves."""
    if event.interaction_type == "search":
        extra = event.extra_data or {}
        found = extra.get("categories")
        if isinstance(found, list | tuple):
            return tuple(c for c in found if isinstance(c, int) and catalog.category(c))
        return ()
    return catalog.categories_of(event.target_type, event.target_id)
