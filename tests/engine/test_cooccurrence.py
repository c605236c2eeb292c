from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

import pytest

from penchant.engine.cooccurrence import pair_increments
from penchant.engine.events import Interaction
from penchant.engine.ranking import HistoryEntry

T0 = datetime(2026, 3, 1, 9, 0, 0)
P = "procedure"


def event(
    item: int,
    minutes: float,
    *,
    kind: str = "view",
    user: str = "v",
    target_type: str = P,
) -> Interaction:
    at = T0 + timedelta(minutes=minutes)
    return Interaction(user, "s", kind, target_type, item, at, f"{user}{item}{minutes}{kind}")


def stored(item: int, minutes: float, *, kind: str = "view") -> HistoryEntry:
    return HistoryEntry(kind, P, item, T0 + timedelta(minutes=minutes))


def test_two_views_together_count_one_in_both_directions() -> None:
    out = pair_increments([event(1, 0), event(2, 0)], {})
    assert out == {((P, 1), (P, 2)): 1.0, ((P, 2), (P, 1)): 1.0}


def test_weight_by_hand() -> None:
    # A view then a click an hour later: sqrt(0.1 * 0.3) / 0.1 / (1 + 60/60) = 0.866...
    out = pair_increments([event(1, 0), event(2, 60, kind="click")], {})
    assert out[((P, 1), (P, 2))] == pytest.approx(math.sqrt(0.03) / 0.1 / 2)
    # The third item pairs with the nearest first (k=0), then the next (k=1: * 0.7).
    out = pair_increments([event(1, 0), event(2, 0), event(3, 0)], {})
    assert out[((P, 2), (P, 3))] == pytest.approx(1.0)
    assert out[((P, 1), (P, 3))] == pytest.approx(0.7)


def test_symmetric_and_never_self() -> None:
    rng = random.Random(7)
    events = [
        event(rng.randint(1, 8), rng.uniform(0, 600), user=rng.choice("ab"), kind=k)
        for k in rng.choices(["view", "click", "form_submit", "search"], k=80)
    ]
    out = pair_increments(events, {})
    assert out
    for (x, y), value in out.items():
        assert x != y
        assert value > 0
        assert out[(y, x)] == value


def test_input_order_does_not_matter() -> None:
    events = [event(i % 5, i * 3.0, user="ab"[i % 2]) for i in range(30)]
    shuffled = list(events)
    random.Random(3).shuffle(shuffled)
    assert pair_increments(shuffled, {}) == pair_increments(events, {})


def test_window_bounds_pairs() -> None:
    window = timedelta(hours=2)
    assert pair_increments([event(1, 0), event(2, 119)], {}, window=window)
    assert not pair_increments([event(1, 0), event(2, 121)], {}, window=window)


def test_closer_and_stronger_interactions_weigh_more() -> None:
    near = pair_increments([event(1, 0), event(2, 5)], {})[((P, 1), (P, 2))]
    far = pair_increments([event(1, 0), event(2, 300)], {})[((P, 1), (P, 2))]
    click = pair_increments([event(1, 0), event(2, 5, kind="click")], {})[((P, 1), (P, 2))]
    assert far < near < click


def test_stored_history_pairs_with_new_events() -> None:
    out = pair_increments([event(2, 10)], {"v": [stored(1, 0)]})
    assert out[((P, 1), (P, 2))] > 0
    # Another visitor's history does not pair with this visitor's events.
    assert not pair_increments([event(2, 10)], {"w": [stored(1, 0)]})


def test_stored_entries_after_the_event_are_not_before_it() -> None:
    assert not pair_increments([event(2, 10)], {"v": [stored(1, 20)]})


def test_going_back_and_forth_adds_nothing_more() -> None:
    once = pair_increments([event(1, 0), event(2, 1)], {})
    spam = pair_increments([event(1, 0), event(2, 1), event(1, 2), event(2, 3), event(1, 4)], {})
    assert spam == once
    # Also when the first visit is already stored.
    assert pair_increments([event(1, 2), event(2, 3)], {"v": [stored(1, 0), stored(2, 1)]}) == {}


def test_a_repeat_outside_the_window_counts_again() -> None:
    window = timedelta(minutes=30)
    events = [event(1, 0), event(2, 1), event(1, 100), event(2, 101)]
    out = pair_increments(events, {}, window=window)
    single = pair_increments(events[:2], {}, window=window)
    assert out[((P, 1), (P, 2))] == pytest.approx(2 * single[((P, 1), (P, 2))])


def test_only_items_with_weight_pair() -> None:
    events = [
        event(1, 0, target_type="category"),
        event(2, 1, target_type="page"),
        event(3, 2, kind="hover"),
        Interaction("v", "s", "view", P, None, T0, "none"),
        event(4, 3),
        event(5, 4, target_type="doctor"),
    ]
    out = pair_increments(events, {"v": [HistoryEntry("view", "category", 9, T0)]})
    assert set(out) == {((P, 4), ("doctor", 5)), (("doctor", 5), (P, 4))}
    zero = {"view": 0.0, "click": 0.3}
    assert not pair_increments([event(1, 0), event(2, 1)], {}, weights=zero)
    assert pair_increments([event(1, 0, kind="click"), event(2, 1, kind="click")], {}, weights=zero)


def test_custom_weights() -> None:
    out = pair_increments([event(1, 0), event(2, 0, kind="click")], {}, weights={"view": 1.0})
    assert out == {}  # a click weighs nothing in this table
    out = pair_increments(
        [event(1, 0), event(2, 0, kind="click")], {}, weights={"view": 1.0, "click": 4.0}
    )
    assert out[((P, 1), (P, 2))] == pytest.approx(2.0)


def test_max_pairs_per_event_keeps_the_most_recent() -> None:
    events = [event(i, float(i)) for i in range(1, 31)]
    out = pair_increments(
        events[-1:], {"v": [stored(i, float(i)) for i in range(1, 30)]}, max_pairs_per_event=5
    )
    partners = {x[1] for x, y in out if y == (P, 30)}
    assert partners == {25, 26, 27, 28, 29}


def test_duplicate_stored_entries_are_harmless() -> None:
    twice = pair_increments([event(2, 10)], {"v": [stored(1, 0), stored(1, 0)]})
    once = pair_increments([event(2, 10)], {"v": [stored(1, 0)]})
    assert twice == once
