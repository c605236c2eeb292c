"""Event and beacon checks at their exact limits, with the exact reasons they give."""

from __future__ import annotations

import json
from typing import Any

import pytest

from penchant.engine.validation import (
    BeaconBody,
    BodyError,
    EventInput,
    InvalidEvent,
    clean_path,
    parse_beacon,
    storable_text,
    validate_event,
    validate_metadata,
)

VIEW = {"interaction_type": "view", "target_type": "procedure", "target_id": 7}


def metadata_of(total_bytes: int) -> dict[str, str]:
    """Four string values whose compact JSON is ``total_bytes`` long.

    ``{"a":"…","b":"…","c":"…","d":"…"}`` is 29 characters around the values.
    """
    rest = total_bytes - 29 - 3 * 250
    return {"a": "x" * 250, "b": "x" * 250, "c": "x" * 250, "d": "x" * rest}


def reason(raw: Any, **options: Any) -> str:
    with pytest.raises(InvalidEvent) as info:
        validate_event(raw, **options)
    return str(info.value)


def body_reason(body: bytes, **options: Any) -> str:
    with pytest.raises(BodyError) as info:
        parse_beacon(body, **options)
    return str(info.value)


@pytest.mark.parametrize("target_id", [0, 1, 2**31 - 1])
def test_ids_from_zero_to_the_column_maximum_pass(target_id: int) -> None:
    """Ids 0 through 2**31 - 1 fit the INTEGER column and are kept."""
    assert validate_event({**VIEW, "target_id": target_id}).target_id == target_id


@pytest.mark.parametrize("target_id", [-1, 2**31])
def test_ids_outside_the_column_are_refused(target_id: int) -> None:
    """An id below 0 or above 2**31 - 1 is refused with the range."""
    assert reason({**VIEW, "target_id": target_id}) == (
        "target_id: must be between 0 and 2147483647"
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/a?b#c", "/a"),
        ("/a#frag", "/a"),
        ("/a#b#c", "/a"),
        ("/a?b?c", "/a"),
        ("/a b#c d", "/a b"),
        ("/a#b?c", "/a"),
        ("/", "/"),
    ],
)
def test_path_loses_everything_from_the_first_query_or_fragment_mark(
    raw: str, expected: str
) -> None:
    """A path is cut at its first ``?`` and then its first ``#``."""
    assert clean_path(raw) == expected


@pytest.mark.parametrize(
    ("path", "ok"),
    [("/" + "p" * 511, True), ("/" + "p" * 512, False)],
)
def test_path_of_512_characters_is_the_longest(path: str, ok: bool) -> None:
    """512 characters pass; one more is refused, naming the field and the limit."""
    if ok:
        assert validate_event({**VIEW, "path": path}).path == path
    else:
        assert reason({**VIEW, "path": path}) == "path: longer than 512 characters"


@pytest.mark.parametrize(
    ("value", "ok"),
    [("v" * 256, True), ("v" * 257, False)],
)
def test_metadata_string_of_256_characters_is_the_longest(value: str, ok: bool) -> None:
    """A metadata string may hold 256 characters, not 257."""
    if ok:
        assert validate_metadata({"note": value}) == {"note": value}
    else:
        with pytest.raises(InvalidEvent) as info:
            validate_metadata({"note": value})
        assert str(info.value) == "metadata.note: longer than 256 characters"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a\ud800b", "a?b"),
        ("a\x00b", "ab"),
        ("x" * 600, "x" * 512),
        ("ok", "ok"),
    ],
)
def test_storable_text(value: str, expected: str) -> None:
    """Lone surrogates become ``?``, NUL is dropped, text is cut at 512 characters."""
    assert storable_text(value) == expected


def test_storable_text_with_its_own_limit() -> None:
    """A limit of 3 keeps the first three characters."""
    assert storable_text("ab\ud800cd", 3) == "ab?"


@pytest.mark.parametrize("raw", [[], "view", 3, None])
def test_an_event_that_is_not_an_object(raw: Any) -> None:
    """Anything but an object is refused with the same reason."""
    assert reason(raw) == "event: must be an object"


def test_unknown_field_is_named_up_to_64_characters() -> None:
    """The first unknown field (sorted) is named, cut to 64 characters."""
    long_name = "z" * 64 + "TAIL"
    assert reason({**VIEW, long_name: 1, "zzz~": 2}) == "z" * 64 + ": unknown field"


def test_interaction_type_reason_lists_the_types() -> None:
    """A bad interaction type lists the known ones, sorted, comma-separated."""
    assert reason({**VIEW, "interaction_type": "hover"}) == (
        "interaction_type: must be one of click, form_submit, search, view"
    )


def test_target_type_reason_lists_the_types() -> None:
    """A bad target type lists the known ones, sorted, comma-separated."""
    assert reason({**VIEW, "target_type": "shop"}) == (
        "target_type: must be one of category, doctor, package, page, procedure"
    )


@pytest.mark.parametrize(("keys", "ok"), [(20, True), (21, False)])
def test_metadata_holds_at_most_20_keys(keys: int, ok: bool) -> None:
    """20 keys pass; 21 are refused."""
    metadata = {f"k{i}": i for i in range(keys)}
    if ok:
        assert validate_metadata(metadata) == metadata
    else:
        with pytest.raises(InvalidEvent) as info:
            validate_metadata(metadata)
        assert str(info.value) == "metadata: more than 20 keys"


def test_metadata_key_of_64_characters_passes() -> None:
    """A key of 64 characters is the longest allowed."""
    assert validate_metadata({"k" * 64: 1}) == {"k" * 64: 1}


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("k" * 65, "metadata: bad key '" + "k" * 64 + "'"),
        ("1bad", "metadata: bad key '1bad'"),
        ("sp ace", "metadata: bad key 'sp ace'"),
    ],
)
def test_bad_metadata_key_is_quoted_in_the_reason(key: str, expected: str) -> None:
    """A bad key is quoted in the reason, at most 64 characters of it."""
    with pytest.raises(InvalidEvent) as info:
        validate_metadata({key: 1})
    assert str(info.value) == expected


def test_metadata_scalars_are_kept_as_given() -> None:
    """Booleans, null, integers and floats come back unchanged."""
    metadata = {"yes": True, "no": False, "none": None, "n": -3, "ratio": 0.5}
    assert validate_metadata(metadata) == metadata
    assert validate_metadata(metadata)["none"] is None
    assert validate_metadata(metadata)["yes"] is True


@pytest.mark.parametrize("number", [2**53, -(2**53), 107])
def test_integers_up_to_two_to_the_53_pass(number: int) -> None:
    """Integers whose magnitude is at most 2**53 are exact in JSON and pass."""
    assert validate_metadata({"n": number}) == {"n": number}


@pytest.mark.parametrize("number", [2**53 + 1, -(2**53) - 1])
def test_integers_beyond_two_to_the_53_are_refused(number: int) -> None:
    """Beyond 2**53 a number is refused as out of range."""
    with pytest.raises(InvalidEvent) as info:
        validate_metadata({"n": number})
    assert str(info.value) == "metadata.n: number out of range"


@pytest.mark.parametrize(("size", "ok"), [(1024, True), (1025, False)])
def test_metadata_default_limit_is_1024_bytes(size: int, ok: bool) -> None:
    """Metadata of 1024 bytes passes by default everywhere; 1025 bytes does not."""
    metadata = metadata_of(size)
    assert len(json.dumps(metadata, separators=(",", ":"))) == size
    raw = {**VIEW, "metadata": metadata}
    body = json.dumps(raw).encode()
    batch = json.dumps({"events": [raw]}).encode()
    if ok:
        assert validate_metadata(metadata) == metadata
        assert validate_event(raw).metadata == metadata
        assert parse_beacon(body).events[0][1].metadata == metadata
        assert parse_beacon(batch).rejected == ()
    else:
        message = "metadata: larger than 1024 bytes"
        with pytest.raises(InvalidEvent) as info:
            validate_metadata(metadata)
        assert str(info.value) == message
        assert reason(raw) == message
        assert body_reason(body) == message
        assert parse_beacon(batch).rejected == ((0, message),)


def test_metadata_limit_given_is_applied_at_every_level() -> None:
    """A smaller metadata limit passed in is the one checked, exactly at its edge."""
    # {"a":"xxxxxxxxxxxxxx"} is 6 + 14 + 2 = 22 bytes
    metadata = {"a": "x" * 14}
    raw = {**VIEW, "metadata": metadata}
    assert validate_metadata(metadata, max_bytes=22) == metadata
    assert validate_event(raw, max_metadata_bytes=22).metadata == metadata
    assert reason(raw, max_metadata_bytes=21) == "metadata: larger than 21 bytes"
    assert body_reason(json.dumps(raw).encode(), max_metadata_bytes=21) == (
        "metadata: larger than 21 bytes"
    )
    batch = json.dumps({"events": [raw, raw]}).encode()
    assert parse_beacon(batch, max_metadata_bytes=21).rejected == (
        (0, "metadata: larger than 21 bytes"),
        (1, "metadata: larger than 21 bytes"),
    )


@pytest.mark.parametrize(("length", "ok"), [(512, True), (513, False)])
def test_token_of_512_characters_is_the_longest(length: int, ok: bool) -> None:
    """A page token may be 512 characters long, not 513."""
    body = json.dumps({**VIEW, "token": "t" * length}).encode()
    if ok:
        assert parse_beacon(body).token == "t" * length
    else:
        assert body_reason(body) == "token: must be a string"


def test_single_event_body_is_event_zero_of_a_non_batch() -> None:
    """A single event parses to index 0, nothing rejected, ``batch`` false."""
    parsed = parse_beacon(json.dumps({**VIEW, "token": "tok"}).encode())
    assert parsed == BeaconBody("tok", ((0, EventInput("view", "procedure", 7)),), (), batch=False)
    assert parsed.batch is False
    assert parsed.rejected == ()
    assert parsed.total == 1


@pytest.mark.parametrize("extra", [{"other": 1}, {"interaction_type": "view"}])
def test_batch_with_another_field_is_refused(extra: dict[str, Any]) -> None:
    """A batch body holds ``token`` and ``events`` and nothing else."""
    body = json.dumps({"token": "t", "events": [], **extra}).encode()
    assert body_reason(body) == "body: a batch holds only token and events"


@pytest.mark.parametrize(
    ("count", "max_events", "ok"),
    [(50, None, True), (51, None, False), (2, 2, True), (3, 2, False)],
)
def test_batch_size_limit(count: int, max_events: int | None, ok: bool) -> None:
    """A batch holds at most ``max_events`` events (50 by default)."""
    options = {} if max_events is None else {"max_events": max_events}
    body = json.dumps({"events": [VIEW] * count}).encode()
    if ok:
        parsed = parse_beacon(body, **options)
        assert parsed.total == count and parsed.rejected == ()
    else:
        limit = 50 if max_events is None else max_events
        assert body_reason(body, **options) == f"events: at most {limit} per batch"


def test_batch_rejections_carry_the_reason() -> None:
    """Each rejected event of a batch keeps its index and the exact reason."""
    body = json.dumps(
        {"events": [VIEW, [], {**VIEW, "target_type": "shop"}, {**VIEW, "target_id": -1}]}
    ).encode()
    parsed = parse_beacon(body)
    assert parsed.events == ((0, EventInput("view", "procedure", 7)),)
    assert parsed.rejected == (
        (1, "event: must be an object"),
        (2, "target_type: must be one of category, doctor, package, page, procedure"),
        (3, "target_id: must be between 0 and 2147483647"),
    )
    assert parsed.batch is True
