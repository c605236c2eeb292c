"""The tracking script in headless Chromium, against a small beacon recorder.

A Starlette app, run by uvicorn in a thread, serves pages carrying the script tag
(rendered by ``serve.script_tag``), serves the bundle through ``tracker_response``
and records every beacon body it receives. Timers are driven by Playwright's fake
clock wherever the test does not need real navigation, so nothing here sleeps.
"""

from __future__ import annotations

import html
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

pytest.importorskip("playwright.sync_api")
pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from penchant.tracker_js import serve
from tests.browser.chromium import CHROMIUM, chromium_args, require_chromium

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = chromium_args()
WAIT_MS = 300  # the tracker's quiet period
CLOCK_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
EVENT_ID = re.compile(r"[0-9a-f]{32}")


# --------------------------------------------------------------------------- server
@dataclass
class Beacon:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Recorder:
    """What the test server saw: beacon bodies and the headers of page requests."""

    beacons: list[Beacon] = field(default_factory=list)
    page_headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Condition = field(default_factory=threading.Condition)

    def clear(self) -> None:
        with self.lock:
            self.beacons.clear()
            self.page_headers.clear()

    def add(self, beacon: Beacon) -> None:
        with self.lock:
            self.beacons.append(beacon)
            self.lock.notify_all()

    def wait_for(self, count: int, *, timeout: float = 10.0) -> list[Beacon]:
        """Block until ``count`` beacons arrived (or fail with what did arrive)."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.beacons) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    pytest.fail(f"expected {count} beacon(s), got {self.beacons!r}")
                self.lock.wait(remaining)
            return list(self.beacons)

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [event for beacon in self.beacons for event in beacon.body["events"]]


TOKEN = secrets.token_urlsafe(16)
STUB = (
    "<script>window.penchant=window.penchant||{q:[],track:function(){this.q.push(arguments)}};"
    'penchant.track("click","package",7,{"source":"newsletter"});</script>'
)


def page_html(request: Request) -> str:
    query = request.query_params
    prefix = query.get("prefix", "/personalization")
    tag = serve.script_tag(
        prefix=prefix,
        token=TOKEN,
        off=query.get("off") == "1",
        allow_webdriver=query.get("wd", "1") == "1",
    )
    cards = int(query.get("cards", "10"))
    doctor_cards = "".join(
        f'<div class="doctor" data-penchant-type="doctor" data-penchant-id="{i}">'
        f"<span>Dr. {i}</span></div>"
        for i in range(1, cards + 1)
    )
    stub = STUB if query.get("stub") == "1" else ""
    # Forms that stay on the page, as a single-page app's would.
    stay = ' onsubmit="event.preventDefault()"' if query.get("stay", "1") == "1" else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(request.url.path)}</title>
{stub}{tag}</head>
<body>
<div id="procedure" data-penchant-type="procedure" data-penchant-id="3">
  <h2><span id="procedure-name">Botox</span></h2>
</div>
<a id="rec" href="#rec" data-penchant-type="procedure" data-penchant-id="5"
   data-penchant-source="rec" data-penchant-position="2" data-penchant-list="procedures">Filler</a>
<p id="plain">Nothing to track here</p>
{doctor_cards}
<form id="search" action="/other" data-penchant-search{stay}>
  <input name="q" id="q"><button id="search-go">Search</button>
</form>
<form id="consult" action="/other" method="post" data-penchant-form="consultation"
      data-penchant-type="doctor" data-penchant-id="4"{stay}>
  <input name="email" id="email"><textarea name="note" id="note"></textarea>
  <button id="consult-go">Send</button>
</form>
<form id="contact" action="/other" data-penchant-form{stay}>
  <input name="message" id="message"><button id="contact-go">Send</button>
</form>
<form id="untracked" action="/other"{stay}><input name="x"><button id="untracked-go">Go</button>
</form>
<a id="leave" href="/other" data-penchant-type="doctor" data-penchant-id="8">Dr. 8</a>
</body></html>"""


def build_app(recorder: Recorder) -> Starlette:
    async def page(request: Request) -> Response:
        recorder.page_headers.append(dict(request.headers))
        return HTMLResponse(page_html(request))

    async def tracker(request: Request) -> Response:
        status, headers, body = serve.tracker_response(
            request.headers.get("if-none-match"),
            version=request.query_params.get("v"),
            accept_encoding=request.headers.get("accept-encoding"),
        )
        return Response(body, status_code=status, headers=dict(headers))

    async def beacon(request: Request) -> Response:
        body = json.loads(await request.body())
        recorder.add(Beacon(request.url.path, body, dict(request.headers)))
        if request.url.path.startswith("/failing/"):
            return JSONResponse({"error": "unavailable"}, status_code=503)
        return JSONResponse({"accepted": len(body.get("events", [])), "rejected": []}, 202)

    return Starlette(
        routes=[
            Route("/page", page),
            Route("/other", page, methods=["GET", "POST"]),
            Route("/{prefix}/tracker.js", tracker),
            Route("/{prefix}/track-interaction", beacon, methods=["POST"]),
        ]
    )


@dataclass
class Site:
    base: str
    recorder: Recorder

    def url(self, path: str = "/page", **query: str) -> str:
        pairs = "&".join(f"{key}={value}" for key, value in query.items())
        return f"{self.base}{path}" + (f"?{pairs}" if pairs else "")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    recorder = Recorder()
    port = _free_port()
    config = uvicorn.Config(
        build_app(recorder),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the test server did not start")
        time.sleep(0.02)
    try:
        yield Site(f"http://127.0.0.1:{port}", recorder)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# -------------------------------------------------------------------------- browser
def launch_chromium() -> Iterator[Browser]:
    require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            # Playwright turns the back/forward cache off; the pageshow test needs it.
            ignore_default_args=["--disable-back-forward-cache"],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch_chromium()


@pytest.fixture
def context(browser: Browser, site: Site) -> Iterator[BrowserContext]:
    site.recorder.clear()
    context = browser.new_context()
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


# Counts every way the tracker could send, so "nothing was sent" is observed at the
# source rather than inferred from silence at the server.
SEND_SPY = """
window.__sends = 0;
const realFetch = window.fetch;
window.fetch = function () { window.__sends++; return realFetch.apply(this, arguments); };
const realBeacon = Navigator.prototype.sendBeacon;
Navigator.prototype.sendBeacon = function () {
  window.__sends++; return realBeacon.apply(this, arguments);
};
"""


def sends(page: Page) -> int:
    return int(page.evaluate("window.__sends"))


def open_page(page: Page, site: Site, *, clock: bool = True, **query: str) -> None:
    page.add_init_script(SEND_SPY)
    if clock:
        # Installed fake time flows on its own until paused; paused, only run_for moves it.
        page.clock.install(time=CLOCK_START)
        page.clock.pause_at(CLOCK_START + timedelta(seconds=1))
    page.goto(site.url(**query))
    page.wait_for_function("window.penchant && !window.penchant.q")


def settle(page: Page) -> None:
    """Let the quiet period pass on the fake clock."""
    page.clock.run_for(WAIT_MS)


def only(events: list[dict[str, Any]], interaction_type: str) -> list[dict[str, Any]]:
    return [event for event in events if event["interaction_type"] == interaction_type]


# ---------------------------------------------------------------------------- tests
def test_click_on_a_nested_element_sends_one_click(page: Page, site: Site) -> None:
    open_page(page, site)
    page.click("#procedure-name")
    page.click("#plain")  # no target: nothing
    settle(page)
    (beacon,) = site.recorder.wait_for(1)
    assert beacon.path == "/personalization/track-interaction"
    assert beacon.headers["content-type"] == "text/plain;charset=UTF-8"
    assert beacon.body["token"] == TOKEN
    (event,) = beacon.body["events"]
    assert event["interaction_type"] == "click"
    assert event["target_type"] == "procedure"
    assert event["target_id"] == 3
    assert event["path"] == "/page"
    assert event["metadata"] == {}
    assert EVENT_ID.fullmatch(event["event_id"])
    # The server recorded the page view; the script never sends it.
    assert only(site.recorder.events(), "view") == []


def test_beacon_carries_the_page_requests_identity_headers(
    context: BrowserContext, page: Page, site: Site
) -> None:
    # The server fingerprints the beacon from these headers and reads its cookies.
    context.add_cookies([{"name": "consent", "value": "yes", "url": site.base}])
    open_page(page, site)
    page.click("#procedure")
    settle(page)
    (beacon,) = site.recorder.wait_for(1)
    (page_request,) = site.recorder.page_headers
    for name in ("user-agent", "accept-language"):
        assert beacon.headers.get(name) == page_request.get(name), name
    assert "consent=yes" in beacon.headers.get("cookie", "")


def test_click_on_a_recommendation_carries_its_position(page: Page, site: Site) -> None:
    open_page(page, site)
    page.click("#rec")
    settle(page)
    (beacon,) = site.recorder.wait_for(1)
    (event,) = beacon.body["events"]
    assert (event["target_type"], event["target_id"]) == ("procedure", 5)
    assert event["metadata"] == {"source": "rec", "position": 2, "list": "procedures"}


def test_ten_rapid_clicks_arrive_as_one_batch(page: Page, site: Site) -> None:
    open_page(page, site)
    page.evaluate("document.querySelectorAll('.doctor span').forEach((el) => el.click())")
    page.clock.run_for(WAIT_MS - 1)
    assert sends(page) == 0, "sent before the quiet period ended"
    page.clock.run_for(1)
    (beacon,) = site.recorder.wait_for(1)
    events = beacon.body["events"]
    assert [(e["target_type"], e["target_id"]) for e in events] == [
        ("doctor", i) for i in range(1, 11)
    ]
    assert len({e["event_id"] for e in events}) == 10
    assert sends(page) == 1


def test_each_click_restarts_the_quiet_period(page: Page, site: Site) -> None:
    open_page(page, site)
    for doctor in range(1, 4):
        page.click(f"[data-penchant-id='{doctor}'].doctor")
        page.clock.run_for(WAIT_MS - 50)
    assert sends(page) == 0
    page.clock.run_for(50)
    (beacon,) = site.recorder.wait_for(1)
    assert [e["target_id"] for e in beacon.body["events"]] == [1, 2, 3]


def test_repeated_identical_clicks_count_once(page: Page, site: Site) -> None:
    open_page(page, site)
    page.evaluate("for (let i = 0; i < 10; i++) document.querySelector('#procedure h2').click()")
    page.click("#rec")
    settle(page)
    (beacon,) = site.recorder.wait_for(1)
    assert [(e["target_type"], e["target_id"]) for e in beacon.body["events"]] == [
        ("procedure", 3),
        ("procedure", 5),
    ]
    # After the batch left, the same click counts again.
    page.click("#procedure")
    settle(page)
    site.recorder.wait_for(2)
    assert [e["target_id"] for e in site.recorder.events()] == [3, 5, 3]


def test_a_full_queue_is_sent_without_waiting(page: Page, site: Site) -> None:
    open_page(page, site, cards="45")
    page.evaluate("document.querySelectorAll('.doctor').forEach((el) => el.click())")
    # Two full batches leave at once; the remainder waits for the quiet period.
    beacons = site.recorder.wait_for(2)
    assert [len(b.body["events"]) for b in beacons] == [20, 20]
    assert sends(page) == 2
    settle(page)
    beacons = site.recorder.wait_for(3)
    ids = [e["target_id"] for b in beacons for e in b.body["events"]]
    assert ids == list(range(1, 46))


def test_a_large_batch_is_split_under_the_body_cap(page: Page, site: Site) -> None:
    open_page(page, site)
    page.evaluate(
        "for (let i = 0; i < 12; i++) penchant.track('click', 'doctor', i, {note: 'x'.repeat(900)})"
    )
    settle(page)
    deadline = time.monotonic() + 10
    while len(site.recorder.events()) < 12 and time.monotonic() < deadline:
        site.recorder.wait_for(len(site.recorder.beacons) + 1)
    beacons = site.recorder.beacons
    assert len(beacons) > 1
    for beacon in beacons:
        assert len(json.dumps(beacon.body, separators=(",", ":")).encode()) <= 7000
    assert sorted(e["target_id"] for e in site.recorder.events()) == list(range(12))


def test_search_sends_the_query_not_other_fields(page: Page, site: Site) -> None:
    open_page(page, site)
    page.fill("#q", "  Botox lips  ")
    page.click("#search-go")
    page.fill("#q", "   ")
    page.click("#search-go")  # an empty search is not one
    settle(page)
    (beacon,) = site.recorder.wait_for(1)
    (event,) = beacon.body["events"]
    assert event["interaction_type"] == "search"
    assert event["target_type"] == "category"
    assert event["target_id"] is None
    assert event["metadata"] == {"query": "Botox lips"}


def test_form_submission_sends_the_form_target_and_never_a_field_value(
    page: Page, site: Site
) -> None:
    open_page(page, site)
    page.fill("#email", "jane@example.org")
    page.fill("#note", "private note")
    page.click("#consult-go")
    page.fill("#message", "another secret")
    page.click("#contact-go")
    page.click("#untracked-go")  # not marked: nothing
    settle(page)
    (beacon,) = site.recorder.wait_for(1)
    consult, contact = beacon.body["events"]
    assert (consult["interaction_type"], consult["target_type"], consult["target_id"]) == (
        "form_submit",
        "doctor",
        4,
    )
    assert consult["metadata"] == {"form": "consultation"}
    assert (contact["interaction_type"], contact["target_type"], contact["target_id"]) == (
        "form_submit",
        "page",
        None,
    )
    assert contact["path"] == "/page"
    raw = json.dumps(beacon.body)
    for secret in ("jane@example.org", "private note", "another secret"):
        assert secret not in raw


def test_single_page_navigation_sends_views_for_new_paths(page: Page, site: Site) -> None:
    open_page(page, site)
    page.evaluate("history.pushState({}, '', '/procedures/3')")
    page.evaluate("history.replaceState({}, '', '/procedures/3?tab=reviews')")  # same path
    page.evaluate("history.replaceState({}, '', '/procedures/4')")
    page.evaluate("history.pushState({}, '', '/doctors/2')")
    page.evaluate("history.pushState({}, '', '/doctors/2#team')")  # same path
    page.evaluate("history.back()")
    page.wait_for_function("location.hash === ''")
    page.evaluate("history.back()")
    page.wait_for_function("location.pathname === '/procedures/4'")
    settle(page)
    site.recorder.wait_for(1)
    views = site.recorder.events()
    assert all(v["interaction_type"] == "view" for v in views)
    assert all((v["target_type"], v["target_id"]) == ("page", None) for v in views)
    assert [v["path"] for v in views] == [
        "/procedures/3",
        "/procedures/4",
        "/doctors/2",
        "/procedures/4",
    ]


def test_custom_events_through_the_stub_and_after_load(page: Page, site: Site) -> None:
    open_page(page, site, stub="1")
    page.evaluate(
        "penchant.track('form_submit', 'procedure', 3, {source: 'consultation', step: 2})"
    )
    settle(page)
    (beacon,) = site.recorder.wait_for(1)
    queued, direct = beacon.body["events"]
    assert (queued["interaction_type"], queued["target_type"], queued["target_id"]) == (
        "click",
        "package",
        7,
    )
    assert queued["metadata"] == {"source": "newsletter"}
    assert (direct["interaction_type"], direct["target_type"], direct["target_id"]) == (
        "form_submit",
        "procedure",
        3,
    )
    assert direct["metadata"] == {"source": "consultation", "step": 2}
    assert queued["event_id"] != direct["event_id"]


def test_event_queued_just_before_close_still_arrives(page: Page, site: Site) -> None:
    open_page(page, site)
    page.click("#procedure")
    assert sends(page) == 0  # still waiting for the quiet period
    page.close(run_before_unload=True)
    (beacon,) = site.recorder.wait_for(1)
    (event,) = beacon.body["events"]
    assert (event["interaction_type"], event["target_id"]) == ("click", 3)


def test_event_queued_just_before_navigating_away_still_arrives(page: Page, site: Site) -> None:
    open_page(page, site, clock=False, stay="0")
    page.fill("#q", "filler")
    page.click("#search-go")
    page.wait_for_url("**/other?q=filler")
    (beacon,) = site.recorder.wait_for(1)
    assert beacon.body["events"][0]["metadata"] == {"query": "filler"}


def test_hidden_page_flushes_at_once(page: Page, site: Site) -> None:
    open_page(page, site)
    page.click("#procedure")
    page.evaluate(
        "Object.defineProperty(document, 'visibilityState', {value: 'hidden'});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )
    # No clock advance: the hidden page does not wait for the quiet period.
    (beacon,) = site.recorder.wait_for(1)
    assert beacon.body["events"][0]["target_id"] == 3


GPC = "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true});"


@pytest.mark.parametrize(
    ("mode", "tracked"),
    [("allowed", True), ("data-off", False), ("gpc", False), ("webdriver", False)],
)
def test_nothing_is_sent_without_permission(
    page: Page, site: Site, mode: str, tracked: bool
) -> None:
    query = {"stub": "1"}
    if mode == "data-off":
        query["off"] = "1"
    if mode == "webdriver":
        query["wd"] = "0"  # the automated browser is not allowed by the site
    if mode == "gpc":
        page.add_init_script(GPC)
    open_page(page, site, **query)
    page.click("#procedure")
    page.fill("#q", "botox")
    page.click("#search-go")
    page.evaluate("history.pushState({}, '', '/procedures/9')")
    # Calling the API never throws, whatever the mode.
    page.evaluate("penchant.track('click', 'doctor', 1)")
    page.clock.run_for(10 * WAIT_MS)
    page.evaluate("dispatchEvent(new Event('pagehide'))")
    if tracked:
        site.recorder.wait_for(1)
        assert sends(page) >= 1
        assert {e["interaction_type"] for e in site.recorder.events()} == {
            "click",
            "search",
            "view",
        }
    else:
        assert sends(page) == 0
    assert page.evaluate("document.cookie") == ""
    page.close(run_before_unload=True)
    if not tracked:
        assert site.recorder.beacons == []


def test_prerendered_page_waits_until_it_is_shown(page: Page, site: Site) -> None:
    page.add_init_script(
        "window.__prerendering = true;"
        "Object.defineProperty(Document.prototype, 'prerendering',"
        " {get: () => window.__prerendering});"
    )
    open_page(page, site, stub="1")
    page.evaluate("penchant.track('click', 'doctor', 2)")
    page.clock.run_for(10 * WAIT_MS)
    page.evaluate("dispatchEvent(new Event('pagehide'))")
    assert sends(page) == 0
    page.evaluate(
        "window.__prerendering = false; document.dispatchEvent(new Event('prerenderingchange'))"
    )
    (beacon,) = site.recorder.wait_for(1)
    assert [(e["target_type"], e["target_id"]) for e in beacon.body["events"]] == [
        ("package", 7),
        ("doctor", 2),
    ]


def test_page_restored_from_back_forward_cache_sends_a_view(page: Page, site: Site) -> None:
    open_page(page, site, clock=False)
    page.evaluate(
        "window.__restored = 0; addEventListener('pageshow', (e) => {"
        " if (e.persisted) window.__restored++; })"
    )
    page.click("#leave")
    page.wait_for_url("**/other")
    (click,) = site.recorder.wait_for(1)
    assert click.body["events"][0]["target_id"] == 8
    page.go_back(wait_until="commit")
    page.wait_for_function("window.__restored === 1", timeout=10_000)
    beacons = site.recorder.wait_for(2)
    (view,) = beacons[1].body["events"]
    assert (view["interaction_type"], view["target_type"], view["path"]) == (
        "view",
        "page",
        "/page",
    )


def test_failed_send_is_retried_once_then_dropped(page: Page, site: Site) -> None:
    open_page(page, site, prefix="/failing")
    page.click("#procedure")
    settle(page)
    (first,) = site.recorder.wait_for(1)
    assert first.path == "/failing/track-interaction"
    # The retry timer is set once the 503 has come back; advance until it fires.
    deadline = time.monotonic() + 10
    while len(site.recorder.beacons) < 2 and time.monotonic() < deadline:
        page.clock.run_for(1000)
        page.wait_for_timeout(50)
    retry = site.recorder.wait_for(2)[1]
    assert retry.body == first.body  # same event ids: stored once if both landed
    # However long the page stays open, there is no third try.
    for _ in range(5):
        page.clock.run_for(60_000)
        page.wait_for_timeout(50)
    assert sends(page) == 2
    assert len(site.recorder.beacons) == 2


# Records the listeners, timers and layout reads that come from the tracker's own
# code (the stack names its URL), whatever else the page or the driver does.
COST_SPY = """
window.__listeners = [];
window.__timers = 0;
window.__layout = 0;
const fromTracker = () => /\\/tracker\\.js/.test(new Error().stack);
const add = EventTarget.prototype.addEventListener;
EventTarget.prototype.addEventListener = function (type, fn, options) {
  if (fromTracker()) {
    const who = this === window ? 'window' : this === document ? 'document' : 'element';
    window.__listeners.push(who + ':' + type);
  }
  return add.call(this, type, fn, options);
};
for (const name of ['setTimeout', 'setInterval', 'requestAnimationFrame', 'requestIdleCallback']) {
  const real = window[name];
  window[name] = function () {
    if (fromTracker()) window.__timers++;
    return real.apply(this, arguments);
  };
}
const count = () => { if (fromTracker()) window.__layout++; };
for (const [proto, names] of [
  [Element.prototype, ['clientWidth', 'clientHeight', 'scrollTop', 'scrollHeight']],
  [HTMLElement.prototype, ['offsetWidth', 'offsetHeight', 'offsetTop', 'offsetLeft']],
]) {
  for (const name of names) {
    const d = Object.getOwnPropertyDescriptor(proto, name);
    Object.defineProperty(proto, name, {
      get() { count(); return d.get.call(this); }, configurable: true,
    });
  }
}
const rect = Element.prototype.getBoundingClientRect;
Element.prototype.getBoundingClientRect = function () { count(); return rect.call(this); };
const style = window.getComputedStyle;
window.getComputedStyle = function () { count(); return style.apply(this, arguments); };
"""


def test_fixed_listeners_no_idle_timers_no_layout_reads(page: Page, site: Site) -> None:
    page.add_init_script(COST_SPY)
    open_page(page, site, clock=False, cards="200")
    listeners = page.evaluate("window.__listeners")
    assert sorted(listeners) == sorted(
        [
            "document:click",
            "document:submit",
            "document:visibilitychange",
            "document:prerenderingchange",
            "window:popstate",
            "window:pageshow",
            "window:pagehide",
        ]
    ), "listeners do not depend on the number of elements"
    assert page.evaluate("window.__timers") == 0, "a timer while idle"
    page.click(".doctor >> nth=150")
    timers_after_click = page.evaluate("window.__timers")
    site.recorder.wait_for(1)
    assert timers_after_click == 1  # the one debounce timer, only because an event waits
    assert page.evaluate("window.__layout") == 0
    assert page.evaluate("window.__listeners.length") == len(listeners)
    assert page.evaluate("window.__timers") == 1
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0


def test_bundle_is_revalidated_by_etag(page: Page, site: Site) -> None:
    responses: list[tuple[int, dict[str, str]]] = []
    page.on(
        "response",
        lambda r: responses.append((r.status, r.headers)) if "tracker.js" in r.url else None,
    )
    open_page(page, site, clock=False)
    (status, headers), *_ = responses
    assert status == 200
    assert headers["content-encoding"] == "gzip"
    assert "immutable" in headers["cache-control"]
    etag = headers["etag"]
    request = page.request.get(
        site.url("/personalization/tracker.js"),
        headers={"If-None-Match": etag, "Accept-Encoding": "gzip"},
    )
    assert request.status == 304
