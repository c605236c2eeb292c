"""The operator dashboard: access control, escaping, charts, and the page through the middleware."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pytest

from penchant import Catalog, Category, Item, Penchant, Settings
from penchant.config import ConfigError
from penchant.engine.report import Report, SessionCounts, build_report
from penchant.middleware.dashboard import (
    DASHBOARD_HEADERS,
    UNAUTHORIZED_HEADERS,
    DashboardData,
    RecentInteraction,
    authorized,
    bar_chart,
    collect,
    comparison_chart,
    nice_ceiling,
    render,
    stacked_chart,
)

NOW = datetime(2025, 5, 20, 12, 30)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# ------------------------------------------------------------------ access


def test_no_credentials_configured_refuses_everything() -> None:
    settings = Settings()
    assert not authorized(None, settings)
    assert not authorized(basic("", ""), settings)
    assert not authorized("Bearer ", settings)


TOKEN = "s3cret-token-of-the-operator"
PASSWORD = "pässword-of-the-operator"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"Bearer {TOKEN}", True),
        (f"bearer {TOKEN}", True),
        (f"Bearer {TOKEN}x", False),
        ("Bearer wrong", False),
        (None, False),
    ],
)
def test_token(header: str | None, expected: bool) -> None:
    settings = Settings(dashboard_token=TOKEN)
    assert authorized(header, settings) is expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (basic("admin", PASSWORD), True),
        (basic("admin", "password"), False),
        (basic("root", PASSWORD), False),
        (basic("admin", ""), False),
        ("Basic " + base64.b64encode(b"admin" + PASSWORD.encode()).decode(), False),  # no colon
        ("Basic !!!not-base64!!!", False),
        ("Basic " + base64.b64encode(b"admin:\xff").decode(), False),  # not UTF-8
        ("Digest admin", False),
        ("", False),
    ],
)
def test_basic_credentials(header: str, expected: bool) -> None:
    settings = Settings(dashboard_user="admin", dashboard_password=PASSWORD)
    assert authorized(header, settings) is expected


def test_basic_needs_both_user_and_password_configured() -> None:
    settings = Settings(dashboard_user="admin")
    assert not authorized(basic("admin", ""), settings)


def test_a_bearer_password_does_not_open_basic_only_dashboards() -> None:
    settings = Settings(dashboard_user="admin", dashboard_password=PASSWORD)
    assert not authorized(f"Bearer {PASSWORD}", settings)


@pytest.mark.parametrize("name", ["dashboard_token", "dashboard_password"])
@pytest.mark.parametrize("value", ["", "pw", "fifteen-chars!!"])
def test_short_operator_credentials_are_refused_at_start_up(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match="at least 16 characters"):
        Settings(**{name: value})
    Settings(**{name: value + "x" * (16 - len(value))})


def test_unauthorized_headers_ask_for_basic_credentials() -> None:
    headers = dict(UNAUTHORIZED_HEADERS)
    assert headers["www-authenticate"].startswith("Basic ")
    assert headers["cache-control"] == "no-store"


# --------------------------------------------------------------- rendering


def sample(**changes: object) -> DashboardData:
    daily = []
    for back in range(30):
        day = (NOW.date() - timedelta(days=back)).isoformat()
        daily += [(day, "view", 10 + back), (day, "click", back % 4), (day, "form_submit", 1)]
    fields: dict[str, object] = {
        "generated_at": NOW,
        "daily": daily,
        "top_categories": [("Injectables", 4.5, 12), ("Skin resurfacing", 1.5, None)],
        "engaged": [("f" * 32, 40)],
        "popular": [("procedure", "Lip filler", 9), ("doctor", "Dr. Amelia Hart", 3)],
        "writer": {
            "accepted": 120,
            "stored": 100,
            "duplicates": 4,
            "dropped": {"bot": 6, "rate_limited": 0},
            "in_flight": 10,
            "errors": 0,
        },
        "dead_lettered": 0,
    }
    fields.update(changes)
    return DashboardData(**fields)  # type: ignore[arg-type]


def test_every_stored_value_is_escaped() -> None:
    evil = "<script>alert('x')</script>"
    page = render(
        sample(
            top_categories=[(evil, 1.0, 1)],
            engaged=[(evil, 9)],
            popular=[("procedure", evil, 3)],
            writer={"accepted": 1, "stored": 1, "dropped": {evil: 2}, "last_error": evil},
            recent=[RecentInteraction(NOW, evil, "click", evil, '{"note": "' + evil + '"}')],
            experiment=report(funnels=[(("view:procedure", evil), 2)]),
            daily=[(NOW.date().isoformat(), evil, 3)],
        )
    )
    assert "<script" not in page
    assert "&lt;script&gt;" in page
    assert "alert(&#39;x&#39;)" in page


def test_the_inline_style_matches_the_content_security_policy() -> None:
    page = render(sample())
    styles = re.findall(r"<style>(.*?)</style>", page, flags=re.S)
    assert len(styles) == 1
    digest = base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode()
    csp = dict(DASHBOARD_HEADERS)["content-security-policy"]
    assert f"'sha256-{digest}'" in csp
    assert "default-src 'none'" in csp
    assert "script-src" not in csp  # no script may run at all
    assert " style=" not in page  # style attributes would be blocked by that policy
    assert "<script" not in page


def test_headers_forbid_caching_and_framing() -> None:
    headers = dict(DASHBOARD_HEADERS)
    assert headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["content-type"].startswith("text/html")


def test_page_shows_every_panel() -> None:
    page = render(sample())
    for title in (
        "last 7 days",
        "last 30 days",
        "Top categories by affinity",
        "Popular items",
        "Most engaged visitors",
        "Writer health",
        "A/B results",
    ):
        assert title in page
    assert "f" * 32 in page
    assert "Lip filler (procedure)" in page
    assert page.count("<svg") == 4  # two stacked charts, categories, popular items


def test_writer_health_figures() -> None:
    page = render(sample())
    figures = dict(
        (label, value) for value, label in re.findall(r"<b>([^<]*)</b><span>([^<]*)</span>", page)
    )
    assert figures["accepted"] == "120"
    assert figures["written"] == "100"
    assert figures["queued"] == "10"
    assert figures["dropped"] == "6"
    assert figures["dead-lettered"] == "0"
    assert "rate_limited" not in page  # reasons that dropped nothing are left out


def test_empty_data_says_so() -> None:
    page = render(DashboardData(generated_at=NOW))
    assert "No interactions in this period yet." in page
    assert "Not available from this store." in page
    assert "Nothing viewed yet." in page
    assert "The writer has not started in this process yet." in page
    assert "A/B results appear here" in page


def report(
    *, visitors: int = 400, funnels: list[tuple[tuple[str, ...], int]] | None = None
) -> Report:
    sessions = [
        SessionCounts(
            user_id=f"{i:032x}",
            session_id=f"s{i}",
            interactions=3 + i % 5,
            form_submits=1 if i % 7 == 0 else 0,
            rec_clicks=i % 3,
            exposures=6,
        )
        for i in range(visitors)
    ]
    return build_report(sessions, key="k", holdout=0.5, days=30, minimum=100, funnels=funnels or [])


def test_experiment_report_replaces_the_placeholder() -> None:
    result = report(funnels=[(("view:category", "view:procedure", "form_submit:procedure"), 7)])
    page = render(sample(experiment=result))
    assert "A/B results appear here" not in page
    assert "recommendation ctr" in page and "conversion rate" in page
    assert "view:category &gt; view:procedure &gt; form_submit:procedure" in page
    assert page.count("<svg") == 5
    assert "Not enough visitors yet" not in page


def test_too_few_visitors_are_said_plainly() -> None:
    page = render(sample(experiment=report(visitors=20)))
    assert "Not enough visitors yet" in page


# ------------------------------------------------------------------- charts


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 1.0), (1, 1.0), (3, 5.0), (7, 10.0), (10, 10.0), (11, 20.0)]
)
def test_nice_ceiling(value: float, expected: float) -> None:
    assert nice_ceiling(value) == expected


def test_nice_ceiling_is_never_below_the_value() -> None:
    for value in (0.3, 1.7, 19, 201, 4999, 123456):
        top = nice_ceiling(value)
        assert value <= top < value * 5.01


def test_stacked_bars_are_proportional_to_the_counts() -> None:
    end = date(2025, 5, 20)
    daily = [
        ("2025-05-20", "view", 30),
        ("2025-05-20", "click", 10),
        ("2025-05-18", "view", 5),
        ("2025-05-01", "view", 999),  # outside the 7-day window
    ]
    chart = stacked_chart(daily, end, 7)
    assert chart.total == 45
    assert [k for k, _, _ in chart.legend] == ["view", "click"]
    heights = {bar.title: bar.height for bar in chart.bars}
    assert heights["2025-05-20: 30 view"] == pytest.approx(
        3 * heights["2025-05-20: 10 click"], abs=0.02
    )
    assert heights["2025-05-20: 30 view"] == pytest.approx(
        6 * heights["2025-05-18: 5 view"], abs=0.02
    )
    # Bars of one day stack: the click bar sits on top of the view bar.
    view = next(b for b in chart.bars if b.title == "2025-05-20: 30 view")
    click = next(b for b in chart.bars if b.title == "2025-05-20: 10 click")
    assert click.y + click.height == pytest.approx(view.y, abs=0.02)
    assert click.x == view.x
    # Days run left to right and the latest day is the last bar.
    older = next(b for b in chart.bars if b.title.startswith("2025-05-18"))
    assert older.x < view.x
    assert len(chart.labels) == 7


def test_bar_chart_longest_value_is_widest() -> None:
    chart = bar_chart([("a", 2.0, "2"), ("b", 8.0, "8"), ("c", 0.0, "0")])
    widths = [bar.width for bar in chart.bars]
    assert widths[1] == max(widths)
    assert widths[0] == pytest.approx(widths[1] / 4, abs=0.02)
    assert widths[2] == 0


def test_comparison_chart_whiskers_hold_their_bars() -> None:
    chart = comparison_chart(report())
    assert len(chart.rows) == 3
    assert len(chart.bars) == len(chart.whiskers) == 6
    for bar, (low, high, y) in zip(chart.bars, chart.whiskers, strict=True):
        end = bar.x + bar.width
        assert low <= end + 0.01 and end <= high + 0.01
        assert bar.y <= y <= bar.y + bar.height


# ------------------------------------------------- with a real store and the middleware

SECRET = "dashboard-test-secret-0123456789abcdef"
EVIL = "<script>alert('stored')</script>"


def small_catalog() -> Catalog:
    return Catalog(
        categories=[Category(1, "Injectables"), Category(2, "Lasers")],
        items=[
            Item("procedure", 1, "Botox", category_ids=(1,), url="/procedures/1"),
            Item("procedure", 2, "Lip filler", category_ids=(1,), url="/procedures/2"),
            Item("procedure", 3, "CO2 laser", category_ids=(2,), url="/procedures/3"),
        ],
    )


@pytest.fixture
def service(database_url: str, now: datetime) -> Iterator[Penchant]:
    penchant = Penchant(
        database_url=database_url,
        secret_key=SECRET,
        catalog=small_catalog(),
        dashboard_user="admin",
        dashboard_password="open sesame, operator",
        clock=lambda: now,  # the dashboard route compares with the test's now
    )
    penchant.init_db()
    try:
        yield penchant
    finally:
        penchant.close()


def fill(penchant: Penchant, now: datetime) -> None:
    """Visitor a: 7 interactions over two days; b: 2; c: one with hostile metadata."""
    a, b, c = "a" * 32, "b" * 32, "c" * 32
    yesterday = now - timedelta(days=1)
    for i in range(4):
        penchant.track("view", "procedure", 1 + i % 2, user_id=a, timestamp=yesterday)
    penchant.track("click", "procedure", 2, user_id=a, timestamp=now)
    penchant.track("view", "procedure", 3, user_id=a, timestamp=now)
    penchant.track("form_submit", "procedure", 2, user_id=a, timestamp=now)
    penchant.track("view", "procedure", 1, user_id=b, timestamp=now)
    penchant.track("view", "category", 2, user_id=b, timestamp=now)
    penchant.track("click", "procedure", 1, user_id=c, timestamp=now, extra_data={"note": EVIL})
    assert penchant.flush(timeout=20.0)


@pytest.mark.date_sensitive
def test_collect_reads_the_store(service: Penchant, now: datetime) -> None:
    fill(service, now)
    data = collect(service.store, service.health(), now, catalog=service.catalog)
    assert not data.errors
    per_type: dict[str, int] = {}
    for _, kind, count in data.daily:
        per_type[kind] = per_type.get(kind, 0) + count
    assert per_type == {"view": 7, "click": 2, "form_submit": 1}
    days = {day for day, _, _ in data.daily}
    assert days == {now.date().isoformat(), (now - timedelta(days=1)).date().isoformat()}
    assert data.engaged and data.engaged[0] == ("a" * 32, 7)
    assert all(user != "b" * 32 for user, _ in data.engaged)  # too few interactions
    assert data.top_categories is not None
    assert data.top_categories[0][0] == "Injectables"
    popular = {(kind, name): n for kind, name, n in data.popular}
    assert popular[("procedure", "Botox")] == 3  # a, b and c: distinct visitors
    assert data.writer.get("stored") == 10
    page = render(data)
    assert "<script>alert" not in page


def get(app: Any, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://demo.test") as client:
            return await client.get(path, headers=headers or {})

    return asyncio.run(call())


async def site(scope: Any, receive: Any, send: Any) -> None:
    """The smallest host application: one HTML page."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/html; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": b"<!doctype html><p>hello</p>"})


def test_the_dashboard_route_needs_credentials(service: Penchant) -> None:
    app = service.asgi(site)
    refused = get(app, "/personalization/dashboard")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].lower().startswith("basic")
    assert "penchant dashboard" not in refused.text
    wrong = get(app, "/personalization/dashboard", {"Authorization": basic("admin", "nope")})
    assert wrong.status_code == 401
    page = get(
        app,
        "/personalization/dashboard",
        {"Authorization": basic("admin", "open sesame, operator")},
    )
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "penchant dashboard" in page.text


@pytest.mark.date_sensitive
def test_stored_metadata_comes_back_escaped(service: Penchant, now: datetime) -> None:
    fill(service, now)
    app = service.asgi(site)
    page = get(
        app,
        "/personalization/dashboard",
        {"Authorization": basic("admin", "open sesame, operator")},
    )
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(&#39;stored&#39;)&lt;/script&gt;" in page.text
