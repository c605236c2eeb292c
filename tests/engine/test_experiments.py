from __future__ import annotations

import pytest

from penchant.engine.experiments import assign_variant


def test_assignment_is_stable_and_uniform() -> None:
    ids = [f"{i:032x}" for i in range(100_000)]
    first = [assign_variant(u, key="exp", holdout=0.1) for u in ids]
    assert first == [assign_variant(u, key="exp", holdout=0.1) for u in ids]
    share = first.count("holdout") / len(ids)
    assert share == pytest.approx(0.1, abs=0.01)


def test_changing_the_key_reshuffles() -> None:
    ids = [f"{i:032x}" for i in range(10_000)]
    a = [assign_variant(u, key="one", holdout=0.5) for u in ids]
    b = [assign_variant(u, key="two", holdout=0.5) for u in ids]
    same = sum(x == y for x, y in zip(a, b, strict=True)) / len(ids)
    assert 0.45 < same < 0.55


def test_zero_holdout_disables() -> None:
    assert {assign_variant(f"{i}", key="k", holdout=0.0) for i in range(1000)} == {"personalized"}


# ---------------------------------------------------------------- statistics
from penchant.engine.experiments import (  # noqa: E402
    compare_means,
    compare_proportions,
    mean_estimate,
    proportion,
    relative_uplift,
    two_proportion_p_value,
)


def test_two_proportion_p_value_by_hand() -> None:
    # 120/1000 vs 90/1000: pooled p = 0.105, se = sqrt(0.105*0.895*0.002) = 0.013709,
    # z = 0.03 / 0.013709 = 2.1884, two-sided p = 0.02864
    assert two_proportion_p_value(120, 1000, 90, 1000) == pytest.approx(0.02864, abs=5e-5)
    assert two_proportion_p_value(0, 0, 1, 10) is None
    assert two_proportion_p_value(0, 10, 0, 10) is None


def test_intervals_match_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    ci = stats.binomtest(37, 250).proportion_ci(confidence_level=0.95, method="wilson")
    est = proportion(37, 250)
    assert est.value == pytest.approx(37 / 250)
    assert (est.low, est.high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    # the p-value equals the normal tail scipy computes for the same z
    p1, p2, pooled = 120 / 1000, 90 / 1000, 210 / 2000
    z = (p1 - p2) / (pooled * (1 - pooled) * (2 / 1000)) ** 0.5
    assert two_proportion_p_value(120, 1000, 90, 1000) == pytest.approx(2 * stats.norm.sf(z))
    values = [1.0, 2.0, 4.0, 3.0, 5.0, 2.0]
    mean = mean_estimate(values)
    low, high = stats.norm.interval(0.95, loc=sum(values) / len(values), scale=stats.sem(values))
    assert (mean.low, mean.high) == (pytest.approx(low), pytest.approx(high))


def test_relative_uplift_interval_contains_the_estimate() -> None:
    uplift = relative_uplift(120, 1000, 90, 1000)
    assert uplift is not None
    value, low, high = uplift
    assert value == pytest.approx(120 / 90 - 1)
    assert low < value < high
    assert relative_uplift(0, 1000, 90, 1000) is None


def test_too_little_data_is_said_plainly() -> None:
    small = compare_proportions("ctr", 3, 20, 1, 15)
    assert not small.enough_data and "not enough" in small.note
    big = compare_proportions("ctr", 120, 1000, 90, 1000)
    assert big.enough_data and big.note == ""
    assert big.p_value is not None and big.p_value < 0.05


def test_compare_means() -> None:
    a = [3.0, 4.0, 5.0] * 50
    b = [2.0, 3.0, 4.0] * 50
    result = compare_means("interactions_per_session", a, b)
    assert result.enough_data
    assert result.uplift == pytest.approx(4 / 3 - 1)
    assert result.p_value is not None and result.p_value < 1e-6
    assert compare_means("x", [], []).p_value is None
