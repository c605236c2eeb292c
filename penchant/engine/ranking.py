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

    ``P_co`` is item-to-item co-occurrence: the neighbours of the visitor's
    recent items, the k-th most recent weighted ``_RECENCY**k``. ``P_cat``
    picks a category from the visitor's affinities (the uncapped score decayed
    to ``now``, which keeps the order the cap at 1.0 loses, shrunk towards the
    popular categories) and then an item of it in proportion to its visitors.
    ``P_pop`` is the popularity prior. ``a`` and ``b`` grow with the evidence
    behind their signal (recent items with enough co-occurrence, total raw
    affinity) and the prior takes the rest, so a visitor with little history
    gets nearly the popular order.

    Categories: the categories of the visitor's next item are predicted by the
    shrunk affinities mixed with the categories of co-viewed items, and the
    list is chosen greedily so that each category adds the most probability
    not yet covered (an item may sit in several categories).

Items the visitor has already seen are excluded (``exclude_seen=True``) or
demoted to a fraction of their score (``exclude_seen=False``). The page being
viewed (``context``) is never recommended to itself.
"""

from __future__ import annotations

import heapq
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from penchant.engine.affinity import AffinityState
from penchant.engine.catalog import Catalog, Category, Item
from penchant.engine.events import ITEM_TYPES

__all__ = [
    "CONTENT_TYPES",
    "HISTORY_DEPTH",
    "REASONS_KEPT",
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
    "shared_reason",
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

#: distinct recent items (most recent first) whose neighbours recommend() consults
HISTORY_DEPTH = 10

# Blend constants, tuned on the offline evaluation (bench/offline_eval.py).
_RECENCY = 0.6  # weight of the k-th most recent distinct item: _RECENCY**k
_CO_EVIDENCE = 1.0  # recency weight at which co-occurrence gets half the weight
_CO_SUPPORT = 5.0  # co-occurrence weight at which an item's neighbours count half
_CAT_EVIDENCE = 1.0  # raw affinity at which category affinity gets half its share
_CAT_PRIOR = 1.0  # pseudo-count of raw affinity the popular categories contribute
_TOP_CATEGORIES = 3  # categories whose popular items become candidates
_CAT_CO_SHARE = 0.5  # share of co-viewed items' categories in the category prediction
_DEMOTE = 0.5  # score factor for an already seen item when it is not excluded
_ORIGINAL_TOP = 3  # the original strategy's number of top categories


@dataclass(frozen=True, slots=True)
class Reason:
    """Why an item was recommended, from a small fixed vocabulary."""

    kind: ReasonKind
    source: Item | Category | None = None  # the item co-viewed, or the category
    #: The sentence shown for it, made once: a page renders each reason it shows.
    text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        name = self.source.name if self.source is not None else ""
        if self.kind == "co_viewed" and name:
            text = f"Because you viewed {name}"
        elif self.kind == "category_affinity" and name:
            text = f"Because you like {name}"
        elif self.kind == "contextual" and name:
            text = f"Related to {name}"
        elif name:
            text = f"Popular in {name}"
        else:
            text = "Popular"
        object.__setattr__(self, "text", text)

    def __str__(self) -> str:
        return self.text

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"kind": self.kind, "text": self.text}
        if self.source is not None:
            out["source"] = {
                "type": self.source.target_type,
                "id": self.source.id,
                "name": self.source.name,
            }
        return out


# Reasons are few (a kind and a catalog entry) but a ranked list holds one per
# line, and cached lists hold thousands: each distinct reason is made once and
# shared. Keyed by the source's identity; the entry keeps the source alive, so an
# id is never reused while it is a key.
_REASONS: dict[tuple[str, int], tuple[object, Reason]] = {}
#: Distinct reasons kept for sharing; past it the store starts again.
REASONS_KEPT = 4096


def shared_reason(kind: ReasonKind, source: Item | Category | None = None) -> Reason:
    """The shared :class:`Reason` of ``kind`` and ``source`` (equal to a new one)."""
    key = (kind, id(source))
    found = _REASONS.get(key)
    if found is not None and found[0] is source:
        return found[1]
    made = Reason(kind, source)
    if len(_REASONS) >= REASONS_KEPT:
        _REASONS.clear()  # a catalog reloaded many times over: start again
    _REASONS[key] = (source, made)
    return made


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

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, int, int]], *, limit_per_type: int) -> Popularity:
        """From (target_type, target_id, count) rows: each type's most counted, ties by id."""
        by_type: dict[str, list[tuple[int, int]]] = {}
        for target_type, target_id, count in rows:
            by_type.setdefault(target_type, []).append((int(target_id), int(count)))
        counts: dict[str, dict[int, int]] = {}
        for target_type, pairs in by_type.items():
            pairs.sort(key=lambda pair: (-pair[1], pair[0]))
            counts[target_type] = dict(pairs[:limit_per_type])
        return cls(counts)

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
    return [
        Recommendation(r.item, r.score, shared_reason("holdout", None)) for r in recommendations
    ]


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
    if profile is not None and profile.is_empty:
        profile = None
    ranked: Iterable[tuple[TargetKey, float, Reason]]
    if target_type == "category":
        if profile is None:
            ranked = _contextual_categories(catalog, context)
        elif strategy == "original":
            ranked = _original_categories(catalog, profile)
        else:
            ranked = _blended_categories(
                catalog, popularity, neighbours, profile, now, rate, limit, context
            )
        return _select(ranked, catalog, popularity, target_type, limit, 0, frozenset(), context)

    seen: frozenset[TargetKey] = frozenset()
    demote: frozenset[TargetKey] = frozenset()
    if profile is not None:
        history = frozenset((h.target_type, h.target_id) for h in profile.history)
        seen, demote = (history, frozenset()) if exclude_seen else (frozenset(), history)
    if context is not None:
        seen = seen | {context}  # never recommend the page being viewed to itself
    if profile is None:
        ranked = _contextual_items(catalog, popularity, neighbours, target_type, context, limit)
    elif strategy == "original":
        ranked = _original_items(catalog, popularity, profile, target_type, limit, seen)
    else:
        ranked = _blended_items(
            catalog,
            popularity,
            neighbours,
            profile,
            target_type,
            now,
            rate,
            limit,
            seen,
            context,
            demote,
            everything_needed=max_per_category > 0,
        )
    return _select(ranked, catalog, popularity, target_type, limit, max_per_category, seen, context)


# ------------------------------------------------------------------ selection
_Scored = dict[TargetKey, tuple[float, Reason]]
_Ranked = list[tuple[TargetKey, float, Reason]]


def _best_first(scored: _Scored, n: int) -> _Ranked:
    """The ``n`` best scored keys, best first; ties go to the lower id, as in popular."""
    top = heapq.nlargest(n, scored.items(), key=lambda kv: (kv[1][0], -kv[0][1]))
    return [(key, score, reason) for key, (score, reason) in top]


def _select(
    ranked: Iterable[tuple[TargetKey, float, Reason]],
    catalog: Catalog,
    popularity: Popularity,
    target_type: str,
    limit: int,
    max_per_category: int,
    exclude: frozenset[TargetKey],
    context: TargetKey | None,
) -> list[Recommendation]:
    """``ranked`` in its order under the diversity cap; then popular content fills."""
    skip = exclude | {context} if context is not None else exclude
    fill = popularity.order(catalog, target_type)
    out: list[Recommendation] = []
    taken: set[TargetKey] = set()
    per_category: dict[int, int] = {}

    def admit(candidate: Item | Category, score: float, reason: Reason, capped: bool) -> None:
        key = (candidate.target_type, candidate.id)
        if key in taken or key in skip:
            return
        if capped and max_per_category and isinstance(candidate, Item) and candidate.category_ids:
            primary = candidate.category_ids[0]
            if per_category.get(primary, 0) >= max_per_category:
                return
            per_category[primary] = per_category.get(primary, 0) + 1
        taken.add(key)
        out.append(Recommendation(candidate, score, reason))

    # A second pass without the cap only when the capped one could not fill the list.
    for capped in (True, False) if max_per_category else (True,):
        for key, score, reason in ranked:
            if len(out) >= limit:
                return out
            candidate = _lookup(catalog, key)
            if candidate is not None:
                admit(candidate, score, reason, capped)
        for candidate in fill.ranked:
            if len(out) >= limit:
                return out
            # Filled content scores its share of visitors, on the scale of blended scores.
            count = popularity.of(target_type, candidate.id)
            share = count / fill.total if fill.total else 0.0
            admit(
                candidate,
                share,
                shared_reason("popular", _first_category(candidate, catalog)),
                capped,
            )
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
    reason = shared_reason("popular", _first_category(candidate, catalog))
    return Recommendation(candidate, float(count), reason)


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
) -> _Ranked:
    """Co-viewed items of the page's target, then popular items of its categories."""
    ranked: _Ranked = []
    source = _lookup(catalog, context) if context is not None else None
    if context is None or source is None:
        return ranked
    co, _, _ = _co_viewed(neighbours, [context], (target_type,), ())
    for key, share in sorted(co.items(), key=lambda kv: (-kv[1], kv[0][1])):
        ranked.append((key, share, shared_reason("co_viewed", source)))
    category_ids = (source.id,) if isinstance(source, Category) else source.category_ids
    for cid in category_ids:
        category = catalog.category(cid)
        order = popularity.order(catalog, target_type, cid)
        for item in order.ranked[: 2 * limit + 1]:
            share = popularity.of(target_type, item.id) / order.total if order.total else 0.0
            ranked.append(((target_type, item.id), share, shared_reason("contextual", category)))
    return ranked


def _contextual_categories(catalog: Catalog, context: TargetKey | None) -> _Ranked:
    """The categories of the page's item first (then popular ones)."""
    if context is None or context[0] == "category":
        return []
    source = catalog.item(context[0], context[1])
    if source is None:
        return []
    return [
        (("category", cid), 1.0 / (1 + rank), shared_reason("contextual", source))
        for rank, cid in enumerate(source.category_ids)
    ]


# ------------------------------------------------------------------ original
def _original_categories(catalog: Catalog, profile: VisitorProfile) -> _Ranked:
    """Categories by stored (capped) affinity score, ties to the lower id."""
    scored: _Scored = {
        ("category", cid): (state.score, shared_reason("category_affinity", category))
        for cid, state in profile.affinities.items()
        if (category := catalog.category(cid)) is not None
    }
    return _best_first(scored, len(scored))


def _original_items(
    catalog: Catalog,
    popularity: Popularity,
    profile: VisitorProfile,
    target_type: str,
    limit: int,
    seen: frozenset[TargetKey],
) -> _Ranked:
    """Items of the top categories by stored affinity, most popular first within one."""
    top = _original_categories(catalog, profile)[:_ORIGINAL_TOP]
    ranked: _Ranked = []
    for (_, cid), score, reason in top:
        for key in _head(popularity.order(catalog, target_type, cid), target_type, seen, limit):
            ranked.append((key, score, reason))
    return ranked


# ------------------------------------------------------------------- blended
def _recent_items(profile: VisitorProfile, context: TargetKey | None) -> list[TargetKey]:
    """Distinct recent items, most recent first (the page being viewed leads)."""
    out: dict[TargetKey, None] = {}
    if context is not None and context[0] in ITEM_TYPES:
        out[context] = None
    for entry in sorted(profile.history, key=lambda h: h.timestamp, reverse=True):
        if len(out) >= HISTORY_DEPTH:
            break
        if entry.target_type in ITEM_TYPES:
            out.setdefault((entry.target_type, entry.target_id), None)
    return list(out)


def _co_viewed(
    neighbours: NeighbourMap,
    recent: Sequence[TargetKey],
    types: Container[str],
    seen: Container[TargetKey],
) -> tuple[dict[TargetKey, float], dict[TargetKey, tuple[float, TargetKey]], float]:
    """Neighbours (of ``types``, not ``seen``) of the recent items as one distribution.

    The k-th recent item weighs ``_RECENCY**k``. Returns the shares (summing to
    1, or empty); per neighbour, the largest part one recent item gave it, with
    that item (the reason's source); and the evidence behind the shares: the
    recency weights, each discounted when its item has little co-occurrence.
    """
    co: dict[TargetKey, float] = {}
    source: dict[TargetKey, tuple[float, TargetKey]] = {}
    weight_sum = 0.0
    evidence = 0.0
    r = 1.0
    for origin in recent:
        picked = [
            (key, w)
            for key, w in neighbours.get(origin, ())
            if w > 0 and key[0] in types and key not in seen
        ]
        total = sum(w for _, w in picked)
        if total > 0:
            weight_sum += r
            evidence += r * total / (total + _CO_SUPPORT)
            scale = r / total
            for key, w in picked:
                part = scale * w
                co[key] = co.get(key, 0.0) + part
                best = source.get(key)
                if best is None or part > best[0]:
                    source[key] = (part, origin)
        r *= _RECENCY
    if weight_sum > 0:
        co = {key: value / weight_sum for key, value in co.items()}
    return co, source, evidence


def _category_shares(
    catalog: Catalog,
    popularity: Popularity,
    profile: VisitorProfile,
    now: datetime,
    rate: float,
) -> tuple[dict[int, float], float]:
    """P(category): the visitor's decayed raw affinity shrunk towards popular categories.

    ``(raw_c + _CAT_PRIOR * prior_c) / (sum(raw) + _CAT_PRIOR)``, with ``prior_c``
    the category's share of distinct visitors. Raw affinity keeps the order the
    capped score loses. Returns the shares and the total raw affinity (the evidence).
    """
    raw: dict[int, float] = {}
    for cid, state in profile.affinities.items():
        value = state.raw_at(now, rate)
        if value > 0 and catalog.category(cid) is not None:
            raw[cid] = value
    evidence = sum(raw.values())
    order = popularity.order(catalog, "category")
    denominator = evidence + _CAT_PRIOR
    shares: dict[int, float] = {}
    for category in order.ranked:
        if order.total:
            prior = popularity.of("category", category.id) / order.total
        else:
            prior = 1.0 / len(order.ranked)
        value = (raw.get(category.id, 0.0) + _CAT_PRIOR * prior) / denominator
        if value > 0:
            shares[category.id] = value
    return shares, evidence


def _blended_categories(
    catalog: Catalog,
    popularity: Popularity,
    neighbours: NeighbourMap,
    profile: VisitorProfile,
    now: datetime,
    rate: float,
    limit: int,
    context: TargetKey | None,
) -> _Ranked:
    """The categories most likely to hold the visitor's next item, as a covering list.

    The next item's categories are predicted by a mixture of the shrunk
    affinities and the categories of co-viewed items; the list is chosen
    greedily so that each category adds the most not yet covered probability
    (an item may sit in several categories). Its score is that added share.
    """
    shares, _ = _category_shares(catalog, popularity, profile, now, rate)
    seen = {(h.target_type, h.target_id) for h in profile.history}
    co, co_source, _ = _co_viewed(neighbours, _recent_items(profile, context), ITEM_TYPES, seen)
    mix = _CAT_CO_SHARE if co else 0.0
    mass: dict[tuple[int, ...], float] = {}
    for cid, share in shares.items():
        mass[(cid,)] = (1.0 - mix) * share
    viewed_from: dict[int, tuple[float, TargetKey]] = {}
    for key, share in co.items():
        cids = catalog.categories_of(*key)
        if cids:
            mass[cids] = mass.get(cids, 0.0) + mix * share
        for cid in cids:
            part = co_source[key]
            best = viewed_from.get(cid)
            if best is None or part[0] > best[0]:
                viewed_from[cid] = part
    gain: dict[int, float] = {}  # probability each category would newly cover
    holding: dict[int, list[tuple[int, ...]]] = {}  # category -> the category sets holding it
    for cids, value in mass.items():
        for cid in cids:
            gain[cid] = gain.get(cid, 0.0) + value
            holding.setdefault(cid, []).append(cids)
    marginal = dict(gain)

    ranked: _Ranked = []
    left = [c.id for c in catalog.categories]
    for _ in range(min(limit, len(left))):
        # Covered probability first, then the category's own; ties to the lower id.
        best_id = max(left, key=lambda c: (round(gain.get(c, 0.0), 12), marginal.get(c, 0.0), -c))
        left.remove(best_id)
        score = gain.get(best_id, 0.0)
        for cids in holding.get(best_id, ()):
            if cids in mass:
                value = mass.pop(cids)
                for cid in cids:
                    gain[cid] -= value
        category = catalog.category(best_id)
        state = profile.affinities.get(best_id)
        if state is not None and state.raw_at(now, rate) > 0:
            reason = shared_reason("category_affinity", category)
        elif best_id in viewed_from and (viewed := catalog.item(*viewed_from[best_id][1])):
            reason = shared_reason("co_viewed", viewed)
        else:
            reason = shared_reason("popular")
        ranked.append((("category", best_id), max(score, 0.0), reason))
    return ranked


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
    demote: frozenset[TargetKey],
    everything_needed: bool,
) -> Iterator[tuple[TargetKey, float, Reason]]:
    """``a * P_co + b * P_cat + c * P_pop`` over the candidate items, best first.

    Only scores are computed for every candidate; a reason is worked out for
    the items actually taken.
    """
    counts = popularity.counts.get(target_type, {})
    everything = popularity.order(catalog, target_type)

    # (a) co-occurrence: neighbours of recent items, recency-weighted.
    recent = _recent_items(profile, context)
    co, co_source, evidence_co = _co_viewed(neighbours, recent, (target_type,), seen)
    a = evidence_co / (evidence_co + _CO_EVIDENCE)
    # (b) category affinity, shrunk towards popular categories.
    shares, evidence_cat = _category_shares(catalog, popularity, profile, now, rate)
    b = (1.0 - a) * evidence_cat / (evidence_cat + _CAT_EVIDENCE)
    # (c) the popularity prior takes the rest.
    c = 1.0 - a - b

    # P_cat(i) = sum over i's categories of P(category) * count(i) / count(category).
    per_visitor: dict[int, float] = {}
    for cid, share in shares.items():
        total = popularity.order(catalog, target_type, cid).total
        if total:
            per_visitor[cid] = b * share / total
    pop_factor = c / everything.total if everything.total else 0.0

    # Candidates: co-viewed items, and the most popular items overall and of the
    # top categories (no other item can outscore them without co-occurrence).
    candidates: set[TargetKey] = set(co)
    depth = 2 * limit + 1
    candidates.update(_head(everything, target_type, seen, depth))
    for _, cid in heapq.nlargest(_TOP_CATEGORIES, ((v, cid) for cid, v in shares.items())):
        candidates.update(
            _head(popularity.order(catalog, target_type, cid), target_type, seen, depth)
        )

    # The hot loop of a request: locals bound once, no generator per candidate.
    item_of, count_of, co_of, factor_of = catalog.item, counts.get, co.get, per_visitor.get
    scored: dict[TargetKey, float] = {}
    for key in candidates:
        item = item_of(key[0], key[1])
        if item is None:
            continue
        score = a * co_of(key, 0.0)
        count = count_of(key[1], 0)
        if count:
            factor = pop_factor
            for cid in item.category_ids:
                factor += factor_of(cid, 0.0)
            score += count * factor
        if demote and key in demote:
            score *= _DEMOTE
        scored[key] = score

    n = len(scored) if everything_needed else limit
    for key, score in heapq.nlargest(n, scored.items(), key=lambda kv: (kv[1], -kv[0][1])):
        item = item_of(*key)
        assert item is not None  # scored items were looked up above
        count = counts.get(key[1], 0)
        p_co = a * co.get(key, 0.0)
        p_pop = count * pop_factor
        cat_parts = [(count * per_visitor.get(cid, 0.0), cid) for cid in item.category_ids]
        p_cat, best_cat = max(cat_parts, default=(0.0, 0))
        reason: Reason | None = None
        if p_co > 0 and p_co >= sum(p for p, _ in cat_parts) and p_co >= p_pop:
            reason = shared_reason("co_viewed", item_of(*co_source[key][1]))
        elif p_cat > 0 and p_cat >= p_pop:
            reason = shared_reason("category_affinity", catalog.category(best_cat))
        else:
            reason = shared_reason("popular", _first_category(item, catalog))
        yield key, score, reason


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
