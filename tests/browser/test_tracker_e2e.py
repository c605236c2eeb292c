"""End to end: headless Chromium on a real Starlette app wrapped by penchant.

The page renders the tracker's tag with ``personalization.script_tag()``; the
bundle and the beacon endpoint are penchant's own. Each test gets a fresh
database and checks the rows that arrived in ``user_interactions``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("playwright.sync_api")
pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

import sqlalchemy as sa
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, Request, sync_playwright
from starlette.applications import Starlette
from starlette.requests import Request as HTTPRequest
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from penchant import Catalog, Category, Item, Penchant
from penchant.storage.schema import user_interactions
from tests.browser.chromium import CHROMIUM, DESKTOP_USER_AGENT, chromium_args, require_chromium

pytestmark = pytest.mark.browser

USER_AGENT = DESKTOP_USER_AGENT
CHROMIUM_ARGS = chromium_args(user_agent=USER_AGENT, lang="en-US")
CLOCK_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
GPC = "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true});"

CATALOG = Catalog(
    categories=[
        Category(1, "Injectables", slug="injectables", keywords=("botox", "filler")),
        Category(2, "Laser", slug="laser", keywords=("laser",)),
    ],
    items=[
        Item("procedure", 3, "Botox", category_ids=(1,), url="/procedures/3"),
        Item("procedure", 5, "Filler", category_ids=(1,), url="/procedures/5"),
        Item("procedure", 6, "Laser resurfacing", category_ids=(2,), url="/procedures/6"),
        *(
            Item("doctor", i, f"Dr. {i}", procedure_ids=(3 + i % 2,), url=f"/doctors/{i}")
            for i in range(1, 11)
        ),
        Item("package", 7, "Glow package", procedure_ids=(3, 5), url="/packages/7"),
    ],
)

STUB = (
    "<script>window.penchant=window.penchant||{q:[],track:function(){this.q.push(arguments)}};"
    'penchant.track("click","package",7,{"source":"newsletter"});</script>'
)


def page_html(request: HTTPRequest) -> str:
    tag = request.state.personalization.script_tag()
    doctors = "".join(
        f'<a class="doctor" href="/doctors/{i}" data-penchant-type="doctor" '
        f'data-penchant-id="{i}" onclick="event.preventDefault()">Dr. {i}</a>'
        for i in range(1, 11)
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Marketplace</title>{STUB}{tag}</head>
<body>
<a id="botox" href="/procedures/3" data-penchant-type="procedure" data-penchant-id="3"
   onclick="event.preventDefault()"><span>Botox</span></a>
<a id="leave" href="/other" data-penchant-type="procedure" data-penchant-id="6">Laser</a>
{doctors}
<form id="search" action="/other" data-penchant-search onsubmit="event.preventDefault()">
  <input name="q" id="q"><button id="search-go">Search</button>
</form>
<form id="consult" action="/other" method="post" data-penchant-form="consultation"
      data-penchant-type="doctor" data-penchant-id="4" onsubmit="event.preventDefault()">
  <input name="email" id="email"><button id="consult-go">Send</button>
</form>
</body></html>"""


async def html_page(request: HTTPRequest) -> Response:
    return HTMLResponse(page_html(request))


@dataclass
class Site:
    base: str
    penchant: Penchant
    database_url: str

    def rows(self) -> list[dict[str, Any]]:
        engine = sa.create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                result = conn.execute(sa.select(user_interactions).order_by(user_interactions.c.id))
                return [dict(row._mapping) for row in result]
        finally:
            engine.dispose()

    def wait_for_rows(
        self, done: Callable[[list[dict[str, Any]]], bool], *, timeout: float = 15.0
    ) -> list[dict[str, Any]]:
        """Flush the writer and read until ``done(rows)`` (or fail with what is there)."""
        deadline = time.monotonic() + timeout
        while True:
            self.penchant.flush(timeout=5.0)
            rows = self.rows()
            if done(rows):
                return rows
            if time.monotonic() > deadline:
                pytest.fail(f"rows never matched: {summary(rows)}")
            time.sleep(0.05)


def summary(rows: list[dict[str, Any]]) -> list[tuple[str, str, int | None]]:
    return [(r["interaction_type"], r["target_type"], r["target_id"]) for r in rows]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(database_url: str) -> Iterator[Site]:
    penchant = Penchant(
        database_url=database_url,
        secret_key="browser-test-secret",
        catalog=CATALOG,
        url_patterns={"/procedures/{id}": "procedure", "/doctors/{id}": "doctor"},
        allow_webdriver=True,
        flush_interval=0.05,
    )
    penchant.init_db()
    app = penchant.asgi(
        Starlette(
            routes=[
                Route("/", html_page),
                Route("/other", html_page, methods=["GET", "POST"]),
                Route("/procedures/{id:int}", html_page),
            ]
        )
    )
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the test server did not start")
        time.sleep(0.02)
    try:
        yield Site(f"http://127.0.0.1:{port}", penchant, database_url)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        penchant.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    yield from serve(f"sqlite:///{tmp_path / 'penchant.db'}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context()
    try:
        yield context
    finally:
        context.close()


@dataclass
class Beacons:
    """The beacon requests a page made and the answers it got."""

    requests: list[Request]

    def statuses(self) -> list[int | None]:
        return [r.response().status if r.response() else None for r in self.requests]


def open_page(context: BrowserContext, site: Site, path: str = "/") -> tuple[Page, Beacons]:
    page = context.new_page()
    beacons = Beacons([])
    page.on(
        "request",
        lambda r: beacons.requests.append(r) if r.url.endswith("/track-interaction") else None,
    )
    page.goto(site.base + path)
    page.wait_for_function("window.penchant && !window.penchant.q")
    return page, beacons


# ---------------------------------------------------------------------------- tests
def _journey(page: Page) -> None:
    page.click("#botox span")
    page.fill("#q", "Botox")
    page.click("#search-go")
    page.fill("#email", "jane@example.org")
    page.click("#consult-go")
    page.evaluate("history.pushState({}, '', '/procedures/5')")
    page.evaluate("penchant.track('click', 'doctor', 9, {source: 'chat'})")


@pytest.fixture
def any_site(database_url: str) -> Iterator[Site]:
    yield from serve(database_url)


def test_tracked_events_arrive_in_the_database(context: BrowserContext, any_site: Site) -> None:
    site = any_site
    page, beacons = open_page(context, site)
    _journey(page)
    expected = {
        ("view", "page", None),  # the page itself, recorded by the server
        ("click", "package", 7),  # queued by the stub before the script loaded
        ("click", "procedure", 3),
        ("form_submit", "doctor", 4),
        ("view", "procedure", 5),  # the in-page navigation, mapped by url_patterns
        ("click", "doctor", 9),
    }
    rows = site.wait_for_rows(lambda rows: expected <= set(summary(rows)) and len(rows) >= 7)
    assert all(status == 202 for status in beacons.statuses())
    searches = [r for r in rows if r["interaction_type"] == "search"]
    assert len(searches) == 1
    assert searches[0]["target_type"] == "category"
    assert sorted(summary(rows)) == sorted([*expected, summary(searches)[0]])
    # One visitor and one session for the server's view and the script's events.
    assert len({r["user_id"] for r in rows}) == 1
    assert len({r["session_id"] for r in rows}) == 1
    stored = json.dumps([r["extra_data"] for r in rows])
    assert "jane@example.org" not in stored
    assert "Botox" not in stored  # the search text is not kept by default
    event_ids = [r["event_id"] for r in rows if r["event_id"] is not None]
    assert len(event_ids) == len(set(event_ids))


def test_ten_rapid_clicks_arrive_as_one_batch(context: BrowserContext, site: Site) -> None:
    page = context.new_page()
    beacons = Beacons([])
    page.on(
        "request",
        lambda r: beacons.requests.append(r) if r.url.endswith("/track-interaction") else None,
    )
    # The page's timers run on a paused fake clock: only run_for moves them.
    page.clock.install(time=CLOCK_START)
    page.clock.pause_at(CLOCK_START + timedelta(seconds=1))
    page.goto(site.base + "/")
    page.wait_for_function("window.penchant && !window.penchant.q")
    page.evaluate("document.querySelectorAll('.doctor').forEach((el) => el.click())")
    page.clock.run_for(300)
    rows = site.wait_for_rows(
        lambda rows: len([r for r in rows if r["target_type"] == "doctor"]) == 10
    )
    clicks = [r for r in rows if r["target_type"] == "doctor"]
    assert sorted(r["target_id"] for r in clicks) == list(range(1, 11))
    assert ("click", "package", 7) in summary(rows)
    page.evaluate("0")  # a round trip delivers the browser's pending request events
    # The stub's event and the ten clicks were queued together: one request.
    assert len(beacons.requests) == 1
    assert len(json.loads(beacons.requests[0].post_data or "{}")["events"]) == 11


def test_event_queued_just_before_close_arrives(context: BrowserContext, site: Site) -> None:
    page, _ = open_page(context, site)
    page.click("#botox")
    page.close(run_before_unload=True)
    rows = site.wait_for_rows(lambda rows: ("click", "procedure", 3) in summary(rows))
    assert ("click", "package", 7) in summary(rows)


def test_event_queued_just_before_leaving_arrives(context: BrowserContext, site: Site) -> None:
    page, _ = open_page(context, site)
    page.click("#leave")
    page.wait_for_url("**/other")
    rows = site.wait_for_rows(lambda rows: ("click", "procedure", 6) in summary(rows))
    assert summary(rows).count(("view", "page", None)) == 2  # both pages, by the server


@pytest.mark.parametrize("signal", ["opt-out cookie", "gpc"])
def test_nothing_arrives_from_a_visitor_who_said_no(
    browser: Browser, context: BrowserContext, site: Site, signal: str
) -> None:
    if signal == "gpc":
        context.add_init_script(GPC)
        # A browser with GPC on also sends the header with every request.
        context.set_extra_http_headers({"Sec-GPC": "1"})
    else:
        context.add_cookies([{"name": "penchant_optout", "value": "1", "url": site.base}])
    page, beacons = open_page(context, site)
    if signal == "opt-out cookie":
        assert page.get_attribute("script[data-endpoint]", "data-off") == "1"
    _journey(page)
    page.click("#leave")  # leaving flushes whatever was queued
    page.wait_for_url("**/other")
    assert beacons.requests == []
    # Then the same browser without the signal is recorded: the writer was working, and
    # the rows are exactly the control's own.
    control = browser.new_context()
    try:
        other, _ = open_page(control, site)
        other.click("#botox")
        other.close(run_before_unload=True)
        rows = site.wait_for_rows(lambda rows: ("click", "procedure", 3) in summary(rows))
    finally:
        control.close()
    assert sorted(summary(rows), key=str) == sorted(
        [("view", "page", None), ("click", "package", 7), ("click", "procedure", 3)], key=str
    )
