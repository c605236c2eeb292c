"""A small synthetic world: blended ranking must use co-occurrence when it carries signal.

Visitors follow journeys of three items. Training visitors' events go through
``pair_increments`` (summed and trimmed as the store does) and ``fold``; new
visitors who made the first two steps must be recommended the third.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from penchant.config import DEFAULT_WEIGHTS
from penchant.engine.affinity import fold
from penchant.engine.catalog import Catalog, Category, Item
from penchant.engine.cooccurrence import pair_increments
from penchant.engine.events import Interaction
from penchant.engine.ranking import HistoryEntry, Popularity, VisitorProfile, popular, recommend

T0 = datetime(2026, 3, 1, 9, 0, 0)
ITEMS = 60
CATEGORIES = 6
TOP_N = 10
K = 3

Journey = Callable[[random.Random, int], tuple[int, int, int]]


def world(
    journey: Journey, *, visitors: int = 400, tests: int = 200, seed: int = 1
) -> tuple[float, float]:
    """HR@K of blended and of popular for new visitors on their third step."""
    rng = random.Random(seed)
    catalog = Catalog(
        [Category(c, f"Category {c}") for c in range(1, CATEGORIES + 1)],
        [
            Item("procedure", i, f"Procedure {i}", (1 + (i - 1) % CATEGORIES,))
            for i in range(1, ITEMS + 1)
        ],
    )
    weights = [1.0 / i for i in range(1, ITEMS + 1)]  # Zipf-like popularity of first steps

    def first(r: random.Random) -> int:
        return r.choices(range(1, ITEMS + 1), weights)[0]

    events: list[Interaction] = []
    for v in range(visitors):
        start = T0 + timedelta(minutes=v)
        for step, item in enumerate(journey(rng, first(rng))):
            at = start + timedelta(minutes=step)
            events.append(Interaction(f"t{v}", "s", "view", "procedure", item, at, f"t{v}-{step}"))

    table: dict[tuple[str, int], dict[tuple[str, int], float]] = {}
    for (a, b), w in pair_increments(events, {}).items():
        table.setdefault(a, {})[b] = table.setdefault(a, {}).get(b, 0.0) + w
    neighbours = {
        key: sorted(row.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_N]
        for key, row in table.items()
    }
    counts: dict[int, set[str]] = {}
    for e in events:
        assert e.target_id is not None
        counts.setdefault(e.target_id, set()).add(e.user_id)
    popularity = Popularity({"procedure": {i: len(v) for i, v in counts.items()}})

    blended_hits = popular_hits = 0
    for t in range(tests):
        a, b, c = journey(rng, first(rng))
        now = T0 + timedelta(days=1, minutes=t)
        seen = [
            Interaction(
                f"n{t}", "s", "view", "procedure", item, now - timedelta(minutes=2 - k), f"n{t}{k}"
            )
            for k, item in enumerate((a, b))
        ]
        affinities = {
            d.category_id: d.apply(None, 0.95) for d in fold(seen, catalog, DEFAULT_WEIGHTS, 0.95)
        }
        history = [
            HistoryEntry("view", "procedure", e.target_id or 0, e.timestamp) for e in reversed(seen)
        ]
        profile = VisitorProfile(f"n{t}", affinities, history)
        recs = recommend(
            "procedures",
            catalog=catalog,
            profile=profile,
            popularity=popularity,
            neighbours=neighbours,
            now=now,
            limit=K,
        )
        exclude = frozenset(("procedure", i) for i in (a, b))
        base = popular("procedures", catalog, popularity, limit=K, exclude=exclude)
        blended_hits += c in {r.item.id for r in recs} and c not in (a, b)
        popular_hits += c in {r.item.id for r in base} and c not in (a, b)
    return blended_hits / tests, popular_hits / tests


def _successor(item: int, shift: int) -> int:
    return 1 + (item - 1 + shift) % ITEMS


def test_blended_beats_popular_when_co_occurrence_carries_signal() -> None:
    # The second and third steps follow from the first: "viewed X, then Y, then Z".
    def journey(rng: random.Random, a: int) -> tuple[int, int, int]:
        return a, _successor(a, 17), _successor(a, 31)

    blended, baseline = world(journey)
    assert blended >= 2 * baseline
    assert blended - baseline >= 0.3


def test_blended_stays_near_popular_without_signal() -> None:
    # Every step is an independent popular pick: co-occurrence is noise.
    def journey(rng: random.Random, a: int) -> tuple[int, int, int]:
        picks = rng.choices(range(1, ITEMS + 1), [1.0 / i for i in range(1, ITEMS + 1)], k=2)
        return a, picks[0], picks[1]

    blended, baseline = world(journey)
    assert baseline > 0.1  # popular does find something here
    assert blended >= baseline - 0.05
