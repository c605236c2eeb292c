"""The effectiveness report: personalized against holdout, with honest statistics.

Pure: the storage layer hands in per-session and per-visitor counts; this module
assigns variants, compares them and renders the result.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from penchant.engine.experiments import (
    Comparison,
    Estimate,
    Variant,
    assign_variant,
    compare_means,
    compare_proportions,
)
from penchant.engine.ranking import CONTENT_TYPES

__all__ = [
    "Report",
    "SessionCounts",
    "build_report",
    "clicked_lists",
    "funnel_paths",
    "render_report",
]

_K = TypeVar("_K", bound=Hashable)

# The values each metric can take: rates lie in [0, 1], counts are never negative.
_RANGES: dict[str, tuple[float, float]] = {
    "recommendation_ctr": (0.0, 1.0),
    "conversion_rate": (0.0, 1.0),
    "interactions_per_session": (0.0, math.inf),
}


def clicked_lists(
    pairs: Iterable[tuple[_K, Mapping[str, Collection[int]], str, int, Hashable, float]],
) -> set[tuple[_K, str]]:
    """The recommendation lists that got a click, as ``(page view, content type)``.

    Each pair is one page view that showed lists (its key and ``{content type: ids
    shown}``) and one click of the same visitor within the attribution window: its
    ``(target type, target id)``, a key of the click, and the seconds from the page
    view to the click (below 0 when the click was stamped first, by another
    worker's clock). The server decides, from what it showed: what a client says
    about its click is never asked. A click is credited to one list only, on the
    last page view before it that showed its target (else the nearest after it),
    and a list counts once however many of its items are clicked, so
    click-through is a share of lists, at most 1.
    """
    best: dict[Hashable, tuple[tuple[bool, float], _K, str]] = {}
    for page_view, lists, target_type, target_id, click, later in pairs:
        rank = (later < 0, abs(later))  # the closest page view before the click first
        for content_type, ids in lists.items():
            if CONTENT_TYPES.get(content_type) == target_type and target_id in ids:
                held = best.get(click)
                if held is None or rank < held[0]:
                    best[click] = (rank, page_view, content_type)
    return {(page_view, content_type) for _, page_view, content_type in best.values()}


@dataclass(frozen=True, slots=True)
class SessionCounts:
    """One session's activity, as counted by the storage layer.

    ``rec_clicks``: lists shown in the session that got a click (:func:`clicked_lists`);
    ``exposures``: lists shown in the session.
    """

    user_id: str
    session_id: str
    interactions: int
    form_submits: int
    rec_clicks: int
    exposures: int


@dataclass(frozen=True, slots=True)
class Report:
    days: int
    holdout: float
    visitors: dict[str, int]
    comparisons: list[Comparison]
    funnels: list[tuple[tuple[str, ...], int]] = field(default_factory=list)

    @property
    def enough_data(self) -> bool:
        return all(c.enough_data for c in self.comparisons)

    def as_dict(self) -> dict[str, object]:
        def est(e: Estimate) -> dict[str, float | int]:
            return {"value": e.value, "low": e.low, "high": e.high, "n": e.n}

        return {
            "days": self.days,
            "holdout": self.holdout,
            "visitors": self.visitors,
            "enough_data": self.enough_data,
            "metrics": {
                c.metric: {
                    "personalized": est(c.personalized),
                    "holdout": est(c.holdout),
                    "uplift": c.uplift,
                    "uplift_low": c.uplift_low,
                    "uplift_high": c.uplift_high,
                    "p_value": c.p_value,
                    "enough_data": c.enough_data,
                    "note": c.note,
                }
                for c in self.comparisons
            },
            "funnels": [{"path": list(path), "sessions": n} for path, n in self.funnels],
        }


def build_report(
    sessions: Iterable[SessionCounts],
    *,
    key: str,
    holdout: float,
    days: int,
    minimum: int = 100,
    funnels: Sequence[tuple[tuple[str, ...], int]] = (),
) -> Report:
    """Compare the variants on click-through, conversion and interactions per session.

    A visitor's variant is recomputed from the experiment key, as it was assigned.
    """
    variant_of: dict[str, Variant] = {}
    exposures: Counter[str] = Counter()
    rec_clicks: Counter[str] = Counter()
    converted: dict[str, set[str]] = {"personalized": set(), "holdout": set()}
    visitors: dict[str, set[str]] = {"personalized": set(), "holdout": set()}
    per_session: dict[str, list[float]] = {"personalized": [], "holdout": []}
    for s in sessions:
        variant = variant_of.get(s.user_id)
        if variant is None:
            variant = variant_of[s.user_id] = assign_variant(s.user_id, key=key, holdout=holdout)
        visitors[variant].add(s.user_id)
        exposures[variant] += s.exposures
        rec_clicks[variant] += s.rec_clicks
        if s.form_submits:
            converted[variant].add(s.user_id)
        per_session[variant].append(float(s.interactions))
    p, h = "personalized", "holdout"
    comparisons = [
        compare_proportions(
            "recommendation_ctr",
            min(rec_clicks[p], exposures[p]),
            exposures[p],
            min(rec_clicks[h], exposures[h]),
            exposures[h],
            minimum=minimum,
        ),
        compare_proportions(
            "conversion_rate",
            len(converted[p]),
            len(visitors[p]),
            len(converted[h]),
            len(visitors[h]),
            minimum=minimum,
        ),
        compare_means("interactions_per_session", per_session[p], per_session[h], minimum=minimum),
    ]
    comparisons = [_within(c, *_RANGES[c.metric]) for c in comparisons]
    return Report(
        days,
        holdout,
        {p: len(visitors[p]), h: len(visitors[h])},
        comparisons,
        list(funnels),
    )


def _within(comparison: Comparison, low: float, high: float) -> Comparison:
    """The comparison with each variant's interval cut to the values the metric can take.

    A normal interval of a skewed count can reach below 0 (4.50 [-0.40, 9.40]);
    only the shown interval is cut: the p-value and the uplift keep the spread.
    """

    def cut(e: Estimate) -> Estimate:
        return replace(e, low=max(e.low, low), high=min(e.high, high))

    return replace(
        comparison, personalized=cut(comparison.personalized), holdout=cut(comparison.holdout)
    )


def funnel_paths(
    sessions: Iterable[Sequence[str]], *, top: int = 10, max_steps: int = 6
) -> list[tuple[tuple[str, ...], int]]:
    """The most common paths from the landing step to the first ``form_submit``.

    Each session is its steps in time order (e.g. ``"view:category"``); repeats in
    a row collapse, long paths keep their start and end.
    """
    counts: Counter[tuple[str, ...]] = Counter()
    for steps in sessions:
        path: list[str] = []
        for step in steps:
            if not path or path[-1] != step:
                path.append(step)
            if step.startswith("form_submit"):
                break
        else:
            continue  # no form submission in this session
        if len(path) > max_steps:
            path = [*path[: max_steps - 2], "…", path[-1]]
        counts[tuple(path)] += 1
    return counts.most_common(top)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f}%"


def render_report(report: Report) -> str:
    """The report as a plain-text table."""
    lines = [
        f"penchant report: last {report.days} days, holdout {report.holdout:.0%}",
        f"visitors: personalized {report.visitors['personalized']}, "
        f"holdout {report.visitors['holdout']}",
        "",
    ]
    if not report.enough_data:
        lines.append("not enough visitors yet: read these figures as anecdotes, not results.")
        lines.append("")
    header = f"{'metric':<26}{'personalized':>24}{'holdout':>24}{'uplift (95% CI)':>30}{'p':>9}"
    lines += [header, "-" * len(header)]
    for c in report.comparisons:
        rate = c.metric != "interactions_per_session"

        def fmt(e: Estimate, rate: bool = rate) -> str:
            if rate:
                return f"{e.value:.2%} [{e.low:.2%}, {e.high:.2%}]"
            return f"{e.value:.2f} [{e.low:.2f}, {e.high:.2f}]"

        uplift = (
            f"{_pct(c.uplift)} [{_pct(c.uplift_low)}, {_pct(c.uplift_high)}]"
            if c.uplift is not None
            else "-"
        )
        p_value = "-" if c.p_value is None else f"{c.p_value:.3f}"
        lines.append(
            f"{c.metric:<26}{fmt(c.personalized):>24}{fmt(c.holdout):>24}{uplift:>30}{p_value:>9}"
        )
        if c.note:
            lines.append(f"  {c.note}")
    if report.funnels:
        lines += ["", "most common paths to a form submission:"]
        for path, n in report.funnels:
            lines.append(f"  {n:>6}  {' > '.join(path)}")
    return "\n".join(lines)
