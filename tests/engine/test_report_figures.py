"""The effectiveness report's figures, text and JSON, checked against values written out
by hand."""

from __future__ import annotations

import hashlib

import pytest

from penchant.engine.experiments import Comparison, Estimate
from penchant.engine.report import (
    Report,
    SessionCounts,
    build_report,
    clicked_lists,
    funnel_paths,
    render_report,
)

# Under key "k" with a holdout of 0.5 (sha256 buckets in the comments):
PERSONALIZED = ["bob", "eve", "fay", "gus"]  # 0.589, 0.755, 0.814, 0.913
HELD_OUT = ["ada", "cy", "dee", "hal"]  # 0.342, 0.164, 0.183, 0.155

NOT_ENOUGH = "not enough data yet (at least 100 in each variant)"
HEADER = (
    "metric                    "
    "            personalized"
    "                 holdout"
    "               uplift (95% CI)"
    "        p"
)


def _session(
    user: str, interactions: int = 1, *, clicks: int = 0, submits: int = 0
) -> SessionCounts:
    return SessionCounts(user, "s-" + user, interactions, submits, clicks, 1)


# ---------------------------------------------------------------- build_report
def test_the_report_keeps_its_period_share_and_paths() -> None:
    funnels = [(("view:page", "form_submit:procedure"), 3)]
    sessions = [_session("bob"), _session("ada")]
    report = build_report(sessions, key="k", holdout=0.5, days=30, funnels=funnels)
    assert (report.days, report.holdout) == (30, 0.5)
    assert report.visitors == {"personalized": 1, "holdout": 1}
    assert report.funnels == [(("view:page", "form_submit:procedure"), 3)]
    assert render_report(report).startswith("penchant report: last 30 days, holdout 50%\n")


@pytest.mark.parametrize(("per_variant", "enough"), [(2, True), (1, False)])
def test_the_minimum_applies_to_every_metric(per_variant: int, enough: bool) -> None:
    users = PERSONALIZED[:per_variant] + HELD_OUT[:per_variant]
    sessions = [_session(u, 3, clicks=1, submits=1) for u in users]
    report = build_report(sessions, key="k", holdout=0.5, days=7, minimum=2)
    note = "" if enough else "not enough data yet (at least 2 in each variant)"
    assert [(c.metric, c.enough_data, c.note) for c in report.comparisons] == [
        ("recommendation_ctr", enough, note),
        ("conversion_rate", enough, note),
        ("interactions_per_session", enough, note),
    ]
    assert report.enough_data is enough


def _pool(n: int) -> tuple[list[str], list[str]]:
    """``n`` personalized and ``n`` held-out visitors under key "k" and a holdout of 0.5."""
    personalized: list[str] = []
    held: list[str] = []
    i = 0
    while len(personalized) < n or len(held) < n:
        user = f"visitor-{i}"
        i += 1
        digest = hashlib.sha256(f"k|{user}".encode()).digest()
        side = held if int.from_bytes(digest[:8], "big") < 2**63 else personalized
        if len(side) < n:
            side.append(user)
    return personalized, held


@pytest.mark.parametrize(("per_variant", "enough"), [(100, True), (99, False)])
def test_a_hundred_visitors_in_each_variant_are_enough_by_default(
    per_variant: int, enough: bool
) -> None:
    personalized, held = _pool(per_variant)
    sessions = [_session(u, 2, clicks=1) for u in personalized + held]
    report = build_report(sessions, key="k", holdout=0.5, days=30)
    assert report.visitors == {"personalized": per_variant, "holdout": per_variant}
    assert [c.enough_data for c in report.comparisons] == [enough, enough, enough]
    assert [c.note for c in report.comparisons] == ([""] * 3 if enough else [NOT_ENOUGH] * 3)


def test_both_variants_count_intervals_stop_at_zero() -> None:
    # Interactions per session 1 and 8 on each side: mean 4.5, standard error 3.5,
    # 4.5 - 1.96 * 3.5 = -2.36, below what a count can be.
    sessions = [
        _session("bob", 1),
        _session("eve", 8),
        _session("ada", 1),
        _session("cy", 8),
    ]
    per_session = build_report(sessions, key="k", holdout=0.5, days=30).comparisons[2]
    assert per_session.personalized.low == 0.0
    assert per_session.holdout.low == 0.0
    assert per_session.personalized.high == pytest.approx(11.359874, abs=1e-6)
    assert per_session.holdout.high == pytest.approx(11.359874, abs=1e-6)


# ---------------------------------------------------------------- clicked_lists
SHOWN = {"procedures": (1, 2)}


@pytest.mark.parametrize("later", [0.0, 0.5])
def test_a_page_view_at_or_just_before_the_click_is_before_it(later: float) -> None:
    pairs = [
        ("earlier", SHOWN, "procedure", 2, "click", 5.0),
        ("closest", SHOWN, "procedure", 2, "click", later),
    ]
    assert clicked_lists(pairs) == {("closest", "procedures")}


@pytest.mark.parametrize("later", [20.0, -20.0])
def test_of_two_page_views_as_close_the_first_keeps_the_click(later: float) -> None:
    pairs = [
        ("first", SHOWN, "procedure", 2, "click", later),
        ("second", SHOWN, "procedure", 2, "click", later),
    ]
    assert clicked_lists(pairs) == {("first", "procedures")}


# ---------------------------------------------------------------- funnel_paths
def test_ten_paths_by_default() -> None:
    sessions = [
        ["view:page", f"view:p{i}", "form_submit:page"] for i in range(11) for _ in range(20 - i)
    ]
    paths = funnel_paths(sessions)
    assert len(paths) == 10
    assert paths[0] == (("view:page", "view:p0", "form_submit:page"), 20)
    assert paths[-1] == (("view:page", "view:p9", "form_submit:page"), 11)


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        (
            ["a", "b", "c", "d", "e", "form_submit:page"],
            ("a", "b", "c", "d", "e", "form_submit:page"),
        ),
        (
            ["a", "b", "c", "d", "e", "f", "form_submit:page"],
            ("a", "b", "c", "d", "…", "form_submit:page"),
        ),
    ],
)
def test_paths_longer_than_six_steps_keep_start_and_end(
    steps: list[str], expected: tuple[str, ...]
) -> None:
    assert funnel_paths([steps]) == [(expected, 1)]


def test_a_session_without_submission_does_not_stop_the_count() -> None:
    sessions = [["view:a", "view:b"], ["view:a", "form_submit:page"], ["form_submit:page"]]
    assert funnel_paths(sessions) == [
        (("view:a", "form_submit:page"), 1),
        (("form_submit:page",), 1),
    ]


# ---------------------------------------------------------------- render_report and as_dict
CTR = Comparison(
    "recommendation_ctr",
    Estimate(0.125, 0.1, 0.15, 800),
    Estimate(0.1, 0.05, 0.18, 90),
    0.25,
    -0.125,
    1.5,
    0.0423,
    False,
    NOT_ENOUGH,
)
PER_SESSION = Comparison(
    "interactions_per_session",
    Estimate(4.5, 0.0, 11.36, 200),
    Estimate(2.5, 1.52, 3.48, 150),
    None,
    None,
    None,
    None,
    True,
)
CONVERSION = Comparison(
    "conversion_rate",
    Estimate(0.05, 0.04, 0.06, 1000),
    Estimate(0.04, 0.03, 0.05, 1000),
    0.25,
    0.1,
    0.4,
    0.5,
    True,
)
LITTLE = Report(
    30,
    0.1,
    {"personalized": 1200, "holdout": 130},
    [CTR, PER_SESSION],
    [(("view:page", "form_submit:procedure"), 12), (("form_submit:page",), 3)],
)
PLENTY = Report(7, 0.25, {"personalized": 1000, "holdout": 1000}, [CONVERSION])


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        (
            LITTLE,
            [
                "penchant report: last 30 days, holdout 10%",
                "visitors: personalized 1200, holdout 130",
                "",
                "not enough visitors yet: read these figures as anecdotes, not results.",
                "",
                HEADER,
                "-" * 113,
                "recommendation_ctr        "
                " 12.50% [10.00%, 15.00%]"
                "  10.00% [5.00%, 18.00%]"
                "      +25.0% [-12.5%, +150.0%]"
                "    0.042",
                "  not enough data yet (at least 100 in each variant)",
                "interactions_per_session  "
                "      4.50 [0.00, 11.36]"
                "       2.50 [1.52, 3.48]"
                "                             -"
                "        -",
                "",
                "most common paths to a form submission:",
                "      12  view:page > form_submit:procedure",
                "       3  form_submit:page",
            ],
        ),
        (
            PLENTY,
            [
                "penchant report: last 7 days, holdout 25%",
                "visitors: personalized 1000, holdout 1000",
                "",
                HEADER,
                "-" * 113,
                "conversion_rate           "
                "    5.00% [4.00%, 6.00%]"
                "    4.00% [3.00%, 5.00%]"
                "       +25.0% [+10.0%, +40.0%]"
                "    0.500",
            ],
        ),
    ],
)
def test_render_report_text(report: Report, expected: list[str]) -> None:
    assert render_report(report).split("\n") == expected


def test_report_as_dict() -> None:
    assert LITTLE.as_dict() == {
        "days": 30,
        "holdout": 0.1,
        "visitors": {"personalized": 1200, "holdout": 130},
        "enough_data": False,
        "metrics": {
            "recommendation_ctr": {
                "personalized": {"value": 0.125, "low": 0.1, "high": 0.15, "n": 800},
                "holdout": {"value": 0.1, "low": 0.05, "high": 0.18, "n": 90},
                "uplift": 0.25,
                "uplift_low": -0.125,
                "uplift_high": 1.5,
                "p_value": 0.0423,
                "enough_data": False,
                "note": NOT_ENOUGH,
            },
            "interactions_per_session": {
                "personalized": {"value": 4.5, "low": 0.0, "high": 11.36, "n": 200},
                "holdout": {"value": 2.5, "low": 1.52, "high": 3.48, "n": 150},
                "uplift": None,
                "uplift_low": None,
                "uplift_high": None,
                "p_value": None,
                "enough_data": True,
                "note": "",
            },
        },
        "funnels": [
            {"path": ["view:page", "form_submit:procedure"], "sessions": 12},
            {"path": ["form_submit:page"], "sessions": 3},
        ],
    }
