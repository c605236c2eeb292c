"""A page view leaves the request as soon as the response starts.

The request thread only appends the request's facts and the time; the writer's
thread works out the visitor (fingerprint, crawler check, session) and queues
the event. These tests hold that split to what a site relies on: the work is
really off the request, a visitor's next page still sees their own page view,
nothing is lost or written twice, and what does not fit is counted.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from penchant import Penchant
from penchant.engine import fingerprint as fingerprints
from penchant.middleware.core import Core
from penchant.middleware.facts import RequestFacts
from penchant.middleware.personalization import Personalization
from tests.harness import BROWSER, PLAIN, Client, all_rows, make_penchant


def _wait_for_rows(url: str, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = all_rows(url)
        if len(found) >= n or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def test_the_visitor_is_worked_out_on_the_writers_thread(
    host: str,
    sqlite_url: str,
    open_site: Callable[..., Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[str] = []
    keyed = fingerprints.fingerprint

    def watched(*parts: Any, **kwargs: Any) -> str:
        threads.append(threading.current_thread().name)
        return keyed(*parts, **kwargs)

    monkeypatch.setattr(fingerprints, "fingerprint", watched)
    site = open_site(host, sqlite_url, flush_interval=0.05)
    assert site.get("/plain").text == PLAIN
    # Not flushed by the test: the writer's own thread picks the view up.
    (view,) = _wait_for_rows(sqlite_url, 1)
    assert view["interaction_type"] == "view"
    assert len(view["user_id"]) == 32
    assert threads == ["penchant-writer"]


def test_a_procedure_page_moves_the_next_page_before_anything_is_written(
    host: str, sqlite_url: str, open_site: Callable[..., Client]
) -> None:
    site = open_site(host, sqlite_url, flush_interval=60.0, batch_size=1000, strategy="original")
    before = site.get("/").text
    assert before.index("Botox") < before.index("Tummy tuck")
    assert site.get("/procedures/5").status == 200  # Liposuction, in Body
    assert all_rows(sqlite_url) == []
    after = site.get("/").text
    assert after.index("Tummy tuck") < after.index("Botox")
    assert "Because you like Body" in after
    site.penchant.flush(timeout=5.0)
    stored = [(r["target_type"], r["target_id"]) for r in all_rows(sqlite_url)]
    assert stored == [("page", None), ("procedure", 5), ("page", None)]


def test_page_views_beyond_the_queue_are_counted_not_kept(
    host: str, sqlite_url: str, open_site: Callable[..., Client]
) -> None:
    # The hand-over holds half the queue's size of each kind of page view.
    site = open_site(host, sqlite_url, flush_interval=60.0, batch_size=1000, queue_size=4)
    for _ in range(3):
        assert site.get("/plain").text == PLAIN
    health = site.penchant.health()
    assert health["dropped"]["queue_full"] == 1  # type: ignore[index]
    assert health["accepted"] == 3
    assert site.penchant.flush(timeout=5.0)
    assert len(all_rows(sqlite_url)) == 2


def test_a_page_view_keeps_only_what_its_event_needs(
    host: str, sqlite_url: str, open_site: Callable[..., Client]
) -> None:
    # Neither the request's facts nor its personalization object wait for the writer.
    site = open_site(host, sqlite_url, flush_interval=60.0, batch_size=1000)
    assert site.get("/plain").text == PLAIN
    ((waiting, _),) = site.penchant.handed_over()
    assert not any(isinstance(part, RequestFacts | Personalization) for part in waiting)
    assert site.penchant.flush(timeout=5.0)
    (view,) = all_rows(sqlite_url)
    assert len(view["user_id"]) == 32


def test_a_failure_off_the_request_is_logged_and_counted(
    host: str,
    sqlite_url: str,
    open_site: Callable[..., Client],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("broken on purpose")

    site = open_site(host, sqlite_url, flush_interval=60.0)
    # The session is worked out off the request, when the view becomes an event.
    monkeypatch.setattr(site.penchant, "session_id", broken)
    assert site.get("/plain").text == PLAIN
    assert site.core.stats()["middleware_errors"] == 0  # the request saw nothing of it
    assert site.penchant.flush(timeout=5.0)
    assert all_rows(sqlite_url) == []
    assert "page view recording failed" in caplog.text
    assert "broken on purpose" in caplog.text
    assert site.core.stats()["middleware_errors"] == 1
    # The next page goes on as ever.
    assert site.get("/plain").text == PLAIN


def test_a_view_turned_into_an_event_late_does_not_move_the_session_back(
    tmp_path: Path,
) -> None:
    penchant = make_penchant(f"sqlite:///{tmp_path / 's.db'}", session_timeout=60)
    try:
        start = datetime(2026, 3, 1, 12, 0, 0)
        first = penchant.session_id("visitor", start + timedelta(seconds=50))
        # A page view from 40 s earlier, handed over and made an event afterwards.
        assert penchant.session_id("visitor", start + timedelta(seconds=10)) == first
        # 60 s after the latest activity, not after the late one: the same session.
        assert penchant.session_id("visitor", start + timedelta(seconds=105)) == first
    finally:
        penchant.close(timeout=5.0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_forked_worker_does_not_write_the_parents_page_views(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fork.db'}"
    penchant = make_penchant(url, flush_interval=60.0, batch_size=1000)
    try:
        penchant.defer(lambda: None)
        assert penchant.health()["accepted"] == 0  # a no-op drained; nothing counted
        marker = tmp_path / "child"
        penchant.defer(marker.write_text, "parent's work ran in the child")
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports by its exit code
            try:
                penchant.flush(timeout=5.0)
                os._exit(0)
            except BaseException:
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert not marker.exists()
        penchant.flush(timeout=5.0)
        assert marker.read_text() == "parent's work ran in the child"
    finally:
        penchant.close(timeout=5.0)


@pytest.fixture(scope="module")
def rules_core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Core]:
    """One core for the page-view rules; its writer waits an hour, so what a
    response hands over stays until the test looks at it."""
    url = f"sqlite:///{tmp_path_factory.mktemp('rules') / 'rules.db'}"
    penchant = make_penchant(url, flush_interval=3600.0)
    yield Core(penchant)
    penchant.close(timeout=5.0)


HTML = "text/html; charset=utf-8"
NAVIGATE = {"sec_fetch_dest": "document", "sec_fetch_mode": "navigate"}
CRAWLER = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
# What a response hands over: nothing, or which half of the page view and whether a
# read of a profile takes it first (a path that may have a catalog target).
NOTHING: None = None
PLAIN_PAGE = ("record_plain", False)
PLAIN_TARGET = ("record_plain", True)
WORKED_OUT_PAGE = ("record_deferred", False)
WORKED_OUT_TARGET = ("record_deferred", True)


@pytest.mark.parametrize(
    ("method", "status", "content_type", "path", "headers", "handed"),
    [
        pytest.param("GET", 200, HTML, "/", {}, PLAIN_PAGE, id="html-page"),
        pytest.param("GET", 200, HTML, "/procedures/5", {}, PLAIN_TARGET, id="catalog-page"),
        # starts like a catalog page: its profile may move, though no pattern matches
        pytest.param("GET", 200, HTML, "/procedures/x", {}, PLAIN_TARGET, id="catalog-prefix"),
        pytest.param("GET", 200, "TEXT/HTML", "/", {}, PLAIN_PAGE, id="upper-case-type"),
        pytest.param("GET", 204, HTML, "/", {}, PLAIN_PAGE, id="any-2xx"),
        pytest.param("POST", 200, HTML, "/", {}, NOTHING, id="post"),
        pytest.param("GET", 302, HTML, "/", {}, NOTHING, id="redirect"),
        pytest.param("GET", 404, HTML, "/procedures/5", {}, NOTHING, id="not-found"),
        pytest.param("GET", 200, "application/json", "/", {}, NOTHING, id="json"),
        pytest.param("GET", 200, "", "/", {}, NOTHING, id="no-type"),
        pytest.param("GET", 200, HTML, "/static/app.css", {}, NOTHING, id="static"),
        pytest.param("GET", 200, HTML, "/personalization", {}, NOTHING, id="own-prefix"),
        pytest.param("GET", 200, HTML, "/personalization/x", {}, NOTHING, id="own-route"),
        pytest.param("GET", 200, HTML, "/", NAVIGATE, PLAIN_PAGE, id="navigation"),
        pytest.param(
            "GET",
            200,
            HTML,
            "/",
            {**NAVIGATE, "sec_fetch_site": "cross-site"},
            NOTHING,
            id="another-sites-script",
        ),
        pytest.param(
            "GET",
            200,
            HTML,
            "/",
            {"sec_fetch_site": "cross-site", "sec_fetch_mode": "navigate", "sec_fetch_user": "?1"},
            PLAIN_PAGE,
            id="click-from-another-site",
        ),
        pytest.param(
            "GET",
            200,
            HTML,
            "/",
            {"sec_fetch_site": "same-site", "sec_fetch_mode": "navigate"},
            NOTHING,
            id="sibling-subdomain-script",
        ),
        pytest.param(
            "GET",
            200,
            HTML,
            "/",
            {"sec_fetch_site": "same-site", "sec_fetch_user": "?1"},
            PLAIN_PAGE,
            id="click-from-sibling-subdomain",
        ),
        pytest.param(
            "GET",
            200,
            HTML,
            "/",
            {"sec_fetch_site": "same-origin", "sec_fetch_mode": "navigate"},
            PLAIN_PAGE,
            id="own-link",
        ),
        pytest.param(
            "GET",
            200,
            HTML,
            "/",
            {"sec_fetch_site": "none", "sec_fetch_mode": "navigate", "sec_fetch_user": "?1"},
            PLAIN_PAGE,
            id="typed-address",
        ),
        pytest.param(
            "GET",
            200,
            HTML,
            "/",
            {"sec_fetch_site": "cross-site", "sec_fetch_dest": "image", "sec_fetch_user": "?1"},
            NOTHING,
            id="image-after-a-click",
        ),
        pytest.param("GET", 200, HTML, "/", {"sec_fetch_dest": "image"}, NOTHING, id="image"),
        pytest.param("GET", 200, HTML, "/", {"sec_fetch_mode": "cors"}, NOTHING, id="fetch"),
        pytest.param("GET", 200, HTML, "/", {"sec_purpose": "prefetch"}, NOTHING, id="prefetch"),
        pytest.param("GET", 200, HTML, "/", {"purpose": "prerender"}, NOTHING, id="prerender"),
        pytest.param("GET", 200, HTML, "/", {"sec_purpose": "other"}, PLAIN_PAGE, id="purpose"),
        pytest.param("GET", 200, HTML, "/", {"cookie": "theme=dark"}, PLAIN_PAGE, id="host-cookie"),
        # A signal or one of penchant's cookies: the visitor is worked out on the request.
        pytest.param("GET", 200, HTML, "/", {"sec_gpc": "1"}, NOTHING, id="gpc"),
        pytest.param("GET", 200, HTML, "/", {"dnt": "1"}, NOTHING, id="dnt"),
        pytest.param("GET", 200, HTML, "/", {"sec_gpc": "0"}, WORKED_OUT_PAGE, id="gpc-off"),
        pytest.param(
            "GET", 200, HTML, "/procedures/5", {"dnt": "0"}, WORKED_OUT_TARGET, id="dnt-off"
        ),
        pytest.param(
            "GET", 200, HTML, "/", {"cookie": "penchant_optout=1"}, NOTHING, id="opted-out"
        ),
        # opt-out mode: a consent cookie, even one that does not verify, is not needed
        pytest.param(
            "GET",
            200,
            HTML,
            "/procedures/5",
            {"cookie": "a=b; penchant_consent=x"},
            WORKED_OUT_TARGET,
            id="consent-cookie",
        ),
        pytest.param("POST", 200, HTML, "/", {"sec_gpc": "0"}, NOTHING, id="signal-on-a-post"),
        # a crawler: checked off the request, or on it when the request is worked out there
        pytest.param(
            "GET", 200, HTML, "/", {"user_agent": CRAWLER}, PLAIN_PAGE, id="crawler-checked-later"
        ),
        pytest.param(
            "GET", 200, HTML, "/", {"user_agent": CRAWLER, "dnt": "0"}, NOTHING, id="crawler-now"
        ),
    ],
)
def test_the_response_start_hands_over_the_page_views_the_rules_name(
    rules_core: Core,
    method: str,
    status: int,
    content_type: str,
    path: str,
    headers: dict[str, str],
    handed: tuple[str, bool] | None,
) -> None:
    """on_response_start() checks the page-view rules inline (it runs for every
    response): a GET answered 2xx with HTML, not static, not penchant's own, not
    a prefetch, a navigation of the visitor's own, by a visitor who may be tracked."""
    penchant = rules_core.penchant
    assert penchant.handed_over() == []
    facts = RequestFacts(method, path, **{"user_agent": BROWSER, "peer": "203.0.113.9", **headers})
    try:
        rules_core.on_response_start(Personalization(rules_core, facts), status, content_type)
        waiting = [
            (work[0].__name__, before_reads) for work, before_reads in penchant.handed_over()
        ]
        assert waiting == ([] if handed is None else [handed])
    finally:
        penchant.settle()


def test_a_drain_calls_what_was_waiting_and_returns(tmp_path: Path) -> None:
    """Work handed over while a drain runs waits for the next one. A drain that
    ran until nothing was left never ended under a flood (every request hands
    over a view faster than the writer's thread turns one into an event), and
    the writer, whose thread it holds, wrote nothing: 200,000 hostile page views
    in bench.memory stored 0."""
    penchant = Penchant(
        database_url=f"sqlite:///{tmp_path / 'drain.db'}",
        secret_key="deferred-views-tests",
        flush_interval=60.0,
    )
    calls = 0

    def again() -> None:  # each call hands over one more, as a flood does
        nonlocal calls
        calls += 1
        if calls < 1000:
            penchant.defer(again)

    try:
        penchant.defer(again)
        penchant.defer(again)
        penchant.settle()
        assert 2 <= calls < 10
    finally:
        penchant.close(timeout=5.0)
