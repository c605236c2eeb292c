"""Checking beacon bodies and server-side events before anything is queued.

Everything here is attacker-controlled input. A body that cannot be read at all
raises :class:`BodyError` (the HTTP layer answers 400 with its message); an
event that breaks a rule becomes a rejection with a reason that names the field.
Values that pass are clean: known types, integer ids in range, a path without
query string, metadata of bounded scalar values without NUL characters or lone
surrogates.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from penchant.engine.events import INTERACTION_TYPES, ITEM_TYPES, TARGET_TYPES, JSONScalar

__all__ = [
    "MAX_EVENTS",
    "RESERVED_METADATA",
    "BeaconBody",
    "BodyError",
    "EventInput",
    "InvalidEvent",
    "clean_path",
    "parse_beacon",
    "storable_text",
    "validate_event",
    "validate_metadata",
]

#: Events in one beacon batch (the tracker sends far fewer).
MAX_EVENTS = 50
MAX_PATH = 512
MAX_KEYS = 20
MAX_KEY_LENGTH = 64
MAX_STRING = 256
MAX_TOKEN = 512
#: Ids are stored in an INTEGER column: 32-bit signed on every database.
MAX_ID = 2**31 - 1
#: Metadata keys a client may not set: the server derives them (a page's path, the
#: categories a search matched) or decides them at report time (whether a click
#: came from a recommendation: ``source``). They are dropped, never stored.
RESERVED_METADATA = frozenset({"path", "categories", "source"})

_EVENT_ID = re.compile(r"[0-9a-f]{32}")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]*")
_EVENT_FIELDS = frozenset(
    {"interaction_type", "target_type", "target_id", "event_id", "path", "metadata", "token"}
)


class BodyError(ValueError):
    """The body cannot be read as a beacon at all; the message names the problem."""


class InvalidEvent(ValueError):
    """One event breaks a rule; the message names the field."""


@dataclass(frozen=True, slots=True)
class EventInput:
    """One event as the tracker (or a view) described it, after checking."""

    interaction_type: str
    target_type: str
    target_id: int | None = None
    event_id: str | None = None
    path: str | None = None
    metadata: Mapping[str, JSONScalar] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BeaconBody:
    """A parsed beacon: the page token, the good events, and the rejected ones by index."""

    token: str | None
    events: tuple[tuple[int, EventInput], ...]
    rejected: tuple[tuple[int, str], ...]
    batch: bool

    @property
    def total(self) -> int:
        return len(self.events) + len(self.rejected)


def _clean_string(value: str, name: str, limit: int) -> str:
    if len(value) > limit:
        raise InvalidEvent(f"{name}: longer than {limit} characters")
    if "\x00" in value:
        raise InvalidEvent(f"{name}: contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidEvent(f"{name}: not valid Unicode") from None
    return value


def storable_text(value: str, limit: int = MAX_PATH) -> str:
    """Text every database accepts: no NUL, no lone surrogate, at most ``limit`` characters."""
    value = value[:limit].replace("\x00", "")
    return value.encode("utf-8", "replace").decode("utf-8")


def clean_path(value: object, name: str = "path") -> str:
    """A URL path: starts with ``/``; any query string or fragment is cut off, never kept."""
    if not isinstance(value, str):
        raise InvalidEvent(f"{name}: must be a string")
    value = value.split("?", 1)[0].split("#", 1)[0]
    if not value.startswith("/"):
        raise InvalidEvent(f"{name}: must start with /")
    return _clean_string(value, name, MAX_PATH)


def _clean_id(value: object) -> int | None:
    if value is None:
        return None
    # bool is an int in Python but never an id.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidEvent("target_id: must be an integer or null")
    if not 0 <= value <= MAX_ID:
        raise InvalidEvent(f"target_id: must be between 0 and {MAX_ID}")
    return value


def validate_metadata(value: object, *, max_bytes: int = 1024) -> dict[str, JSONScalar]:
    """String keys, scalar values, bounded in count, length and encoded size."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidEvent("metadata: must be an object")
    if len(value) > MAX_KEYS:
        raise InvalidEvent(f"metadata: more than {MAX_KEYS} keys")
    out: dict[str, JSONScalar] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not _KEY.fullmatch(key) or len(key) > MAX_KEY_LENGTH:
            raise InvalidEvent(f"metadata: bad key {str(key)[:MAX_KEY_LENGTH]!r}")
        name = f"metadata.{key}"
        if isinstance(item, str):
            out[key] = _clean_string(item, name, MAX_STRING)
        elif isinstance(item, bool) or item is None:
            out[key] = item
        elif isinstance(item, int):
            if abs(item) > 2**53:
                raise InvalidEvent(f"{name}: number out of range")
            out[key] = item
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidEvent(f"{name}: must be a finite number")
            out[key] = item
        else:
            raise InvalidEvent(f"{name}: must be a string, number, boolean or null")
    if len(json.dumps(out, separators=(",", ":"))) > max_bytes:
        raise InvalidEvent(f"metadata: larger than {max_bytes} bytes")
    return out


def validate_event(raw: object, *, max_metadata_bytes: int = 1024) -> EventInput:
    """Check one event object; raise :class:`InvalidEvent` naming the first bad field."""
    if not isinstance(raw, Mapping):
        raise InvalidEvent("event: must be an object")
    unknown = set(raw) - _EVENT_FIELDS
    if unknown:
        raise InvalidEvent(f"{sorted(map(str, unknown))[0][:64]}: unknown field")
    interaction_type = raw.get("interaction_type")
    if not isinstance(interaction_type, str) or interaction_type not in INTERACTION_TYPES:
        raise InvalidEvent(
            f"interaction_type: must be one of {', '.join(sorted(INTERACTION_TYPES))}"
        )
    target_type = raw.get("target_type")
    if not isinstance(target_type, str) or target_type not in TARGET_TYPES:
        raise InvalidEvent(f"target_type: must be one of {', '.join(sorted(TARGET_TYPES))}")
    target_id = _clean_id(raw.get("target_id"))
    if target_id is None and target_type in ITEM_TYPES:
        raise InvalidEvent(f"target_id: required for a {target_type}")
    event_id = raw.get("event_id")
    if event_id is not None and (
        not isinstance(event_id, str) or not _EVENT_ID.fullmatch(event_id)
    ):
        raise InvalidEvent("event_id: must be 32 lowercase hexadecimal characters")
    path = raw.get("path")
    if path is not None:
        path = clean_path(path)
    metadata = validate_metadata(raw.get("metadata"), max_bytes=max_metadata_bytes)
    if interaction_type == "search":
        query = metadata.get("query")
        if not isinstance(query, str) or not query.strip():
            raise InvalidEvent("metadata.query: required for a search")
    return EventInput(interaction_type, target_type, target_id, event_id, path, metadata)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def parse_beacon(
    body: bytes,
    *,
    max_events: int = MAX_EVENTS,
    max_metadata_bytes: int = 1024,
) -> BeaconBody:
    """One event object, or ``{"token": ..., "events": [...]}``.

    Raises :class:`BodyError` when the body is not such a thing at all, or when
    the body is a single event that is invalid (there is nothing else to accept).
    """
    if not body.strip():
        raise BodyError("body: empty")
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BodyError("body: not valid JSON") from None
    if not isinstance(data, dict):
        raise BodyError("body: must be an event object or {token, events}")
    token = data.get("token")
    if token is not None and (not isinstance(token, str) or len(token) > MAX_TOKEN):
        raise BodyError("token: must be a string")
    if "events" not in data:
        try:
            event = validate_event(data, max_metadata_bytes=max_metadata_bytes)
        except InvalidEvent as exc:
            raise BodyError(str(exc)) from None
        return BeaconBody(token, ((0, event),), (), batch=False)
    if set(data) - {"token", "events"}:
        raise BodyError("body: a batch holds only token and events")
    raw_events = data["events"]
    if not isinstance(raw_events, list):
        raise BodyError("events: must be a list")
    if len(raw_events) > max_events:
        raise BodyError(f"events: at most {max_events} per batch")
    events: list[tuple[int, EventInput]] = []
    rejected: list[tuple[int, str]] = []
    for index, raw in enumerate(raw_events):
        try:
            events.append((index, validate_event(raw, max_metadata_bytes=max_metadata_bytes)))
        except InvalidEvent as exc:
            rejected.append((index, str(exc)))
    return BeaconBody(token, tuple(events), tuple(rejected), batch=True)
