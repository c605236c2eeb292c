"""Recommendations, their reasons, and the ranking strategies.

Pure: every input (catalog, profile, popularity, neighbours, clock) is passed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from penchant.engine.affinity import AffinityState
from penchant.engine.catalog import Catalog, Category, Item

__all__ = [
    "CONTENT_TYPES",
    "HistoryEntry",
    "Popularity",
    "Reason",
    "Recommendation",
    "VisitorProfile",
]

#: content type (as in the URL) -> target type
CONTENT_TYPES: Mapping[str, str] = {
    "categories": "category",
    "procedures": "procedure",
    "doctors": "doctor",
    "packages": "package",
}

ReasonKind = Literal["co_viewed", "category_affinity", "popular", "holdout", "contextual"]


@dataclass(frozen=True, slots=True)
class Reason:
    """Why an item was recommended, from a small fixed vocabulary."""

    kind: ReasonKind
    source: Item | Category | None = None  # the item co-viewed, or the category

    def __str__(self) -> str:
        name = self.source.name if self.source is not None else ""
        if self.kind == "co_viewed" and name:
            return f"Because you viewed {name}"
        if self.kind == "category_affinity" and name:
            return f"Because you like {name}"
        if self.kind == "contextual" and name:
            return f"Related to {name}"
        if name:
            return f"Popular in {name}"
        return "Popular"

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"kind": self.kind, "text": str(self)}
        if self.source is not None:
            out["source"] = {
                "type": self.source.target_type,
                "id": self.source.id,
                "name": self.source.name,
            }
        return out


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One recommended category or item, with its score and reason."""

    item: Item | Category
    score: float
    reason: Reason

    def as_dict(self) -> dict[str, object]:
        return {
            "type": self.item.target_type,
            "id": self.item.id,
            "name": self.item.name,
            "url": self.item.url,
            "score": round(self.score, 6),
            "reason": self.reason.as_dict(),
        }


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One past interaction with a catalog target, most recent first in a profile."""

    interaction_type: str
    target_type: str
    target_id: int
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class VisitorProfile:
    """What ranking knows of one visitor: affinities and recent history."""

    user_id: str
    affinities: Mapping[int, AffinityState] = field(default_factory=dict)
    history: Sequence[HistoryEntry] = ()

    @property
    def is_empty(self) -> bool:
        return not self.affinities and not self.history


@dataclass(frozen=True, slots=True)
class Popularity:
    """Distinct visitors per target over a recent window: ``counts[type][id]``."""

    counts: Mapping[str, Mapping[int, int]] = field(default_factory=dict)

    def of(self, target_type: str, target_id: int) -> int:
        return self.counts.get(target_type, {}).get(target_id, 0)


def popular(
    content_type: str,
    catalog: Catalog,
    popularity: Popularity,
    *,
    limit: int,
    exclude: frozenset[tuple[str, int]] = frozenset(),
) -> list[Recommendation]:
    """Most popular content first (distinct visitors), catalog order breaking ties."""
    target_type = CONTENT_TYPES[content_type]
    candidates: Sequence[Item | Category] = (
        catalog.categories if target_type == "category" else catalog.items(target_type)
    )
    ranked = sorted(
        (c for c in candidates if (target_type, c.id) not in exclude),
        key=lambda c: (-popularity.of(target_type, c.id), c.id),
    )
    out: list[Recommendation] = []
    for candidate in ranked[:limit]:
        category = _first_category(candidate, catalog)
        out.append(
            Recommendation(
                candidate, float(popularity.of(target_type, candidate.id)), Reason("popular", category)
            )
        )
    return out


def _first_category(candidate: Item | Category, catalog: Catalog) -> Category | None:
    if isinstance(candidate, Category):
        return None
    for cid in candidate.category_ids:
        category = catalog.category(cid)
        if category is not None:
            return category
    return None
