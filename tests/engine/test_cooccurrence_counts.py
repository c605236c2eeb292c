"""Co-occurrence increments at their edges: window and repeat boundaries, caps,
weights without a view, out-of-order clocks, and the per-visitor split."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from penchant.engine.cooccurrence import (
    PairIncrements,
    pair_increments,
    pair_increments_per_visitor,
)
from penchant.engine.events import Interaction
from penchant.engine.ranking import HistoryEntry

T0 = datetime(2026, 3, 1, 9, 0, 0)
P = "procedure"


def event(item: int, minutes: float, *, kind: str = "view", user: str = "v") -> Interaction:
    at = T0 + timedelta(minutes=minutes)
    return Interaction(user, "s", kind, P, item, at, f"{user}-{item}-{minutes}-{kind}")


def stored(item: int, minutes: float, *, kind: str = "view") -> HistoryEntry:
    return HistoryEntry(kind, P, item, T0 + timedelta(minutes=minutes))


def both(x: int, y: int, value: float) -> dict[tuple[tuple[str, int], tuple[str, int]], float]:
    return {((P, x), (P, y)): value, ((P, y), (P, x)): value}


def test_default_cap_is_twenty_partners_per_event() -> None:
    """An event pairs with at most 20 distinct earlier items, the most recent ones."""
    out = pair_increments([event(item, item) for item in range(1, 23)], {})
    partners = {y[1] for x, y in out if x == (P, 22)}
    assert partners == set(range(2, 22))


def test_pair_value_is_divided_by_one_without_a_view_weight() -> None:
    """Weights that lack ``view`` leave the increments undivided: two clicks give 0.5."""
    out = pair_increments(
        [event(1, 0, kind="click"), event(2, 0, kind="click")], {}, weights={"click": 0.5}
    )
    assert out == pytest.approx(both(1, 2, 0.5))


def test_zero_view_weight_also_leaves_increments_undivided() -> None:
    """A ``view`` weight of zero is no unit: clicks then count their own weight."""
    weights = {"view": 0.0, "click": 0.25}
    out = pair_increments(
        [event(1, 0, kind="click"), event(2, 0, kind="click")], {}, weights=weights
    )
    assert out == pytest.approx(both(1, 2, 0.25))


def test_half_life_below_one_second_is_kept() -> None:
    """A half-life of half a second: two views one second apart count 1 / (1 + 2)."""
    new = [event(1, 0), event(2, 1 / 60)]
    out = pair_increments(new, {}, half_life=timedelta(milliseconds=500))
    assert out == pytest.approx(both(1, 2, 1 / 3))


def test_return_exactly_one_window_later_is_still_a_repeat() -> None:
    """Coming back to an item exactly ``window`` after it still adds nothing."""
    # A at 0, B an hour later (1 / (1 + 1)), A again 24 h after the first A.
    out = pair_increments([event(1, 0), event(2, 60), event(1, 24 * 60)], {})
    assert out == pytest.approx(both(1, 2, 0.5))


def test_same_item_twice_at_the_same_instant_counts_once() -> None:
    """A repeat at the very same timestamp adds nothing."""
    out = pair_increments([event(1, 0), event(2, 0), event(1, 0)], {})
    assert out == pytest.approx(both(1, 2, 1.0))


def test_item_exactly_one_window_before_still_pairs() -> None:
    """An item seen exactly ``window`` before still pairs: 1 / (1 + 24 h / 1 h) = 1/25."""
    out = pair_increments([event(1, 24 * 60)], {"v": [stored(2, 0)]})
    assert out == pytest.approx(both(1, 2, 1 / 25))


def test_stored_entry_after_the_event_is_skipped_not_the_end() -> None:
    """History stamped after the new event is passed over; what is before still pairs."""
    recent = {"v": [stored(2, 0), stored(3, 120)]}
    out = pair_increments([event(1, 60)], recent)
    assert out == pytest.approx(both(1, 2, 0.5))


def test_repeated_history_item_is_skipped_and_older_items_still_pair() -> None:
    """An item already paired, met again further back, is skipped; older items still pair."""
    recent = {"v": [stored(4, 0), stored(2, 5), stored(3, 10), stored(2, 20)]}
    out = pair_increments([event(1, 30)], recent)
    expected = {
        **both(2, 1, 1 / (1 + 10 / 60)),
        **both(3, 1, 0.75 * 0.7),
        **both(4, 1, 1 / 1.5 * 0.49),
    }
    assert out == pytest.approx(expected)


@pytest.mark.parametrize(
    ("kind", "weights"),
    [
        ("scroll", None),
        ("click", {"view": 0.1}),
        ("click", {"view": 0.1, "click": 0.0}),
    ],
)
def test_stored_history_without_weight_adds_nothing(
    kind: str, weights: dict[str, float] | None
) -> None:
    """Stored interactions of an unknown type or a zero weight never pair."""
    out = pair_increments([event(1, 10)], {"v": [stored(2, 0, kind=kind)]}, weights=weights)
    assert out == {}


def test_an_earlier_event_does_not_hide_a_later_stored_visit() -> None:
    """When a stored visit is later than a new one (clocks differ), the item's last
    visit stays the later one: the next new visit before it is not a repeat."""
    recent = {"v": [stored(2, 60), stored(1, 100)]}
    out = pair_increments([event(1, 50), event(1, 70)], recent)
    assert out == pytest.approx(both(1, 2, 1 / (1 + 10 / 60)))


def test_per_visitor_keeps_each_visitor_apart_and_passes_options() -> None:
    """Each visitor's increments on their own, options applied, visitors without pairs left out."""
    new = [
        event(1, 0, user="a"),
        event(2, 0, user="a"),
        event(1, 0, user="b"),
        event(3, 30, user="b"),
        event(1, 0, user="c"),
    ]
    recent = {"b": [stored(4, -10)]}
    out = pair_increments_per_visitor(new, recent, order_decay=0.5)
    assert set(out) == {"a", "b"}
    assert out["a"] == pytest.approx(both(1, 2, 1.0))
    assert out["b"] == pytest.approx(
        {**both(4, 1, 1 / (1 + 10 / 60)), **both(1, 3, 1 / 1.5), **both(4, 3, 0.6 * 0.5)}
    )


def test_per_visitor_of_nothing_is_empty() -> None:
    """No events: no visitor."""
    assert pair_increments_per_visitor([], {}) == {}


def test_pair_increments_start_empty_with_no_networks() -> None:
    """A new :class:`PairIncrements` is an empty mapping with an empty ``networks``."""
    increments = PairIncrements()
    assert increments == {}
    assert increments.networks == {}
    increments.networks[((P, 1), (P, 2))] = 1
    assert PairIncrements().networks == {}
