"""Interactions: the one record every part of penchant passes around."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

__all__ = [
    "INTERACTION_TYPES",
    "ITEM_TYPES",
    "TARGET_TYPES",
    "Interaction",
    "JSONScalar",
    "new_event_id",
]

INTERACTION_TYPES: frozenset[str] = frozenset({"view", "search", "click", "form_submit"})
#: Targets that are catalog items (ranked, co-viewed).
ITEM_TYPES: tuple[str, ...] = ("procedure", "doctor", "package")
TARGET_TYPES: frozenset[str] = frozenset({"page", "category", *ITEM_TYPES})

JSONScalar = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Interaction:
    """One thing one visitor did, as stored in ``user_interactions``.

    ``timestamp`` is naive UTC. ``event_id`` (32 hex characters) makes a replayed
    event idempotent. A search carries the ids of the categories its query matched
    in ``extra_data["categories"]``; the query text itself is not kept by default.
    """

    user_id: str
    session_id: str
    interaction_type: str
    target_type: str
    target_id: int | None
    timestamp: datetime
    event_id: str
    extra_data: Mapping[str, object] | None = None


# The slots' own setters: like the generated __init__, they bypass the frozen __setattr__.
_SETTERS: dict[str, Callable[[Interaction, Any], None]] = {
    f.name: vars(Interaction)[f.name].__set__ for f in fields(Interaction)
}
_set_user_id = _SETTERS["user_id"]
_set_session_id = _SETTERS["session_id"]
_set_interaction_type = _SETTERS["interaction_type"]
_set_target_type = _SETTERS["target_type"]
_set_target_id = _SETTERS["target_id"]
_set_timestamp = _SETTERS["timestamp"]
_set_event_id = _SETTERS["event_id"]
_set_extra_data = _SETTERS["extra_data"]


def _init(
    self: Interaction,
    user_id: str,
    session_id: str,
    interaction_type: str,
    target_type: str,
    target_id: int | None,
    timestamp: datetime,
    event_id: str,
    extra_data: Mapping[str, object] | None = None,
) -> None:
    # The generated frozen __init__ calls object.__setattr__ per field: an event
    # is built on every page view, and setting the slots directly halves its cost.
    _set_user_id(self, user_id)
    _set_session_id(self, session_id)
    _set_interaction_type(self, interaction_type)
    _set_target_type(self, target_type)
    _set_target_id(self, target_id)
    _set_timestamp(self, timestamp)
    _set_event_id(self, event_id)
    _set_extra_data(self, extra_data)


Interaction.__init__ = _init  # type: ignore[method-assign]


def _fresh_ids() -> None:
    global _prefix, _counter
    _prefix = os.urandom(8).hex()
    _counter = itertools.count()


_prefix = ""
_counter = itertools.count()
_fresh_ids()
if hasattr(os, "register_at_fork"):
    # A forked worker would otherwise hand out its parent's ids again.
    os.register_at_fork(after_in_child=_fresh_ids)


def new_event_id() -> str:
    """32 hex characters, unique per event; not secret.

    A random 64-bit prefix per process (drawn again after fork) and a counter:
    unique across processes and restarts, without a random draw or a system call
    per event (a system call releases the GIL, and winning it back from the busy
    writer thread can cost a request milliseconds). Stored ids are unique per
    visitor (``user_id``, ``event_id``), so knowing one id gains nobody anything
    over another visitor's events.
    """
    return f"{_prefix}{next(_counter):016x}"
