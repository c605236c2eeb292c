"""Page views: recorded exactly for GET 2xx HTML answers of real host apps, both adapters."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from penchant.middleware.facts import RequestFacts
from tests.harness import PLAIN, STATIC, Boom, Client, flushed_rows


def test_home_and_procedure_pages_are_recorded(site: Client, sqlite_url: str) -> None:
    assert site.get("/?utm_source=mail&email=a@b.example").status == 200
    assert site.get("/procedures/3").status == 200
    views = sorted(flushed_rows(site, sqlite_url, "view"), key=lambda v: str(v["target_type"]))
    assert [(v["target_type"], v["target_id"]) for v in views] == [
        ("page", None),
        ("procedure", 3),
    ]
    home = json.loads(str(views[0]["extra_data"]))
    # The path only: the query string is never stored.
    assert home == {"path": "/"}
    assert views[1]["extra_data"] is None
    assert views[0]["user_id"] == views[1]["user_id"]
    assert views[0]["session_id"] == views[1]["session_id"]
    assert len(str(views[0]["user_id"])) == 32


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("HEAD", "/", {}),
        ("GET", "/moved", {}),
        ("GET", "/missing", {}),
        ("GET", "/api/data", {}),
        ("GET", "/static/app.css", {}),
        ("GET", "/", {"Sec-Purpose": "prefetch"}),
        ("GET", "/", {"Sec-Purpose": "prefetch;prerender"}),
        ("GET", "/", {"Purpose": "prefetch"}),
        ("GET", "/", {"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1)"}),
        ("GET", "/", {"User-Agent": "curl/8.5.0"}),
        ("GET", "/personalization/privacy", {}),
        ("POST", "/form", {"DNT": "1"}),
    ],
)
def test_requests_that_are_not_page_views(
    site: Client, sqlite_url: str, method: str, path: str, headers: dict[str, str]
) -> None:
    reply = site.request(method, path, headers=headers)
    assert reply.status < 500
    assert flushed_rows(site, sqlite_url, "view") == []


def test_a_plain_page_is_recorded_as_a_page_with_its_path(site: Client, sqlite_url: str) -> None:
    reply = site.get("/plain")
    assert reply.text == PLAIN
    (view,) = flushed_rows(site, sqlite_url, "view")
    assert (view["target_type"], view["target_id"]) == ("page", None)
    assert json.loads(str(view["extra_data"])) == {"path": "/plain"}


def test_host_responses_pass_through_unchanged(site: Client) -> None:
    stream = site.get("/stream")
    assert stream.status == 200
    assert stream.text == "".join(f"<p>chunk {i}</p>" for i in range(3))
    css = site.get("/static/app.css")
    assert css.text == STATIC
    assert css.headers["content-type"].startswith("text/css")
    moved = site.get("/moved")
    assert moved.status == 302
    assert moved.headers["location"].endswith("/")
    assert site.get("/api/data").json() == {"ok": True}
    # A page view adds nothing to the host's response headers.
    assert site.get("/plain").set_cookies == []


def test_the_views_own_exception_propagates_unchanged(site: Client) -> None:
    with pytest.raises(Boom, match="the view failed"):
        site.get("/boom")


def test_a_search_engine_crawling_leaves_nothing(site: Client, sqlite_url: str) -> None:
    for path in ("/", "/procedures/1", "/procedures/2"):
        site.get(path, headers={"User-Agent": "Mozilla/5.0 (compatible; bingbot/2.0)"})
    assert flushed_rows(site, sqlite_url, "view") == []


def test_url_patterns_map_paths_to_targets(
    host: str, sqlite_url: str, open_site: Callable[..., Client]
) -> None:
    site = open_site(host, sqlite_url, url_patterns={"/procedures/{id}": "doctor"})
    site.get("/procedures/2")
    site.get("/procedures/2/")
    views = flushed_rows(site, sqlite_url, "view")
    assert [(v["target_type"], v["target_id"]) for v in views][:1] == [("doctor", 2)]


def test_a_path_with_nul_and_odd_characters_is_stored_cleanly(
    site: Client, sqlite_url: str
) -> None:
    facts = RequestFacts("GET", "/a\x00b\ud800c", user_agent="Mozilla/5.0 Firefox/125.0")
    core = site.core
    assert core.record_view(facts, core.identify(facts))
    (view,) = flushed_rows(site, sqlite_url, "view")
    assert json.loads(str(view["extra_data"])) == {"path": "/ab?c"}
