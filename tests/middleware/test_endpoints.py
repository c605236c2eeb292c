"""Penchant's own endpoints through both adapters (the privacy routes have their own tests)."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from tests.harness import BEACON, Client

PREFIX = "/personalization"


def test_recommendations_endpoint(site: Client) -> None:
    reply = site.get(f"{PREFIX}/recommendations/doctors?limit=2")
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    body = reply.json()
    assert body["content_type"] == "doctors"
    assert body["personalized"] is True
    assert [r["type"] for r in body["recommendations"]] == ["doctor", "doctor"]
    assert all(r["reason"]["text"] for r in body["recommendations"])
    full = site.get(f"{PREFIX}/recommendations/procedures").json()
    assert len(full["recommendations"]) == 6  # the original default limit


def test_recommendations_of_an_unknown_type(site: Client) -> None:
    unknown = site.get(f"{PREFIX}/recommendations/spaceships")
    assert unknown.status == 404
    assert "spaceships" in unknown.json()["error"]
    assert "procedures" in unknown.json()["content_types"]


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "101"])
def test_recommendations_with_a_bad_limit(site: Client, limit: str) -> None:
    bad = site.get(f"{PREFIX}/recommendations/categories?limit={limit}")
    assert bad.status == 400
    assert bad.json()["error"].startswith("limit")


def test_tracker_script_with_etag(site: Client) -> None:
    first = site.get(f"{PREFIX}/tracker.js")
    assert first.status == 200
    assert first.headers["content-type"].startswith("application/javascript")
    etag = first.headers["etag"]
    again = site.get(f"{PREFIX}/tracker.js", headers={"If-None-Match": etag})
    assert again.status == 304
    assert again.text == ""


def test_script_tag_in_pages(site: Client) -> None:
    page = site.get("/").text
    assert f'data-endpoint="{PREFIX}/track-interaction"' in page
    assert 'data-off="1"' not in page
    off = site.get("/", headers={"Sec-GPC": "1"}).text
    assert 'data-off="1"' in off


def test_a_wrong_method_is_refused(site: Client) -> None:
    wrong = site.get(BEACON)
    assert wrong.status == 405
    assert "POST" in wrong.headers["allow"]


@pytest.mark.parametrize(
    ("host", "not_found"),
    [
        ("starlette", "Not Found"),
        ("fastapi", '{"detail":"Not Found"}'),
        ("flask", "<h1>Not Found</h1>"),
        ("wsgi", "<p>no route</p>"),
    ],
)
def test_a_path_under_the_prefix_that_penchant_does_not_serve_is_the_hosts(
    site: Client, not_found: str
) -> None:
    reply = site.get(f"{PREFIX}/nothing-here")
    assert reply.status == 404
    # the host's own answer, not one of penchant's (JSON with an "error")
    assert not_found in reply.text and '"error"' not in reply.text


def test_dashboard_and_health_need_credentials(
    host: str, sqlite_url: str, open_site: Callable[..., Client]
) -> None:
    site = open_site(host, sqlite_url, dashboard_user="admin", dashboard_password="pw" * 8)
    site.get("/")
    refused = site.get(f"{PREFIX}/dashboard")
    assert refused.status == 401
    assert refused.headers["www-authenticate"].startswith("Basic")
    assert site.get(f"{PREFIX}/health").status == 401
    auth = {"Authorization": "Basic " + base64.b64encode(b"admin:" + b"pw" * 8).decode()}
    board = site.get(f"{PREFIX}/dashboard", headers=auth)
    assert board.status == 200
    assert board.headers["content-type"].startswith("text/html")
    health = site.get(f"{PREFIX}/health", headers=auth).json()
    assert health["accepted"] >= 1
    assert health["middleware_errors"] == 0
