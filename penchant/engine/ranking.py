"""Recommendations, their reasons, and the ranking strategies.

Pure: every input (catalog, profile, popularity, neighbours, clock) is passed in.

Two strategies rank a returning visitor's content:

``"original"``
    The original algorithm: categories by their stored (capped) affinity score;
    items of the visitor's top categories ranked by that category affinity
    (popularity breaking ties); popular content fills the rest.

``"blended"``
    A mixture of three distributions over the candidate items::

        score(i) = a * P_co(i) + b * P_cat(i) + c * P_pop(i)

    ``P_co`` is item-to-item co-occurrence: the neighbours of the items in the
    visitor's recent history, each history item weighted by its recency.
    ``P_cat`` picks a category from the visitor's affinities (the uncapped
    score decayed to ``now``, shrunk towards the popular categories) and then a
    popular item of it. ``P_pop`` is the popularity prior. The weight of each
    signal grows with the evidence behind it (distinct recent items, total
    affinity), so a visitor with little history gets nearly the popular order:
    never worse than popular content. Categories blend the visitor's affinity
    with the popular categories the same way.

Items the visitor has already seen are excluded (``exclude_seen=True``) or
demoted to a fraction of their score (``exclude_seen=False``). The page being
viewed (``context``) is never recommended to itself.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from penchant.engine.affinity import AffinityState
from penchant.engine.catalog import Catalog, Category, Item
from penchant.engine.events import ITEM_TYPES

__all__ = [
    "CONTENT_TYPES",
    "STRATEGIES",
    "HistoryEntry",
    "NeighbourMap",
    "Popularity",
    "Reason",
    "Recommendation",
    "VisitorProfile",
    "as_holdout",
    "popular",
    "recommend",
]

#: content type (as in the URL) -> target type
CONTENT_TYPES: Mapping[str, str] = {
    "categories": "category",
    "procedures": "procedure",
    "doctors": "doctor",
    "packages": "package",
}

#: the named ranking strategies
STRATEGIES: tuple[str, ...] = ("blended", "original")

ReasonKind = Literal["co_viewed", "category_affinity", "popular", "holdout", "contextual"]

TargetKey = tuple[str, int]
#: item -> its co-viewed items with their co-occurrence weight, strongest first
NeighbourMap = Mapping[TargetKey, Sequence[tuple[TargetKey, float]]]

# Blend constants, tuned on the offline evaluation (bench/offline_eval.py).
_HISTORY_DEPTH = 20  # distinct recent items whose neighbours are consulted
_RECENCY = 0.8  # weight of the k-th most recent distinct item: _RECENCY**k
_CO_EVIDENCE = 1.0  # distinct items at which co-occurrence gets half the weight
_CAT_EVIDENCE = 1.0  # raw affinity at which category affinity gets half its share
_CAT_PRIOR = 1.0  # pseudo-count of raw affinity the popular categories contribute
_TOP_CATEGORIES = 3  # categories whose popular items become candidates
_DEMOTE = 0.5  # score factor for an already seen item when it is not excluded
_ORIGINAL_TOP = 3  # the original strategy's number of top categories


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
class _Order:
    """Candidates of one type (optionally one category), most popular first."""

    ranked: tuple[Item | Category, ...]
    total: int  # sum of their popularity counts


@dataclass(frozen=True, slots=True)
class Popularity:
    """Distinct visitors per target over a recent window: ``counts[type][id]``.

    The popular order of each catalog list is computed once per instance and
    kept, so ranking never sorts the catalogue per request.
    """

    counts: Mapping[str, Mapping[int, int]] = field(default_factory=dict)
    _orders: dict[tuple[Catalog, str, int | None], _Order] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def of(self, target_type: str, target_id: int) -> int:
        return self.counts.get(target_type, {}).get(target_id, 0)

    def order(self, catalog: Catalog, target_type: str, category_id: int | None = None) -> _Order:
        """The catalog's ``target_type`` list (in one category), most popular first.

        Ties go to the lower id, as in the catalog.
        """
        key = (catalog, target_type, category_id)
        found = self._orders.get(key)
        if found is None:
            candidates: list[Item | Category] = []
            if target_type == "category":
                candidates.extend(catalog.categories)
            elif category_id is None:
                candidates.extend(catalog.items(target_type))
            else:
                candidates.extend(catalog.items_in(target_type, category_id))
            counts = self.counts.get(target_type, {})

            def rank(c: Item | Category) -> tuple[int, int]:
                return (-counts.get(c.id, 0), c.id)

            ranked = tuple(sorted(candidates, key=rank))
            found = _Order(ranked, sum(counts.get(c.id, 0) for c in ranked))
            if len(self._orders) > 1024:  # a refreshed catalog leaves stale keys behind
                self._orders.clear()
            self._orders[key] = found
        return found


def as_holdout(recommendations: Iterable[Recommendation]) -> list[Recommendation]:
    """The same recommendations, each with the ``holdout`` reason (the control group)."""
    return [Recommendation(r.item, r.score, Reason("holdout", None)) for r in recommendations]


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
    out: list[Recommendation] = []
    for candidate in _popular_iter(catalog, popularity, target_type, exclude):
        if len(out) >= limit:
            break
        out.append(_popular_rec(candidate, catalog, popularity))
    return out


def recommend(
    content_type: str,
    *,
    catalog: Catalog,
    profile: VisitorProfile | None,
    popularity: Popularity,
    neighbours: NeighbourMap,
    now: datetime,
    limit: int,
    strategy: str = "blended",
    rate: float = 0.95,
    max_per_category: int = 0,
    exclude_seen: bool = True,
    context: tuple[str, int] | None = None,
) -> list[Recommendation]:
    """Up to ``limit`` recommendations of ``content_type`` for one visitor.

    ``profile`` None or empty: the popular content, led by content related to
    ``context`` (the target of the page being viewed) when it is given.
    ``max_per_category`` caps the items of one (primary) category in the list;
    it gives way only when nothing else is left to fill the list. The list is
    always filled up to ``limit`` from popular content while the catalog has any.
    """
    if content_type not in CONTENT_TYPES:
        raise ValueError(
            f"content type must be one of {tuple(CONTENT_TYPES)}, got {content_type!r}"
        )
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if limit <= 0:
        return []
    target_type = CONTENT_TYPES[content_type]
    anonymous = profile is None or profile.is_empty
    if target_type == "category":
        if anonymous or profile is None:
            scored = _contextual_categories(catalog, popularity, context)
        elif strategy == "original":
            scored = _original_categories(catalog, profile)
        else:
            scored = _blended_categories(catalog, popularity, profile, now, rate)
        return _select(scored, catalog, popularity, target_type, limit, 0, frozenset(), context)

    seen: frozenset[TargetKey] = frozenset()
    if profile is not None and exclude_seen:
        seen = frozenset((h.target_type, h.target_id) for h in profile.history)
    if anonymous or profile is None:
        scored = _contextual_items(catalog, popularity, neighbours, target_type, context, limit)
    elif strategy == "original":
        scored = _original_items(catalog, popularity, profile, target_type, limit, seen)
    else:
        scored = _blended_items(
            catalog, popularity, neighbours, profile, target_type, now, rate, limit, seen, context
        )
        if not exclude_seen:
            scored = _demote_seen(scored, profile)
    return _select(scored, catalog, popularity, target_type, limit, max_per_category, seen, context)


# ------------------------------------------------------------------ selection
_Scored = dict[TargetKey, tuple[float, Reason]]


def _select(
    scored: _Scored,
    catalog: Catalog,
    popularity: Popularity,
    target_type: str,
    limit: int,
    max_per_category: int,
    exclude: frozenset[TargetKey],
    context: TargetKey | None,
) -> list[Recommendation]:
    """Best scored first, under the diversity cap; then popular content fills."""
    skip = exclude | {context} if context is not None else exclude
    # Ties go to the lower id, as in the popular order.
    ranked = heapq.nlargest(
        len(scored) if max_per_category else limit,
        (
            (score, -key[1], key, reason)
            for key, (score, reason) in scored.items()
            if key not in skip
        ),
    )
    fill = popularity.order(catalog, target_type)
    out: list[Recommendation] = []
    taken: set[TargetKey] = set()
    per_category: dict[int, int] = {}

    def admit(candidate: Item | Category, score: float, reason: Reason, capped: bool) -> bool:
        key = (candidate.target_type, candidate.id)
        if key in taken or key in skip:
            return False
        if capped and max_per_category and isinstance(candidate, Item) and candidate.category_ids:
            primary = candidate.category_ids[0]
            if per_category.get(primary, 0) >= max_per_category:
                return False
            per_category[primary] = per_category.get(primary, 0) + 1
        taken.add(key)
        out.append(Recommendation(candidate, score, reason))
        return True

    for capped in (True, False) if max_per_category else (True,):
        for score, _, key, reason in ranked:
            if len(out) >= limit:
                return out
            candidate = _lookup(catalog, key)
            if candidate is not None:
                admit(candidate, score, reason, capped)
        for candidate in fill.ranked:
            if len(out) >= limit:
                return out
            if (candidate.target_type, candidate.id) not in taken:
                # Filled items score their share of visitors, on the scale of blended scores.
                count = popularity.of(target_type, candidate.id)
                share = count / fill.total if fill.total else 0.0
                reason = Reason("popular", _first_category(candidate, catalog))
                admit(candidate, share, reason, capped)
    return out


def _lookup(catalog: Catalog, key: TargetKey) -> Item | Category | None:
    if key[0] == "category":
        return catalog.category(key[1])
    return catalog.item(key[0], key[1])


def _popular_iter(
    catalog: Catalog, popularity: Popularity, target_type: str, exclude: frozenset[TargetKey]
) -> Iterator[Item | Category]:
    for candidate in popularity.order(catalog, target_type).ranked:
        if (target_type, candidate.id) not in exclude:
            yield candidate


def _popular_rec(
    candidate: Item | Category, catalog: Catalog, popularity: Popularity
) -> Recommendation:
    count = popularity.of(candidate.target_type, candidate.id)
    return Recommendation(
        candidate, float(count), Reason("popular", _first_category(candidate, catalog))
    )


def _first_category(candidate: Item | Category, catalog: Catalog) -> Category | None:
    if isinstance(candidate, Category):
        return None
    for cid in candidate.category_ids:
        category = catalog.category(cid)
        if category is not None:
            return category
    return None


# ----------------------------------------------------------------- anonymous
def _contextual_items(
    catalog: Catalog,
    popularity: Popularity,
    neighbours: NeighbourMap,
    target_type: str,
    context: TargetKey | None,
    limit: int,
) -> _Scored:
    """Co-viewed items of the page's item, then popular items of its categories."""
    scored: _Scored = {}
    if context is None:
        return scored
    source = _lookup(catalog, context)
    if source is None:
        return scored
    # Co-viewed items rank above every merely related one: offset by one.
    related = _neighbour_distribution(neighbours.get(context, ()), target_type)
    for key, share in related.items():
        scored[key] = (1.0 + share, Reason("co_viewed", source))
    category_ids = (source.id,) if isinstance(source, Category) else source.category_ids
    for cid in category_ids:
        category = catalog.category(cid)
        order = popularity.order(catalog, target_type, cid)
        for item in order.ranked[: 2 * limit + 1]:
            key = (target_type, item.id)
            if key not in scored:
                share = popularity.of(target_type, item.id) / order.total if order.total else 0.0
                scored[key] = (share, Reason("contextual", category))
    return scored


def _contextual_categories(
    catalog: Catalog, popularity: Popularity, context: TargetKey | None
) -> _Scored:
    """The categories of the page's item first (then popular ones)."""
    scored: _Scored = {}
    if context is None or context[0] == "category":
        return scored
    source = catalog.item(context[0], context[1])
    if source is None:
        return scored
    for rank, cid in enumerate(source.category_ids):
        if catalog.category(cid) is not None:
            scored[("category", cid)] = (1.0 / (1 + rank), Reason("contextual", source))
    return scored


# ------------------------------------------------------------------ original
def _original_categories(catalog: Catalog, profile: VisitorProfile) -> _Scored:
    return {
        ("category", cid): (state.score, Reason("category_affinity", category))
        for cid, state in profile.affinities.items()
        if (category := catalog.category(cid)) is not None
    }


def _original_items(
    catalog: Catalog,
    popularity: Popularity,
    profile: VisitorProfile,
    target_type: str,
    limit: int,
    seen: frozenset[TargetKey],
) -> _Scored:
    """Items of the top categories by stored affinity, most popular first within one."""
    top = heapq.nlargest(
        _ORIGINAL_TOP,
        ((state.score, -cid) for cid, state in profile.affinities.items() if catalog.category(cid)),
    )
    scored: _Scored = {}
    for rank, (score, neg_cid) in enumerate(top):
        category = catalog.category(-neg_cid)
        order = popularity.order(catalog, target_type, -neg_cid)
        taken = 0
        for position, item in enumerate(order.ranked):
            key = (target_type, item.id)
            if key in seen or key in scored:
                continue
            # Category affinity first, then category rank, then popularity within it.
            scored[key] = (
                score - rank * 1e-6 - position * 1e-9,
                Reason("category_affinity", category),
            )
            taken += 1
            if taken >= limit:
                break
    return scored


# ------------------------------------------------------------------- blended
def _neighbour_distribution(
    related: Sequence[tuple[TargetKey, float]], target_type: str
) -> dict[TargetKey, float]:
    """One item's neighbours of ``target_type`` as shares of their total weight."""
    total = sum(w for key, w in related if key[0] == target_type and w > 0)
    if total <= 0:
        return {}
    return {key: w / total for key, w in related if key[0] == target_type and w > 0}


def _recent_items(profile: VisitorProfile, context: TargetKey | None) -> list[TargetKey]:
    """Distinct recent items, most recent first (the page being viewed leads)."""
    out: dict[TargetKey, None] = {}
    if context is not None and context[0] in ITEM_TYPES:
        out[context] = None
    for entry in sorted(profile.history, key=lambda h: h.timestamp, reverse=True):
        if len(out) >= _HISTORY_DEPTH:
            break
        if entry.target_type in ITEM_TYPES:
            out.setdefault((entry.target_type, entry.target_id), None)
    return list(out)


def _category_shares(
    catalog: Catalog, popularity: Popularity, profile: VisitorProfile, now: datetime, rate: float
) -> tuple[dict[int, float], float]:
    """P(category) for this visitor: decayed affinity shrunk towards popular categories.

    Returns the shares and the total raw affinity behind them (the evidence).
    """
    raw = {
        cid: state.raw_at(now, rate)
        for cid, state in profile.affinities.items()
        if catalog.category(cid) is not None
    }
    evidence = sum(v for v in raw.values() if v > 0)
    order = popularity.order(catalog, "category")
    shares: dict[int, float] = {}
    denominator = evidence + _CAT_PRIOR
    for category in order.ranked:
        prior = (
            popularity.of("category", category.id) / order.total
            if order.total
            else 1.0 / len(order.ranked)
        )
        value = (max(raw.get(category.id, 0.0), 0.0) + _CAT_PRIOR * prior) / denominator
        if value > 0:
            shares[category.id] = value
    return shares, evidence


def _blended_categories(
    catalog: Catalog, popularity: Popularity, profile: VisitorProfile, now: datetime, rate: float
) -> _Scored:
    shares, _ = _category_shares(catalog, popularity, profile, now, rate)
    scored: _Scored = {}
    for cid, share in shares.items():
        category = catalog.category(cid)
        state = profile.affinities.get(cid)
        kind: ReasonKind = (
            "category_affinity" if state is not None and state.raw_at(now, rate) > 0 else "popular"
        )
        scored[("category", cid)] = (share, Reason(kind, category if kind != "popular" else None))
    return scored


def _blended_items(
    catalog: Catalog,
    popularity: Popularity,
    neighbours: NeighbourMap,
    profile: VisitorProfile,
    target_type: str,
    now: datetime,
    rate: float,
    limit: int,
    seen: frozenset[TargetKey],
    context: TargetKey | None,
) -> _Scored:
    counts = popularity.counts.get(target_type, {})
    everything = popularity.order(catalog, target_type)

    # (a) co-occurrence: neighbours of recent items, recency-weighted.
    recent = _recent_items(profile, context)
    co: dict[TargetKey, float] = {}
    co_source: dict[TargetKey, tuple[float, TargetKey]] = {}
    weight_sum = 0.0
    for k, source in enumerate(recent):
        related = neighbours.get(source)
        if not related:
            continue
        distribution = _neighbour_distribution(related, target_type)
        if not distribution:
            continue
        r = _RECENCY**k
        weight_sum += r
        for key, share in distribution.items():
            part = r * share
            co[key] = co.get(key, 0.0) + part
            best = co_source.get(key)
            if best is None or part > best[0]:
                co_source[key] = (part, source)
    evidence_co = sum(_RECENCY**k for k in range(len(recent))) if co else 0.0
    a = evidence_co / (evidence_co + _CO_EVIDENCE)
    if weight_sum > 0:
        co = {key: v / weight_sum for key, v in co.items()}

    # (b) category affinity, shrunk towards popular categories.
    shares, evidence_cat = _category_shares(catalog, popularity, profile, now, rate)
    b = (1.0 - a) * evidence_cat / (evidence_cat + _CAT_EVIDENCE)
    # (c) the popularity prior takes the rest.
    c = 1.0 - a - b

    candidates: set[TargetKey] = {key for key in co if key not in seen}
    depth = 2 * limit + 1
    candidates.update(_head(everything, target_type, seen, depth))
    top = heapq.nlargest(_TOP_CATEGORIES, ((v, cid) for cid, v in shares.items()))
    category_totals: dict[int, int] = {}
    for _, cid in top:
        order = popularity.order(catalog, target_type, cid)
        category_totals[cid] = order.total
        candidates.update(_head(order, target_type, seen, depth))

    scored: _Scored = {}
    for key in candidates:
        item = catalog.item(*key)
        if item is None:
            continue
        count = counts.get(key[1], 0)
        p_co = a * co.get(key, 0.0)
        p_cat = 0.0
        best_cat: tuple[float, int] | None = None
        if count:
            for cid in item.category_ids:
                category_share = shares.get(cid)
                if not category_share:
                    continue
                total = category_totals.get(cid)
                if total is None:
                    total = category_totals[cid] = popularity.order(catalog, target_type, cid).total
                part = b * category_share * count / total
                p_cat += part
                if best_cat is None or part > best_cat[0]:
                    best_cat = (part, cid)
        p_pop = c * count / everything.total if everything.total else 0.0
        score = p_co + p_cat + p_pop
        if p_co >= p_cat and p_co >= p_pop and p_co > 0:
            viewed = catalog.item(*co_source[key][1])
            reason = Reason("co_viewed", viewed) if viewed else Reason("popular")
        elif best_cat is not None and p_cat >= p_pop:
            reason = Reason("category_affinity", catalog.category(best_cat[1]))
        else:
            reason = Reason("popular", _first_category(item, catalog))
        scored[key] = (score, reason)
    return scored


def _head(order: _Order, target_type: str, seen: frozenset[TargetKey], n: int) -> list[TargetKey]:
    """The first ``n`` unseen keys of a popular order."""
    out: list[TargetKey] = []
    for candidate in order.ranked:
        if len(out) >= n:
            break
        key = (target_type, candidate.id)
        if key not in seen:
            out.append(key)
    return out


def _demote_seen(scored: _Scored, profile: VisitorProfile) -> _Scored:
    seen = {(h.target_type, h.target_id) for h in profile.history}
    return {
        key: ((score * _DEMOTE, reason) if key in seen else (score, reason))
        for key, (score, reason) in scored.items()
    }
