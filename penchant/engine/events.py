"""Interactions: the one record every part of penchant passes around."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "INTERACTION_TYPES",
    "ITEM_TYPES",
    "TARGET_TYPES",
    "Interaction",
    "JSONScalar",
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
