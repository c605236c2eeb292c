"""Holdout assignment and the statistics of the report, checked against figures worked out
by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import pytest

from penchant.engine.experiments import (
    Estimate,
    assign_variant,
    compare_means,
    compare_proportions,
    mean_estimate,
    proportion,
    relative_uplift,
    two_proportion_p_value,
)

# sha256("k|ada")[:8] read big-endian, over 2**64: visitor "ada"'s bucket under key "k".
ADA_BUCKET = 0.34160839910652446


@pytest.mark.parametrize(
    ("holdout", "expected"),
    [
        (ADA_BUCKET, "personalized"),  # the holdout is [0, share): its bound is outside
        (0.3416083991065245, "holdout"),  # the next float above the bucket
        (0.34, "personalized"),
        (0.35, "holdout"),
        (0.0, "personalized"),
        (1.0, "holdout"),
    ],
)
def test_a_visitor_is_held_out_when_its_bucket_is_below_the_share(
    holdout: float, expected: str
) -> None:
    assert assign_variant("ada", key="k", holdout=holdout) == expected


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("ada", "holdout"),  # bucket 0.3416
        ("cy", "holdout"),  # bucket 0.1642
        ("bob", "personalized"),  # bucket 0.5889
        ("gus", "personalized"),  # bucket 0.9126
    ],
)
def test_assignment_reads_the_digest_big_endian(user: str, expected: str) -> None:
    assert assign_variant(user, key="k", holdout=0.5) == expected


# ---------------------------------------------------------------- estimates
@pytest.mark.parametrize("trials", [0, -3])
def test_a_proportion_of_no_trials_is_all_zero(trials: int) -> None:
    assert proportion(0, trials) == Estimate(0.0, 0.0, 0.0, 0)


@pytest.mark.parametrize("trials", [16, 17, 100])
def test_an_all_success_interval_stops_at_one(trials: int) -> None:
    # Wilson's upper bound for 16 of 16 rounds to 1.0000000000000002 before the cut.
    assert proportion(trials, trials).high == 1.0
    assert proportion(trials, trials).value == 1.0


def test_the_mean_of_nothing_is_all_zero() -> None:
    assert mean_estimate([]) == Estimate(0.0, 0.0, 0.0, 0)


@pytest.mark.parametrize("value", [7.5, 0.0, 3.0])
def test_one_value_is_its_own_interval(value: float) -> None:
    assert mean_estimate([value]) == Estimate(value, value, value, 1)


# ---------------------------------------------------------------- p-values and uplift
@pytest.mark.parametrize(
    ("s1", "n1", "s2", "n2", "expected"),
    [
        # pooled 0.5, se = sqrt(0.25 * 2) = 0.70711, z = 1.41421, p = erfc(1)
        (1, 1, 0, 1, 0.157299),
        (0, 1, 1, 1, 0.157299),
        # pooled 1/3, se = sqrt(2/9 * 1.5) = 0.57735, z = 1.73205, p = erfc(1.22474)
        (1, 1, 0, 2, 0.083265),
        (0, 2, 1, 1, 0.083265),
        # 30/200 against 12/150: pooled 0.12, se = 0.035100, z = 1.99431
        (30, 200, 12, 150, 0.046118),
    ],
)
def test_two_proportion_p_value_down_to_one_trial(
    s1: int, n1: int, s2: int, n2: int, expected: float
) -> None:
    assert two_proportion_p_value(s1, n1, s2, n2) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("s1", "n1", "s2", "n2", "expected"),
    [
        # ratio 0.15 / 0.08 = 1.875; se = sqrt(1/30 - 1/200 + 1/12 - 1/150) = sqrt(0.105)
        (30, 200, 12, 150, (0.875, -0.006471, 2.538524)),
        # ratio 0.1 / 0.2 = 0.5; se = sqrt(1 - 1/10 + 1/2 - 1/10) = sqrt(1.3)
        (1, 10, 2, 10, (-0.5, -0.946488, 3.671852)),
    ],
)
def test_relative_uplift_with_its_katz_interval(
    s1: int, n1: int, s2: int, n2: int, expected: tuple[float, float, float]
) -> None:
    assert relative_uplift(s1, n1, s2, n2) == pytest.approx(expected, abs=1e-6)
    comparison = compare_proportions("ctr", s1, n1, s2, n2)
    assert (comparison.uplift, comparison.uplift_low, comparison.uplift_high) == pytest.approx(
        expected, abs=1e-6
    )


@pytest.mark.parametrize(
    ("s1", "n1", "s2", "n2"),
    [(5, 100, 0, 100), (0, 100, 5, 100), (0, 0, 5, 100), (5, 100, 0, 0)],
)
def test_no_uplift_without_successes_on_both_sides(s1: int, n1: int, s2: int, n2: int) -> None:
    assert relative_uplift(s1, n1, s2, n2) is None
    comparison = compare_proportions("ctr", s1, n1, s2, n2)
    assert (comparison.uplift, comparison.uplift_low, comparison.uplift_high) == (None, None, None)


# ---------------------------------------------------------------- enough data
NOT_ENOUGH = "not enough data yet (at least 100 in each variant)"


@pytest.mark.parametrize(
    ("n1", "n2", "enough"),
    [(100, 100, True), (99, 100, False), (100, 99, False), (99, 99, False), (101, 250, True)],
)
def test_proportions_need_a_hundred_in_each_variant_by_default(
    n1: int, n2: int, enough: bool
) -> None:
    comparison = compare_proportions("ctr", 10, n1, 10, n2)
    assert comparison.enough_data is enough
    assert comparison.note == ("" if enough else NOT_ENOUGH)


@pytest.mark.parametrize(
    ("n1", "n2", "enough"),
    [(100, 100, True), (99, 100, False), (100, 99, False), (99, 99, False), (101, 250, True)],
)
def test_means_need_a_hundred_in_each_variant_by_default(n1: int, n2: int, enough: bool) -> None:
    comparison = compare_means("per_session", [2.0] * n1, [3.0] * n2)
    assert comparison.enough_data is enough
    assert comparison.note == ("" if enough else NOT_ENOUGH)


@pytest.mark.parametrize(("n", "enough"), [(5, True), (4, False)])
def test_a_lower_minimum_is_said_in_the_note(n: int, enough: bool) -> None:
    note = "" if enough else "not enough data yet (at least 5 in each variant)"
    by_rate = compare_proportions("ctr", 1, n, 2, n, minimum=5)
    by_mean = compare_means("per_session", [1.0] * n, [2.0] * n, minimum=5)
    assert (by_rate.enough_data, by_rate.note) == (enough, note)
    assert (by_mean.enough_data, by_mean.note) == (enough, note)


# ---------------------------------------------------------------- means
@pytest.mark.parametrize(
    ("a", "b", "uplift", "p_value"),
    [
        # means 2 and 4, each with variance of the mean 1: ratio 0.5,
        # se(log ratio) = sqrt(1/2² + 1/4²) = 0.55902; p = erfc(2 / 2) = 0.157299
        ([1.0, 3.0], [3.0, 5.0], (-0.5, -0.832839, 0.495568), 0.157299),
        # means 2 and 1 (variances of the mean 1 and 0.25): ratio 2
        ([1.0, 3.0], [0.5, 1.5], (1.0, -0.499805, 6.996876), 0.371093),
        # means 1 and 2: ratio 0.5
        ([0.5, 1.5], [1.0, 3.0], (-0.5, -0.874951, 0.999219), 0.371093),
    ],
)
def test_compare_means_by_hand(
    a: list[float], b: list[float], uplift: tuple[float, float, float], p_value: float
) -> None:
    comparison = compare_means("per_session", a, b)
    assert (comparison.uplift, comparison.uplift_low, comparison.uplift_high) == pytest.approx(
        uplift, abs=1e-6
    )
    assert comparison.p_value == pytest.approx(p_value, abs=1e-6)


@pytest.mark.parametrize(
    ("a", "b"),
    [([1.0, 3.0], [0.0, 0.0]), ([0.0, 0.0], [1.0, 3.0])],
)
def test_no_uplift_of_means_when_a_mean_is_zero(a: list[float], b: list[float]) -> None:
    comparison = compare_means("per_session", a, b)
    assert (comparison.uplift, comparison.uplift_low, comparison.uplift_high) == (None, None, None)
    # se = sqrt(1 + 0) = 1, z = 2: p = erfc(2 / sqrt 2)
    assert comparison.p_value == pytest.approx(0.045500, abs=1e-6)


@pytest.mark.parametrize(
    ("a", "b"),
    [([3.0], [1.0, 2.0, 3.0]), ([1.0, 2.0, 3.0], [3.0]), ([3.0], [1.0])],
)
def test_one_session_on_a_side_gives_no_test(a: list[float], b: list[float]) -> None:
    comparison = compare_means("per_session", a, b)
    assert comparison.p_value is None
    assert (comparison.uplift, comparison.uplift_low, comparison.uplift_high) == (None, None, None)
