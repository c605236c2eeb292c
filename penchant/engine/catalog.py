"""The catalog: what the host site offers, held in memory for ranking."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from penchant.engine.events import ITEM_TYPES

__all__ = ["Catalog", "Category", "Item"]

_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True, slots=True)
class Category:
    """A content category (e.g. Injectables)."""

    id: int
    name: str
    slug: str = ""
    keywords: tuple[str, ...] = ()
    url: str = ""

    @property
    def target_type(self) -> str:
        return "category"


@dataclass(frozen=True, slots=True)
class Item:
    """A procedure, doctor or package.

    ``category_ids`` are the item's own categories. ``procedure_ids`` relate a
    doctor (the procedures they perform) or a package (the procedures it holds)
    to procedures; their categories are derived from those procedures when
    ``category_ids`` is empty.
    """

    target_type: str
    id: int
    name: str
    category_ids: tuple[int, ...] = ()
    procedure_ids: tuple[int, ...] = ()
    url: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.target_type not in ITEM_TYPES:
            raise ValueError(f"item type must be one of {ITEM_TYPES}, got {self.target_type!r}")


class Catalog:
    """Categories and items, with the lookups ranking and affinity need.

    Immutable once built; a refresh builds a new one and swaps it in.
    """

    def __init__(self, categories: Iterable[Category] = (), items: Iterable[Item] = ()) -> None:
        self._categories: dict[int, Category] = {c.id: c for c in categories}
        raw: dict[tuple[str, int], Item] = {(i.target_type, i.id): i for i in items}
        resolved: dict[tuple[str, int], Item] = {}
        for key, item in raw.items():
            if not item.category_ids and item.procedure_ids:
                derived: list[int] = []
                for pid in item.procedure_ids:
                    proc = raw.get(("procedure", pid))
                    for cid in proc.category_ids if proc else ():
                        if cid not in derived:
                            derived.append(cid)
                item = Item(
                    item.target_type,
                    item.id,
                    item.name,
                    tuple(derived),
                    item.procedure_ids,
                    item.url,
                    item.attributes,
                )
            resolved[key] = item
        self._items = resolved
        by_type: dict[str, list[Item]] = {t: [] for t in ITEM_TYPES}
        for item in resolved.values():
            by_type[item.target_type].append(item)
        self._by_type: Mapping[str, tuple[Item, ...]] = MappingProxyType(
            {t: tuple(sorted(v, key=lambda i: i.id)) for t, v in by_type.items()}
        )
        by_category: dict[tuple[str, int], list[Item]] = {}
        for item in resolved.values():
            for cid in item.category_ids:
                by_category.setdefault((item.target_type, cid), []).append(item)
        self._by_category = {
            k: tuple(sorted(v, key=lambda i: i.id)) for k, v in by_category.items()
        }
        self._words: list[tuple[frozenset[str], int]] = [
            (frozenset(_WORD.findall(" ".join((c.name, c.slug, *c.keywords)).lower())), c.id)
            for c in self._categories.values()
        ]
        self._item_words: list[tuple[frozenset[str], tuple[int, ...]]] = [
            (frozenset(_WORD.findall(i.name.lower())), i.category_ids)
            for i in resolved.values()
            if i.target_type == "procedure"
        ]

    # ---------------------------------------------------------------- lookups
    @property
    def categories(self) -> tuple[Category, ...]:
        return tuple(sorted(self._categories.values(), key=lambda c: c.id))

    def category(self, category_id: int) -> Category | None:
        return self._categories.get(category_id)

    def item(self, target_type: str, target_id: int) -> Item | None:
        return self._items.get((target_type, target_id))

    def items(self, target_type: str) -> tuple[Item, ...]:
        return self._by_type.get(target_type, ())

    def items_in(self, target_type: str, category_id: int) -> tuple[Item, ...]:
        return self._by_category.get((target_type, category_id), ())

    def __len__(self) -> int:
        return len(self._items) + len(self._categories)

    def categories_of(self, target_type: str, target_id: int | None) -> tuple[int, ...]:
        """The categories an interaction with this target moves; () if unknown."""
        if target_id is None:
            return ()
        if target_type == "category":
            return (target_id,) if target_id in self._categories else ()
        item = self._items.get((target_type, target_id))
        return item.category_ids if item else ()

    def categories_for_query(self, query: str) -> tuple[int, ...]:
        """Categories whose words (or whose procedures' names) a search query matches."""
        words = frozenset(_WORD.findall(query.lower()))
        if not words:
            return ()
        found: list[int] = [cid for vocab, cid in self._words if words & vocab]
        for vocab, cids in self._item_words:
            if words & vocab:
                found.extend(c for c in cids if c not in found)
        return tuple(dict.fromkeys(found))
