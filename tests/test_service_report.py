"""The effectiveness report read back from a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from penchant import Catalog, Category, Item, Penchant
from penchant.engine.experiments import assign_variant

# "now" is the now fixture's, handed to the service (clock) and to the CLI (--now).
pytestmark = pytest.mark.date_sensitive

CATALOG = Catalog(
    [Category(1, "Injectables"), Category(2, "Laser")],
    [Item("procedure", i, f"P{i}", ((i % 2) + 1,)) for i in range(1, 9)],
)


@pytest.fixture
def penchant(database_url: str, now: datetime) -> Iterator[Penchant]:
    p = Penchant(
        database_url=database_url,
        secret_key="test-0123456789abcdef",
        catalog=CATALOG,
        holdout=0.5,
        experiment_key="exp",
        clock=lambda: now,
    )
    p.init_db()
    yield p
    p.close()


def test_report_counts_exposures_clicks_and_conversions(penchant: Penchant, now: datetime) -> None:
    visitors = [f"{i:032x}" for i in range(40)]
    expected = {"personalized": [0, 0, 0], "holdout": [0, 0, 0]}  # exposures, rec clicks, converted
    for n, user in enumerate(visitors):
        variant = assign_variant(user, key="exp", holdout=0.5)
        session = f"s{n}"
        at = now - timedelta(hours=1)
        penchant.track("view", "page", None, user_id=user, session_id=session, timestamp=at)
        recs = penchant.recommend("procedures", user, limit=3)
        penchant.record_exposure(
            user_id=user,
            session_id=session,
            page_view_id=f"pv{n}",
            variant=variant,
            content_type="procedures",
            recommendations=recs,
            at=at,
        )
        expected[variant][0] += 1
        if n % 3 == 0:
            penchant.track(
                "click",
                "procedure",
                recs[0].item.id,
                user_id=user,
                session_id=session,
                extra_data={"source": "rec", "position": 1, "list": "procedures"},
                timestamp=at + timedelta(minutes=1),
            )
            expected[variant][1] += 1
        if n % 4 == 0:
            penchant.track(
                "form_submit",
                "procedure",
                1,
                user_id=user,
                session_id=session,
                timestamp=at + timedelta(minutes=2),
            )
            expected[variant][2] += 1
    # a replayed exposure of the same page view and list is stored once
    penchant.record_exposure(
        user_id=visitors[0],
        session_id="s0",
        page_view_id="pv0",
        variant=assign_variant(visitors[0], key="exp", holdout=0.5),
        content_type="procedures",
        recommendations=penchant.recommend("procedures", visitors[0], limit=3),
    )
    assert penchant.flush(timeout=10)
    report = penchant.report(days=7, minimum=10)
    ctr, conversion, per_session = report.comparisons
    for variant, estimate in (("personalized", ctr.personalized), ("holdout", ctr.holdout)):
        exposures, clicks, _ = expected[variant]
        assert estimate.n == exposures
        assert estimate.value == pytest.approx(clicks / exposures)
    assert conversion.personalized.n + conversion.holdout.n == len(visitors)
    assert conversion.personalized.value * conversion.personalized.n == pytest.approx(
        expected["personalized"][2]
    )
    assert per_session.personalized.n + per_session.holdout.n == len(visitors)
    # every converting session went page view -> (click) -> form submission
    paths = dict(report.funnels)
    assert sum(paths.values()) == sum(v[2] for v in expected.values())
    assert ("view:page", "click:procedure", "form_submit:procedure") in paths


def _ctr(penchant: Penchant) -> tuple[float, int]:
    """Click-through of recommendations and lists shown, of the one variant (holdout 0)."""
    (ctr,) = [c for c in penchant.report(days=1, minimum=1).comparisons if "ctr" in c.metric]
    return ctr.personalized.value, ctr.personalized.n


def test_a_click_is_attributed_to_what_the_visitor_was_shown_within_the_window(
    database_url: str, now: datetime
) -> None:
    p = Penchant(
        database_url=database_url,
        secret_key="test-0123456789abcdef",
        catalog=CATALOG,
        holdout=0.0,
        clock=lambda: now,
    )
    p.init_db()
    try:
        shown_at = now - timedelta(hours=3)
        user, other = "a" * 32, "b" * 32

        def show(page_view: str, items: tuple[int, ...], at: datetime) -> None:
            p.record_exposure(
                user_id=user,
                session_id="s1",
                page_view_id=page_view,
                variant="personalized",
                content_type="procedures",
                recommendations=[
                    r for r in p.recommend("procedures", None, limit=8) if r.item.id in items
                ],
                at=at,
            )

        def click(who: str, target: int, at: datetime) -> None:
            p.track("click", "procedure", target, user_id=who, session_id="s1", timestamp=at)

        # The click is written before the list it answers (the writer's delay, a
        # replica's lag): attribution happens when the report is read.
        click(user, 2, shown_at + timedelta(minutes=29))
        assert p.flush(timeout=10)
        assert _ctr(p) == (0.0, 0)
        show("pv1", (1, 2, 3), shown_at)
        assert p.flush(timeout=10)
        assert _ctr(p) == (1.0, 1)
        # Too late (31 minutes after it was shown), not shown (4), another visitor's
        # click on what this one was shown: none of them counts for a second list.
        show("pv2", (1, 2, 3), shown_at + timedelta(hours=1))
        click(user, 1, shown_at + timedelta(hours=1, minutes=31))
        click(user, 4, shown_at + timedelta(hours=1, minutes=5))
        click(other, 3, shown_at + timedelta(hours=1, minutes=5))
        assert p.flush(timeout=10)
        assert _ctr(p) == (0.5, 2)
        # A click timed by another worker's clock a little behind still counts.
        click(user, 3, shown_at + timedelta(hours=1) - timedelta(seconds=30))
        assert p.flush(timeout=10)
        assert _ctr(p) == (1.0, 2)
    finally:
        p.close()


def test_the_report_command_prints_the_same_figures(
    penchant: Penchant, database_url: str, now: datetime
) -> None:
    import json

    from click.testing import CliRunner

    from penchant.cli import main

    for n in range(12):
        user = f"{n:032x}"
        penchant.track("view", "procedure", 1, user_id=user, timestamp=now - timedelta(hours=2))
        if n % 2:
            penchant.track("form_submit", "procedure", 1, user_id=user, timestamp=now)
    assert penchant.flush(timeout=10)
    expected = penchant.report(days=30, minimum=100).as_dict()
    env = {"PENCHANT_HOLDOUT": "0.5", "PENCHANT_EXPERIMENT_KEY": "exp"}
    runner = CliRunner()
    clock = ["--now", now.isoformat()]  # the CLI compares with the test's now, not the calendar
    result = runner.invoke(
        main,
        [*clock, "report", "--database-url", database_url, "--json"],
        env=env,
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output.strip().splitlines()[-1])
    # the same clock as the service: the figures cover the same events
    assert printed["visitors"] == expected["visitors"]
    assert printed["metrics"]["conversion_rate"] == expected["metrics"]["conversion_rate"]
    assert printed["enough_data"] is False
    table = runner.invoke(main, [*clock, "report", "--database-url", database_url], env=env)
    assert table.exit_code == 0
    assert "not enough visitors yet" in table.output
    assert "conversion_rate" in table.output
