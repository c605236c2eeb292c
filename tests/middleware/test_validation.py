"""Beacon body and event checks, with plain values (penchant.engine.validation)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from penchant.engine.validation import (
    MAX_EVENTS,
    BodyError,
    EventInput,
    InvalidEvent,
    clean_path,
    parse_beacon,
    validate_event,
    validate_metadata,
)

GOOD: dict[str, Any] = {
    "interaction_type": "click",
    "target_type": "procedure",
    "target_id": 3,
    "event_id": "0123456789abcdef0123456789abcdef",
    "path": "/procedures/3",
    "metadata": {"source": "rec", "position": 2, "list": "procedures"},
}


def test_a_good_event() -> None:
    event = validate_event(GOOD)
    assert event == EventInput(
        "click",
        "procedure",
        3,
        "0123456789abcdef0123456789abcdef",
        "/procedures/3",
        {"source": "rec", "position": 2, "list": "procedures"},
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"interaction_type": "hover"}, "interaction_type"),
        ({"interaction_type": None}, "interaction_type"),
        ({"target_type": "user"}, "target_type"),
        ({"target_id": True}, "target_id"),
        ({"target_id": 1.5}, "target_id"),
        ({"target_id": -1}, "target_id"),
        ({"target_id": 2**31}, "target_id"),
        ({"target_id": None}, "target_id"),
        ({"event_id": "ABCDEF0123456789ABCDEF0123456789"}, "event_id"),
        ({"event_id": 12}, "event_id"),
        ({"path": "procedures"}, "path"),
        ({"path": 5}, "path"),
        ({"path": "/" + "a" * 600}, "path"),
        ({"path": "/a\x00b"}, "path"),
        ({"metadata": []}, "metadata"),
        ({"metadata": {"a": [1]}}, "metadata.a"),
        ({"metadata": {"a": float("inf")}}, "metadata.a"),
        ({"metadata": {"a": 2**60}}, "metadata.a"),
        ({"metadata": {"a": "\ud800"}}, "metadata.a"),
        ({"metadata": {"a": "x" * 300}}, "metadata.a"),
        ({"metadata": {"bad key": 1}}, "metadata"),
        ({"metadata": {f"k{i}": 1 for i in range(21)}}, "metadata"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_events_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        validate_event({**GOOD, **change})
    assert str(info.value).startswith(field)


def test_paths_lose_query_and_fragment() -> None:
    assert clean_path("/search?q=jane@example.com#top") == "/search"
    assert validate_event({**GOOD, "path": "/a?b=c"}).path == "/a"


def test_search_needs_a_query() -> None:
    search = {"interaction_type": "search", "target_type": "category", "target_id": None}
    with pytest.raises(InvalidEvent, match=r"^metadata\.query"):
        validate_event(search)
    assert validate_event({**search, "metadata": {"query": "botox"}}).metadata == {"query": "botox"}


def test_page_and_category_may_have_no_id() -> None:
    assert validate_event({"interaction_type": "view", "target_type": "page"}).target_id is None


def test_metadata_size_limit() -> None:
    metadata = {f"k{i}": "x" * 200 for i in range(6)}
    with pytest.raises(InvalidEvent, match="larger than 1024 bytes"):
        validate_metadata(metadata)
    assert validate_metadata(metadata, max_bytes=4096) == metadata


def test_batch_keeps_good_events_and_reasons_by_index() -> None:
    body = json.dumps({"token": "t", "events": [GOOD, {"interaction_type": "x"}, GOOD]}).encode()
    beacon = parse_beacon(body)
    assert beacon.token == "t"
    assert beacon.batch
    assert [i for i, _ in beacon.events] == [0, 2]
    assert [i for i, _ in beacon.rejected] == [1]
    assert beacon.total == 3


def test_single_event_body() -> None:
    beacon = parse_beacon(json.dumps({**GOOD, "token": "abc"}).encode())
    assert not beacon.batch
    assert beacon.token == "abc"
    assert len(beacon.events) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "body: empty"),
        (b"\xff\xfe", "body: not valid JSON"),
        (b"[" * 5000 + b"]" * 5000, "body: not valid JSON"),
        (b'{"a": Infinity}', "body: not valid JSON"),
        (b"42", "body: must be"),
        (b'{"events": {}}', "events: must be a list"),
        (json.dumps({"events": [GOOD] * (MAX_EVENTS + 1)}).encode(), "events: at most"),
        (b'{"token": ["x"], "events": []}', "token"),
        (b'{"interaction_type": "click"}', "target_type"),
    ],
)
def test_unreadable_bodies(body: bytes, message: str) -> None:
    with pytest.raises(BodyError) as info:
        parse_beacon(body)
    assert str(info.value).startswith(message)


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=300))
anything = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(GOOD)) | st.text(max_size=10), anything, max_size=7))
def test_whatever_comes_in_is_either_rejected_or_clean(raw: dict[str, Any]) -> None:
    try:
        event = validate_event(raw)
    except InvalidEvent:
        return
    assert event.interaction_type in {"view", "search", "click", "form_submit"}
    assert event.target_id is None or 0 <= event.target_id < 2**31
    encoded = json.dumps(dict(event.metadata), allow_nan=False)
    assert len(encoded) <= 1024
    assert "\x00" not in encoded
    encoded.encode("utf-8")
