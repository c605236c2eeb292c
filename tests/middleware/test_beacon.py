"""The beacon endpoint through both adapters: formats, validation, limits, policy drops."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.harness import BEACON, Client, beacon_body, flushed_rows


def event(
    kind: str = "click", target: str = "procedure", target_id: Any = 1, **extra: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "interaction_type": kind,
        "target_type": target,
        "target_id": target_id,
        "event_id": uuid.uuid4().hex,
        "path": "/",
    }
    out.update(extra)
    return out


def test_batch_as_text_plain_is_stored(site: Client, sqlite_url: str) -> None:
    reply = site.beacon(event(target_id=2), event("click", "doctor", 1))
    assert reply.status == 202
    assert reply.json() == {"accepted": 2, "rejected": []}
    clicks = flushed_rows(site, sqlite_url, "click")
    assert sorted((c["target_type"], c["target_id"]) for c in clicks) == [
        ("doctor", 1),
        ("procedure", 2),
    ]
    # The beacon's visitor is the page's visitor: derived from the request, not the body.
    views = flushed_rows(site, sqlite_url, "view")
    assert {c["user_id"] for c in clicks} == {views[0]["user_id"]}


def test_single_event_as_json_with_its_token(site: Client, sqlite_url: str) -> None:
    token = site.token()
    body = json.dumps({**event(target_id=4), "token": token})
    reply = site.post(BEACON, body=body, content_type="application/json")
    assert reply.status == 202
    assert [c["target_id"] for c in flushed_rows(site, sqlite_url, "click")] == [4]


def test_spa_view_maps_path_and_search_keeps_no_text(site: Client, sqlite_url: str) -> None:
    reply = site.beacon(
        event("view", "page", None, path="/procedures/5?ref=x"),
        event("view", "page", None, path="/about"),
        event("search", "category", None, metadata={"query": "botox near me"}),
    )
    assert reply.json()["accepted"] == 3
    stored = flushed_rows(site, sqlite_url)
    spa = [(r["target_type"], r["target_id"]) for r in stored if r["interaction_type"] == "view"]
    assert ("procedure", 5) in spa
    about = [r for r in stored if r["extra_data"] and "/about" in r["extra_data"]]
    assert json.loads(about[0]["extra_data"]) == {"path": "/about"}
    (search,) = [r for r in stored if r["interaction_type"] == "search"]
    assert "botox" not in search["extra_data"]
    assert json.loads(search["extra_data"])["categories"] == [1]


def test_rejected_events_are_reported_by_index(site: Client, sqlite_url: str) -> None:
    reply = site.beacon(
        event(target_id=1),
        event("teleport"),
        event(target_id="3"),
        event(target_id=None),
        event(metadata={"nested": {"a": 1}}),
        event(event_id="not-hex"),
    )
    assert reply.status == 202
    body = reply.json()
    assert body["accepted"] == 1
    reasons = {r["index"]: r["reason"] for r in body["rejected"]}
    assert sorted(reasons) == [1, 2, 3, 4, 5]
    assert reasons[1].startswith("interaction_type")
    assert reasons[2].startswith("target_id")
    assert reasons[3].startswith("target_id")
    assert reasons[4].startswith("metadata.nested")
    assert reasons[5].startswith("event_id")
    assert len(flushed_rows(site, sqlite_url, "click")) == 1
    assert site.penchant.health()["dropped"]["invalid"] == 5  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("", "body"),
        ("{not json", "body"),
        ("[1, 2]", "body"),
        ('{"events": "x"}', "events"),
        ('{"interaction_type": "click", "target_type": "procedure"}', "target_id"),
        ('{"interaction_type": "click", "target_type": "moon", "target_id": 1}', "target_type"),
        ('{"token": 5, "events": []}', "token"),
        ('{"events": [], "extra": 1}', "body"),
        ('{"interaction_type": "view", "target_type": "page", "metadata": {"x": NaN}}', "body"),
    ],
)
def test_malformed_bodies_get_400_naming_the_problem(site: Client, body: str, field: str) -> None:
    reply = site.post(BEACON, body=body, content_type="text/plain")
    assert reply.status == 400
    assert reply.json()["error"].startswith(field)


def test_wrong_content_type_is_refused(site: Client) -> None:
    reply = site.post(BEACON, body=beacon_body(None, event()), content_type="multipart/form-data")
    assert reply.status == 415


def test_body_over_the_cap_is_413(site: Client, sqlite_url: str) -> None:
    big = beacon_body(site.token(), *[event(metadata={"k": "x" * 200}) for _ in range(45)])
    assert len(big) > 8192
    reply = site.post(BEACON, body=big, content_type="text/plain")
    assert reply.status == 413
    assert flushed_rows(site, sqlite_url, "click") == []


def test_policy_drops_answer_202_and_store_nothing(site: Client, sqlite_url: str) -> None:
    token = site.token()
    forged = site.beacon(event(), token="forged." + token[7:])
    cross = site.beacon(event(), token=token, headers={"Sec-Fetch-Site": "cross-site"})
    foreign = site.beacon(event(), token=token, headers={"Origin": "https://evil.example"})
    missing = site.beacon(event(), token="")
    bot = site.beacon(event(), token=token, headers={"User-Agent": "Googlebot/2.1"})
    opted = site.beacon(event(), token=token, headers={"Sec-GPC": "1"})
    for reply in (forged, cross, foreign, missing, bot, opted):
        assert reply.status == 202
        assert reply.json() == {"accepted": 1, "rejected": []}
    assert flushed_rows(site, sqlite_url, "click") == []
    dropped = site.penchant.health()["dropped"]
    assert dropped["forged"] == 2  # type: ignore[index]
    assert dropped["cross_site"] == 2  # type: ignore[index]
    assert dropped["bot"] == 1  # type: ignore[index]
    assert dropped["consent"] == 1  # type: ignore[index]


def test_same_origin_requests_are_accepted(site: Client, sqlite_url: str) -> None:
    token = site.token()
    site.beacon(event(target_id=1), token=token, headers={"Sec-Fetch-Site": "same-origin"})
    site.beacon(event(target_id=2), token=token, headers={"Origin": site.origin})
    site.beacon(
        event(target_id=3), token=token, headers={"Origin": "http://localhost", "Host": "localhost"}
    )
    assert sorted(c["target_id"] for c in flushed_rows(site, sqlite_url, "click")) == [1, 2, 3]


def test_a_token_of_another_visitor_is_forged(site: Client, sqlite_url: str) -> None:
    other = site.token(headers={"User-Agent": "Mozilla/5.0 (Macintosh) Safari/605.1.15"})
    reply = site.beacon(event(), token=other)
    assert reply.status == 202
    assert flushed_rows(site, sqlite_url, "click") == []
    assert site.penchant.health()["dropped"]["forged"] == 1  # type: ignore[index]


def test_token_not_required_when_turned_off(
    host: str, sqlite_url: str, open_site: Callable[..., Client]
) -> None:
    site = open_site(host, sqlite_url, require_token=False)
    reply = site.post(BEACON, body=json.dumps(event(target_id=6)), content_type="text/plain")
    assert reply.status == 202
    assert [c["target_id"] for c in flushed_rows(site, sqlite_url, "click")] == [6]


def test_replayed_beacon_is_stored_once(site: Client, sqlite_url: str) -> None:
    token = site.token()
    same = event(target_id=2)
    site.beacon(same, token=token)
    site.beacon(same, token=token)
    assert len(flushed_rows(site, sqlite_url, "click")) == 1


def test_visitor_rate_limit(host: str, sqlite_url: str, open_site: Callable[..., Client]) -> None:
    site = open_site(host, sqlite_url, visitor_rate_limit=3)
    token = site.token()
    first = site.beacon(*[event(target_id=i) for i in range(1, 3)], token=token)
    second = site.beacon(*[event(target_id=i) for i in range(3, 6)], token=token)
    assert first.status == second.status == 202
    assert len(flushed_rows(site, sqlite_url, "click")) == 3
    assert site.penchant.health()["dropped"]["rate_limited"] == 2  # type: ignore[index]


def test_form_submit_keeps_no_field_value(site: Client, sqlite_url: str) -> None:
    site.beacon(
        event("form_submit", "procedure", 2, metadata={"form": "consultation"}),
        event("form_submit", "page", None, path="/contact", metadata={"form": "jane@example.com"}),
    )
    stored = flushed_rows(site, sqlite_url, "form_submit")
    assert len(stored) == 2
    assert all("jane@example.com" not in (r["extra_data"] or "") for r in stored)


def test_server_side_track_from_a_view(site: Client, sqlite_url: str) -> None:
    reply = site.post("/form", body="name=Jane", content_type="application/x-www-form-urlencoded")
    assert reply.status == 200
    assert "tracked True" in reply.text
    (stored,) = flushed_rows(site, sqlite_url, "form_submit")
    assert (stored["target_type"], stored["target_id"]) == ("procedure", 1)
    assert json.loads(stored["extra_data"]) == {"form": "consultation"}
