from __future__ import annotations

import json

import pytest

from penchant.engine.experiments import assign_variant
from penchant.engine.report import SessionCounts, build_report, funnel_paths, render_report


def _visitors(n: int) -> list[str]:
    return [f"{i:032x}" for i in range(n)]


def test_report_compares_variants_as_assigned() -> None:
    sessions = []
    for user in _visitors(4000):
        variant = assign_variant(user, key="k", holdout=0.5)
        better = variant == "personalized"
        # personalized visitors click a recommendation on every 4th exposure, holdout every 8th
        clicks = 1 if int(user, 16) % (4 if better else 8) == 0 else 0
        converts = 1 if int(user, 16) % (10 if better else 20) == 0 else 0
        sessions.append(SessionCounts(user, "s" + user, 3 + clicks, converts, clicks, 1))
    report = build_report(sessions, key="k", holdout=0.5, days=30)
    ctr, conversion, per_session = report.comparisons
    assert report.visitors["personalized"] + report.visitors["holdout"] == 4000
    assert ctr.personalized.value == pytest.approx(0.25, abs=0.03)
    assert ctr.holdout.value == pytest.approx(0.125, abs=0.03)
    assert ctr.uplift is not None and ctr.uplift_low is not None and ctr.uplift_low > 0
    assert ctr.p_value is not None and ctr.p_value < 0.001
    assert conversion.uplift is not None and conversion.uplift > 0
    assert per_session.personalized.value > per_session.holdout.value
    assert report.enough_data
    text = render_report(report)
    assert "recommendation_ctr" in text and "not enough" not in text
    json.dumps(report.as_dict())


def test_little_data_is_said_plainly() -> None:
    sessions = [SessionCounts(u, "s", 1, 0, 0, 1) for u in _visitors(30)]
    report = build_report(sessions, key="k", holdout=0.5, days=7)
    assert not report.enough_data
    assert "not enough visitors yet" in render_report(report)
    assert report.as_dict()["enough_data"] is False


def test_funnel_paths() -> None:
    sessions = [
        ["view:page", "view:category", "view:category", "view:procedure", "form_submit:procedure"],
        ["view:page", "view:category", "view:procedure", "form_submit:procedure", "view:page"],
        ["view:procedure", "form_submit:procedure"],
        ["view:page", "view:category"],  # never converted
    ]
    paths = funnel_paths(sessions)
    assert paths[0] == (
        ("view:page", "view:category", "view:procedure", "form_submit:procedure"),
        2,
    )
    assert (("view:procedure", "form_submit:procedure"), 1) in paths
    assert len(paths) == 2
    long = [[f"view:{i}" for i in range(10)] + ["form_submit:page"]]
    [(path, _)] = funnel_paths(long, max_steps=5)
    assert path == ("view:0", "view:1", "view:2", "…", "form_submit:page")


def test_a_count_interval_stops_at_zero() -> None:
    personalized: list[str] = []
    holdout: list[str] = []
    for user in _visitors(100):
        variant = assign_variant(user, key="k", holdout=0.5)
        (personalized if variant == "personalized" else holdout).append(user)
    # Interactions per session: personalized 1 and 8 (mean 4.5, standard error 3.5),
    # holdout 2 and 3 (mean 2.5, standard error 0.5).
    sessions = [
        SessionCounts(personalized[0], "a", 1, 0, 0, 1),
        SessionCounts(personalized[1], "b", 8, 0, 0, 1),
        SessionCounts(holdout[0], "c", 2, 0, 0, 1),
        SessionCounts(holdout[1], "d", 3, 0, 0, 1),
    ]
    report = build_report(sessions, key="k", holdout=0.5, days=30)
    per_session = report.comparisons[2]
    assert per_session.metric == "interactions_per_session"
    # 4.5 +- 1.96 * 3.5 = [-2.36, 11.36]: no session has fewer than 0 interactions.
    assert per_session.personalized.value == 4.5
    assert per_session.personalized.low == 0.0
    assert per_session.personalized.high == pytest.approx(11.35987, abs=1e-5)
    # 2.5 +- 1.96 * 0.5 = [1.52, 3.48], inside the range: unchanged.
    assert per_session.holdout.low == pytest.approx(1.52002, abs=1e-5)
    assert per_session.holdout.high == pytest.approx(3.47998, abs=1e-5)
    # The test keeps the spread: z = 2 / sqrt(3.5² + 0.5²), p = erfc(0.4).
    assert per_session.p_value == pytest.approx(0.57161, abs=1e-5)
    assert per_session.uplift == pytest.approx(0.8)
    assert "4.50 [0.00, 11.36]" in render_report(report)
    metrics = report.as_dict()["metrics"]
    assert isinstance(metrics, dict)
    assert metrics["interactions_per_session"]["personalized"]["low"] == 0.0
    # Rates stay within [0, 1]: no visitor converted.
    conversion = report.comparisons[1]
    assert conversion.personalized.low == 0.0 and conversion.personalized.high <= 1.0


def test_clicked_lists_credits_a_list_once_and_only_for_what_it_showed() -> None:
    from penchant.engine.report import clicked_lists

    page = {"procedures": (1, 2, 3), "doctors": (7,)}
    pairs = [
        ("pv1", page, "procedure", 2, "c1", 5.0),
        ("pv1", page, "procedure", 3, "c2", 6.0),  # the same list again: still one
        ("pv1", page, "doctor", 2, "c3", 7.0),  # a doctor 2 was not shown (procedure 2 was)
        ("pv1", page, "category", 1, "c4", 8.0),
        ("pv2", {"procedures": (4,)}, "procedure", 1, "c5", 9.0),
        ("pv3", {"doctors": (7,), "procedures": ()}, "doctor", 7, "c6", 10.0),
    ]
    assert clicked_lists(pairs) == {("pv1", "procedures"), ("pv3", "doctors")}


def test_a_click_is_credited_to_the_last_page_view_before_it_that_showed_it() -> None:
    from penchant.engine.report import clicked_lists

    shown = {"procedures": (1, 2)}
    # one click on procedure 2, which three home page views showed: 300 s, 40 s and
    # 20 s before it; and a page view 10 s after it (another worker's clock)
    pairs = [
        ("early", shown, "procedure", 2, "click", 300.0),
        ("later", shown, "procedure", 2, "click", 40.0),
        ("last", shown, "procedure", 2, "click", 20.0),
        ("after", shown, "procedure", 2, "click", -10.0),
    ]
    assert clicked_lists(pairs) == {("last", "procedures")}
    # with no page view before it, the nearest one after it
    assert clicked_lists(
        [
            ("after", shown, "procedure", 2, "click", -10.0),
            ("much-after", shown, "procedure", 2, "click", -50.0),
        ]
    ) == {("after", "procedures")}
