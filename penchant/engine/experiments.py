"""Holdout assignment: which visitors see personalized content."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Comparison",
    "Estimate",
    "Variant",
    "assign_variant",
    "compare_means",
    "compare_proportions",
    "mean_estimate",
    "proportion",
    "relative_uplift",
    "two_proportion_p_value",
]

Variant = Literal["personalized", "holdout"]


def assign_variant(user_id: str, *, key: str, holdout: float) -> Variant:
    """Deterministic and uniform: the same visitor and key always give the same variant.

    Changing ``key`` reshuffles every visitor.
    """
    if holdout <= 0.0:
        return "personalized"
    digest = hashlib.sha256(f"{key}|{user_id}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") / 2**64
    return "holdout" if bucket < holdout else "personalized"


# ---------------------------------------------------------------- statistics
_Z95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class Estimate:
    """A rate or mean with its 95% confidence interval."""

    value: float
    low: float
    high: float
    n: int


@dataclass(frozen=True, slots=True)
class Comparison:
    """Personalized against holdout for one metric."""

    metric: str
    personalized: Estimate
    holdout: Estimate
    uplift: float | None  # relative: personalized / holdout - 1
    uplift_low: float | None
    uplift_high: float | None
    p_value: float | None
    enough_data: bool
    note: str = ""


def _normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def proportion(successes: int, trials: int) -> Estimate:
    """A proportion with its Wilson score interval (sound for small counts and 0 or 1)."""
    if trials <= 0:
        return Estimate(0.0, 0.0, 0.0, 0)
    p = successes / trials
    z2 = _Z95 * _Z95
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = _Z95 * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), trials)


def two_proportion_p_value(s1: int, n1: int, s2: int, n2: int) -> float | None:
    """Two-sided p-value of the pooled two-proportion z-test; None when undefined."""
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (s1 + s2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return None
    z = (s1 / n1 - s2 / n2) / se
    return 2 * _normal_sf(abs(z))


def relative_uplift(s1: int, n1: int, s2: int, n2: int) -> tuple[float, float, float] | None:
    """p1/p2 - 1 with a 95% interval from the log risk ratio (Katz); None if undefined."""
    if min(s1, s2, n1, n2) <= 0:
        return None
    ratio = (s1 / n1) / (s2 / n2)
    se = math.sqrt(1 / s1 - 1 / n1 + 1 / s2 - 1 / n2)
    return (
        ratio - 1,
        ratio * math.exp(-_Z95 * se) - 1,
        ratio * math.exp(_Z95 * se) - 1,
    )


def compare_proportions(
    metric: str, s1: int, n1: int, s2: int, n2: int, *, minimum: int = 100
) -> Comparison:
    """Compare personalized (s1 of n1) with holdout (s2 of n2)."""
    enough = n1 >= minimum and n2 >= minimum
    uplift = relative_uplift(s1, n1, s2, n2)
    return Comparison(
        metric,
        proportion(s1, n1),
        proportion(s2, n2),
        uplift[0] if uplift else None,
        uplift[1] if uplift else None,
        uplift[2] if uplift else None,
        two_proportion_p_value(s1, n1, s2, n2),
        enough,
        "" if enough else f"not enough data yet (at least {minimum} in each variant)",
    )


def mean_estimate(values: Sequence[float]) -> Estimate:
    """A mean with a normal-approximation 95% interval."""
    n = len(values)
    if n == 0:
        return Estimate(0.0, 0.0, 0.0, 0)
    mean = sum(values) / n
    if n == 1:
        return Estimate(mean, mean, mean, 1)
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    half = _Z95 * math.sqrt(var / n)
    return Estimate(mean, mean - half, mean + half, n)


def compare_means(
    metric: str, a: Sequence[float], b: Sequence[float], *, minimum: int = 100
) -> Comparison:
    """Compare two means (Welch's z approximation for large samples)."""
    ea, eb = mean_estimate(a), mean_estimate(b)
    enough = ea.n >= minimum and eb.n >= minimum
    p_value: float | None = None
    uplift: tuple[float, float, float] | None = None
    if ea.n > 1 and eb.n > 1:
        va = ((ea.high - ea.value) / _Z95) ** 2
        vb = ((eb.high - eb.value) / _Z95) ** 2
        se = math.sqrt(va + vb)
        if se > 0:
            p_value = 2 * _normal_sf(abs(ea.value - eb.value) / se)
        if eb.value > 0 and ea.value > 0:
            # delta method on log(mean_a / mean_b)
            se_log = math.sqrt(va / ea.value**2 + vb / eb.value**2)
            ratio = ea.value / eb.value
            uplift = (
                ratio - 1,
                ratio * math.exp(-_Z95 * se_log) - 1,
                ratio * math.exp(_Z95 * se_log) - 1,
            )
    return Comparison(
        metric,
        ea,
        eb,
        uplift[0] if uplift else None,
        uplift[1] if uplift else None,
        uplift[2] if uplift else None,
        p_value,
        enough,
        "" if enough else f"not enough data yet (at least {minimum} in each variant)",
    )
