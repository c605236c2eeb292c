from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest

from penchant.engine.affinity import (
    AffinityState,
    apply_update,
    categories_moved,
    days_between,
    fold,
    smooth,
)
from penchant.engine.catalog import Catalog, Category, Item
from penchant.engine.events import Interaction

WEIGHTS = {"view": 0.1, "search": 0.2, "click": 0.3, "form_submit": 0.5}
T0 = datetime(2026, 1, 1, 12, 0, 0)
CATALOG = Catalog(
    [Category(1, "Injectables"), Category(2, "Laser"), Category(3, "Surgery")],
    [
        Item("procedure", 10, "Botox", (1,)),
        Item("procedure", 11, "Laser resurfacing", (2,)),
        Item("procedure", 12, "Rhinoplasty", (3,)),
        Item("doctor", 20, "Dr. Rossi", procedure_ids=(10, 11)),
        Item("package", 30, "Glow", procedure_ids=(11, 12)),
    ],
)


def event(
    kind: str, target: str, target_id: int | None, at: datetime, **extra: object
) -> Interaction:
    return Interaction(
        "visitor", "session", kind, target, target_id, at, f"{at.timestamp()}{kind}", extra or None
    )


def test_original_update_by_hand() -> None:
    # 0.4 decayed two days at 0.95 -> 0.4 * 0.9025 = 0.361, + click 0.3 = 0.661
    assert apply_update(0.4, 0.3, 2.0, 0.95) == pytest.approx(0.661)
    # capped at 1.0
    assert apply_update(0.9, 0.5, 0.0, 0.95) == 1.0
    # no time passed: plain sum
    assert apply_update(0.2, 0.1, 0.0, 0.95) == pytest.approx(0.3)


def test_days_between_never_negative() -> None:
    assert days_between(T0, T0 - timedelta(days=1)) == 0.0
    assert days_between(T0, T0 + timedelta(hours=36)) == pytest.approx(1.5)


@pytest.mark.parametrize("rate", [0.95, 0.5, 1.0])
def test_fold_equals_serial_updates(rate: float) -> None:
    kinds = ["view", "click", "form_submit", "view", "view", "click"]
    times = [T0 + timedelta(hours=7 * i) for i in range(len(kinds))]
    events = [event(k, "procedure", 10, t) for k, t in zip(kinds, times, strict=True)]
    stored = AffinityState(1, 0.25, 0.25, T0 - timedelta(days=3))
    serial_score, serial_raw, last = stored.score, stored.raw, stored.last_updated
    for e in events:
        days = days_between(last, e.timestamp)
        serial_score = apply_update(serial_score, WEIGHTS[e.interaction_type], days, rate)
        serial_raw = serial_raw * rate**days + WEIGHTS[e.interaction_type]
        last = e.timestamp
    [delta] = fold(events, CATALOG, WEIGHTS, rate)
    result = delta.apply(stored, rate)
    assert result.score == pytest.approx(serial_score)
    assert result.raw == pytest.approx(serial_raw)
    assert result.last_updated == times[-1]


def test_fold_order_of_updates_matters_only_through_time() -> None:
    # Same events given out of order compose in time order.
    events = [
        event(k, "procedure", 10, T0 + timedelta(days=i))
        for i, k in enumerate(["view", "form_submit", "click"])
    ]
    shuffled = [events[2], events[0], events[1]]
    for perm in itertools.permutations(shuffled):
        [delta] = fold(perm, CATALOG, WEIGHTS, 0.9)
        assert delta.apply(None, 0.9).score == pytest.approx(
            apply_update(apply_update(0.1, 0.5, 1, 0.9), 0.3, 1, 0.9)
        )


def test_cap_inside_a_batch_is_the_original_one() -> None:
    # Five form submissions at once: 0.5, 1.0 (capped), 1.0, ... then a decay of 10 days.
    events = [event("form_submit", "procedure", 10, T0) for _ in range(5)]
    events.append(event("view", "procedure", 10, T0 + timedelta(days=10)))
    [delta] = fold(events, CATALOG, WEIGHTS, 0.95)
    assert delta.apply(None, 0.95).score == pytest.approx(1.0 * 0.95**10 + 0.1)
    # raw keeps counting past the cap, which is what ranking uses
    assert delta.apply(None, 0.95).raw == pytest.approx(2.5 * 0.95**10 + 0.1)


def test_doctor_and_package_move_their_procedures_categories() -> None:
    deltas = fold(
        [event("click", "doctor", 20, T0), event("view", "package", 30, T0)], CATALOG, WEIGHTS, 0.95
    )
    moved = {(d.category_id, round(d.add, 6)) for d in deltas}
    # doctor -> Botox (1) and Laser (2); package -> Laser (2) and Rhinoplasty (3)
    assert moved == {(1, 0.3), (2, 0.4), (3, 0.1)}


def test_search_moves_matched_categories_and_unknown_targets_nothing() -> None:
    search = event("search", "category", None, T0, categories=[2, 99])
    assert categories_moved(search, CATALOG) == (2,)
    assert fold([event("view", "procedure", 999, T0)], CATALOG, WEIGHTS, 0.95) == []
    assert fold([event("view", "page", None, T0)], CATALOG, WEIGHTS, 0.95) == []


def test_zero_weight_moves_nothing() -> None:
    assert fold([event("view", "procedure", 10, T0)], CATALOG, {"view": 0.0}, 0.95) == []


def test_smooth_preserves_order_where_the_cap_ties() -> None:
    heavy, heavier = 3.0, 5.0
    assert min(1.0, heavy) == min(1.0, heavier)
    assert 0.0 < smooth(heavy) < smooth(heavier) < 1.0
    assert smooth(0.0) == 0.0


def test_raw_at_decays_to_now() -> None:
    state = AffinityState(1, 0.5, 2.0, T0)
    assert state.raw_at(T0 + timedelta(days=2), 0.5) == pytest.approx(0.5)
