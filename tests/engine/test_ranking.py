from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

from penchant.engine.affinity import AffinityState
from penchant.engine.catalog import Catalog, Category, Item
from penchant.engine.ranking import (
    CONTENT_TYPES,
    HISTORY_DEPTH,
    HistoryEntry,
    NeighbourMap,
    Popularity,
    Reason,
    Recommendation,
    VisitorProfile,
    as_holdout,
    popular,
    recommend,
)

NOW = datetime(2026, 3, 1, 12, 0, 0)
INJECTABLES, LASER, SURGERY, SKIN = (
    Category(1, "Injectables"),
    Category(2, "Laser"),
    Category(3, "Surgery"),
    Category(4, "Skin"),
)
BOTOX = Item("procedure", 10, "Botox", (1,))
CATALOG = Catalog(
    [INJECTABLES, LASER, SURGERY, SKIN],
    [
        BOTOX,
        Item("procedure", 11, "Filler", (1,)),
        Item("procedure", 12, "Lip filler", (1,)),
        Item("procedure", 13, "Laser resurfacing", (2,)),
        Item("procedure", 14, "Hair removal", (2,)),
        Item("procedure", 15, "Rhinoplasty", (3,)),
        Item("procedure", 16, "Facelift", (3,)),
        Item("procedure", 17, "Peel", (4,)),
        Item("doctor", 20, "Dr. Rossi", procedure_ids=(10, 13)),
        Item("doctor", 21, "Dr. Chen", procedure_ids=(15,)),
        Item("doctor", 22, "Dr. Okafor", procedure_ids=(17,)),
        Item("package", 30, "Glow", procedure_ids=(13, 17)),
    ],
)
POPULARITY = Popularity(
    {
        "procedure": {13: 90, 15: 70, 17: 50, 10: 30, 11: 20, 14: 20, 16: 5},
        "doctor": {21: 40, 20: 10},
        "category": {2: 300, 3: 200, 1: 150, 4: 100},
    }
)


def ids(recs: Sequence[Recommendation]) -> list[int]:
    return [r.item.id for r in recs]


def popular_order(target_type: str, popularity: Popularity = POPULARITY) -> list[int]:
    """The popular order worked out independently: most visitors first, lower id on ties."""
    candidates = CATALOG.categories if target_type == "category" else CATALOG.items(target_type)
    return [
        c.id for c in sorted(candidates, key=lambda c: (-popularity.of(target_type, c.id), c.id))
    ]


def viewed(
    *item_ids: int, kind: str = "view", target_type: str = "procedure"
) -> list[HistoryEntry]:
    """History entries, most recent first, one minute apart."""
    return [
        HistoryEntry(kind, target_type, i, NOW - timedelta(minutes=k))
        for k, i in enumerate(item_ids)
    ]


def rec(
    content_type: str,
    profile: VisitorProfile | None,
    *,
    neighbours: NeighbourMap | None = None,
    popularity: Popularity = POPULARITY,
    limit: int = 5,
    **options: object,
) -> list[Recommendation]:
    return recommend(
        content_type,
        catalog=CATALOG,
        profile=profile,
        popularity=popularity,
        neighbours=neighbours or {},
        now=NOW,
        limit=limit,
        **options,  # type: ignore[arg-type]
    )


def affinity(cid: int, raw: float, *, days_ago: float = 0.0) -> AffinityState:
    return AffinityState(cid, min(1.0, raw), raw, NOW - timedelta(days=days_ago))


# ------------------------------------------------------------------ reasons
def test_reasons_render_as_sentences() -> None:
    assert str(Reason("co_viewed", BOTOX)) == "Because you viewed Botox"
    assert str(Reason("popular", INJECTABLES)) == "Popular in Injectables"
    assert str(Reason("category_affinity", INJECTABLES)) == "Because you like Injectables"
    assert str(Reason("contextual", INJECTABLES)) == "Related to Injectables"
    assert str(Reason("popular")) == "Popular"
    assert str(Reason("holdout")) == "Popular"


def test_reason_and_recommendation_as_dict() -> None:
    recommendation = Recommendation(BOTOX, 0.1234567, Reason("popular", INJECTABLES))
    out = recommendation.as_dict()
    assert out["type"] == "procedure" and out["id"] == 10 and out["name"] == "Botox"
    assert out["score"] == 0.123457
    assert out["reason"] == {
        "kind": "popular",
        "text": "Popular in Injectables",
        "source": {"type": "category", "id": 1, "name": "Injectables"},
    }
    assert Reason("holdout").as_dict() == {"kind": "holdout", "text": "Popular"}


def test_ranked_lists_share_their_reasons_and_the_store_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cached lists hold a reason per line: equal reasons are one object, and a
    catalog entry replaced by an equal one gets its own (its name, URL may differ)."""
    import penchant.engine.ranking as ranking_module

    first = rec("procedures", None)
    again = rec("procedures", None)
    assert [r.reason for r in first] == [r.reason for r in again]
    assert all(a.reason is b.reason for a, b in zip(first, again, strict=True))
    renamed = Category(1, "Injectables")  # equal to INJECTABLES, not the same object
    assert renamed == INJECTABLES
    reason = ranking_module.shared_reason("popular", renamed)
    assert reason.source is renamed and reason is ranking_module.shared_reason("popular", renamed)
    assert reason is not ranking_module.shared_reason("popular", INJECTABLES)
    monkeypatch.setattr(ranking_module, "REASONS_KEPT", 3)
    sources = [Category(100 + n, f"C{n}") for n in range(10)]
    made = [ranking_module.shared_reason("popular", source) for source in sources]
    assert [str(r) for r in made] == [f"Popular in C{n}" for n in range(10)]
    # the store started again on the way: the newest is still shared, the oldest is not
    assert ranking_module.shared_reason("popular", sources[-1]) is made[-1]
    assert ranking_module.shared_reason("popular", sources[0]) is not made[0]


def test_recommended_reasons_name_their_source() -> None:
    profile = VisitorProfile("v", {}, viewed(10))
    neighbours = {("procedure", 10): [(("procedure", 16), 50.0)]}
    recs = rec("procedures", profile, neighbours=neighbours)
    assert str(recs[0].reason) == "Because you viewed Botox"
    assert recs[0].item.id == 16
    # The rest is popular content, each named by its category.
    assert all(r.reason.kind == "popular" for r in recs[1:])
    assert (
        str(recs[1].reason) == f"Popular in {CATALOG.category(recs[1].item.category_ids[0]).name}"
    )  # type: ignore[union-attr]


def test_as_holdout_keeps_items_and_scores() -> None:
    recs = rec("procedures", None)
    held = as_holdout(recs)
    assert ids(held) == ids(recs)
    assert [r.score for r in held] == [r.score for r in recs]
    assert {r.reason.kind for r in held} == {"holdout"}


# ---------------------------------------------------------------- fallback
@pytest.mark.parametrize("content_type", list(CONTENT_TYPES))
@pytest.mark.parametrize("profile", [None, VisitorProfile("v")])
def test_no_history_gets_popular_content(content_type: str, profile: VisitorProfile | None) -> None:
    target_type = CONTENT_TYPES[content_type]
    expected = popular_order(target_type)
    recs = rec(content_type, profile, limit=3)
    assert ids(recs) == expected[:3]
    assert all(r.reason.kind == "popular" for r in recs)
    assert all(r.item.target_type == target_type for r in recs)
    assert ids(popular(content_type, CATALOG, POPULARITY, limit=3)) == expected[:3]


def test_popular_fills_with_unvisited_items_and_respects_exclude() -> None:
    everything = popular_order("procedure")
    assert ids(rec("procedures", None, limit=50)) == everything  # every item, no more
    excluded = frozenset({("procedure", everything[0])})
    assert (
        ids(popular("procedures", CATALOG, POPULARITY, limit=3, exclude=excluded))
        == (everything[1:4])
    )


def test_popular_score_is_distinct_visitors() -> None:
    top = popular("procedures", CATALOG, POPULARITY, limit=1)[0]
    assert top.score == POPULARITY.of("procedure", top.item.id)
    assert str(top.reason) == "Popular in Laser"


def test_popular_order_is_computed_once_per_popularity() -> None:
    popularity = Popularity({"procedure": {11: 3}})
    first = popularity.order(CATALOG, "procedure")
    assert popularity.order(CATALOG, "procedure") is first
    assert first.ranked[0].id == 11
    assert first.total == 3
    # A new catalog (a refresh) gets its own order.
    other = Catalog([], [Item("procedure", 99, "New")])
    assert [i.id for i in popularity.order(other, "procedure").ranked] == [99]


def test_empty_popularity_ranks_by_catalog_order() -> None:
    recs = rec("categories", None, popularity=Popularity(), limit=2)
    assert ids(recs) == [1, 2]
    assert all(r.score == 0.0 for r in recs)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="content type"):
        rec("surgeons", None)
    with pytest.raises(ValueError, match="strategy"):
        rec("procedures", None, strategy="random")
    assert rec("procedures", None, limit=0) == []


# ----------------------------------------------------------------- blended
def test_thin_co_occurrence_counts_little() -> None:
    # One co-view (weight 1) is weak evidence against what many visitors chose.
    profile = VisitorProfile("v", {}, viewed(10))
    weak = rec("procedures", profile, neighbours={("procedure", 10): [(("procedure", 16), 1.0)]})
    strong = rec("procedures", profile, neighbours={("procedure", 10): [(("procedure", 16), 50.0)]})
    assert ids(weak)[0] == popular_order("procedure")[0]
    assert ids(strong)[0] == 16
    assert ids(weak).index(16) > 0


def test_blended_without_signal_is_the_popular_order() -> None:
    # One view, no co-occurrence and no affinity: nothing better to go on than popular.
    profile = VisitorProfile("v", {}, viewed(13))
    expected = [i for i in popular_order("procedure") if i != 13]
    assert ids(rec("procedures", profile, limit=6)) == expected[:6]


def test_blended_never_below_popular_with_a_thin_history() -> None:
    # One view of Botox, whose co-viewed item is Lip filler (never popular). The
    # visitor's next item is Lip filler: popular misses it, blended must not.
    profile = VisitorProfile("v", {1: affinity(1, 0.1)}, viewed(10))
    neighbours = {("procedure", 10): [(("procedure", 12), 20.0), (("procedure", 11), 10.0)]}
    blended = ids(rec("procedures", profile, neighbours=neighbours, limit=3))
    baseline = ids(popular("procedures", CATALOG, POPULARITY, limit=3))
    assert 12 in blended and 12 not in baseline
    assert blended[0] == 12
    # Whatever blended gains it keeps the most popular unseen items after it.
    assert popular_order("procedure")[0] in blended


def test_category_affinity_promotes_items_of_that_category() -> None:
    # A strong liking for Surgery, no co-occurrence: Surgery's items move up.
    history = viewed(21, target_type="doctor")
    liking = VisitorProfile("v", {3: affinity(3, 3.0)}, history)
    neutral = VisitorProfile("v", {}, history)
    recs = rec("procedures", liking, limit=8)
    before = ids(rec("procedures", neutral, limit=8))
    assert recs[0].item.id == 15 and before[0] != 15
    assert ids(recs).index(16) < before.index(16)
    assert str(recs[0].reason) == "Because you like Surgery"


def test_neighbours_of_another_type_feed_doctors() -> None:
    profile = VisitorProfile("v", {}, viewed(17))
    neighbours = {("procedure", 17): [(("doctor", 22), 40.0), (("procedure", 11), 80.0)]}
    recs = rec("doctors", profile, neighbours=neighbours, limit=3)
    assert recs[0].item.id == 22
    assert str(recs[0].reason) == "Because you viewed Peel"
    assert all(r.item.target_type == "doctor" for r in recs)


def test_recent_items_count_more_than_older_ones() -> None:
    profile = VisitorProfile("v", {}, viewed(10, 17))  # Botox is the most recent
    neighbours = {
        ("procedure", 10): [(("procedure", 12), 10.0)],
        ("procedure", 17): [(("procedure", 16), 10.0)],
    }
    recs = rec("procedures", profile, neighbours=neighbours, limit=2)
    assert ids(recs) == [12, 16]
    assert [str(r.reason) for r in recs] == ["Because you viewed Botox", "Because you viewed Peel"]


def test_history_order_is_taken_from_timestamps() -> None:
    older_first = list(reversed(viewed(10, 17)))
    neighbours = {
        ("procedure", 10): [(("procedure", 12), 10.0)],
        ("procedure", 17): [(("procedure", 16), 10.0)],
    }
    recs = rec("procedures", VisitorProfile("v", {}, older_first), neighbours=neighbours)
    assert ids(recs)[:2] == [12, 16]


def test_context_leads_the_visitor_history() -> None:
    profile = VisitorProfile("v", {}, viewed(10))
    neighbours = {
        ("procedure", 10): [(("procedure", 12), 10.0)],
        ("procedure", 14): [(("procedure", 16), 10.0)],
    }
    recs = rec("procedures", profile, neighbours=neighbours, context=("procedure", 14))
    assert ids(recs)[:2] == [16, 12]
    assert 14 not in ids(recs)


def test_smooth_scores_break_ties_between_heavy_visitors() -> None:
    # Both visitors sit at the cap (1.0) in Injectables and Laser; only raw differs.
    a = VisitorProfile("a", {1: affinity(1, 6.0), 2: affinity(2, 3.0)}, viewed(10))
    b = VisitorProfile("b", {1: affinity(1, 3.0), 2: affinity(2, 6.0)}, viewed(13))
    assert a.affinities[1].score == a.affinities[2].score == 1.0
    assert ids(rec("categories", a, limit=2)) == [1, 2]
    assert ids(rec("categories", b, limit=2)) == [2, 1]
    # The original ranks by the capped score: the two visitors tie, the lower id wins.
    assert ids(rec("categories", a, strategy="original", limit=2)) == [1, 2]
    assert ids(rec("categories", b, strategy="original", limit=2)) == [1, 2]


def test_affinity_is_decayed_to_now() -> None:
    # Surgery was liked more, but long ago; Skin a little, today.
    profile = VisitorProfile("v", {3: affinity(3, 2.0, days_ago=60), 4: affinity(4, 0.5)}, [])
    assert ids(rec("categories", profile, limit=1)) == [4]
    assert ids(rec("categories", profile, strategy="original", limit=1)) == [3]


def test_blended_categories_blend_affinity_with_popular_categories() -> None:
    # One light view of Skin (raw 0.1) is shrunk towards the popular categories;
    # ten views' worth (raw 1.0) put Skin first. Skin is the least popular.
    light = VisitorProfile("v", {4: affinity(4, 0.1)}, viewed(17))
    heavy = VisitorProfile("v", {4: affinity(4, 1.0)}, viewed(17))
    nothing = rec("categories", VisitorProfile("v", {}, viewed(17)), limit=4)
    light_recs = rec("categories", light, limit=4)
    heavy_recs = rec("categories", heavy, limit=4)
    assert ids(nothing) == popular_order("category")
    # Skin moves up, but one light view does not outweigh what most visitors like.
    assert ids(light_recs)[0] == popular_order("category")[0]
    assert ids(light_recs).index(4) < ids(nothing).index(4)
    assert ids(heavy_recs) == [4, *[c for c in popular_order("category") if c != 4]]
    assert str(heavy_recs[0].reason) == "Because you like Skin"
    assert heavy_recs[1].reason.kind == "popular"
    scores = [r.score for r in heavy_recs]
    assert scores == sorted(scores, reverse=True)
    assert sum(scores) == pytest.approx(1.0)  # single categories: the shares themselves


def test_blended_categories_follow_co_viewed_items() -> None:
    # Viewing Peel, whose co-viewed items are surgeries: Surgery is suggested for it.
    profile = VisitorProfile("v", {4: affinity(4, 0.1)}, viewed(17))
    neighbours = {("procedure", 17): [(("procedure", 15), 30.0), (("procedure", 16), 10.0)]}
    assert ids(rec("categories", profile, limit=1)) != [3]
    recs = rec("categories", profile, neighbours=neighbours, limit=2)
    assert recs[0].item.id == 3
    assert str(recs[0].reason) == "Because you viewed Peel"


def test_category_list_covers_items_in_several_categories() -> None:
    # Items in both Laser and Skin: once Laser is listed, Skin adds little.
    catalog = Catalog(
        [LASER, SKIN, SURGERY],
        [Item("procedure", i, f"Combo {i}", (2, 4)) for i in range(1, 4)]
        + [Item("procedure", 9, "Rhinoplasty", (3,))],
    )
    popularity = Popularity({"procedure": {1: 30, 2: 30, 3: 30, 9: 20}})
    profile = VisitorProfile("v", {}, viewed(5))
    neighbours = {
        ("procedure", 5): [
            (("procedure", 1), 1.0),
            (("procedure", 2), 1.0),
            (("procedure", 3), 1.0),
            (("procedure", 9), 2.0),
        ]
    }
    recs = recommend(
        "categories",
        catalog=catalog,
        profile=profile,
        popularity=popularity,
        neighbours=neighbours,
        now=NOW,
        limit=3,
    )
    # Half the mass is co-viewed items: Laser and Skin each hold 3/5 of it, Surgery
    # 2/5. The other half is the (here uniform) prior, 1/3 per category. Laser
    # first; then Surgery covers more of what is left than Skin, whose co-viewed
    # items Laser already covers.
    assert ids(recs) == [2, 3, 4]
    prior = 0.5 / 3
    assert [r.score for r in recs] == pytest.approx([0.3 + prior, 0.2 + prior, prior])


# ----------------------------------------------------------------- original
def test_original_items_follow_the_top_categories() -> None:
    profile = VisitorProfile(
        "v", {1: affinity(1, 0.3), 3: affinity(3, 0.6), 4: affinity(4, 0.2)}, viewed(16)
    )
    recs = rec("procedures", profile, strategy="original", limit=6)
    # Surgery (0.6) first: Rhinoplasty (70 visitors); Facelift was seen. Then
    # Injectables (0.3) by popularity, then Skin (0.2): Peel.
    assert ids(recs) == [15, 10, 11, 12, 17, 13]
    assert [r.reason.kind for r in recs] == ["category_affinity"] * 5 + ["popular"]
    assert str(recs[0].reason) == "Because you like Surgery"
    assert recs[0].score == pytest.approx(0.6)


def test_original_with_only_unknown_categories_is_popular() -> None:
    profile = VisitorProfile("v", {99: affinity(99, 0.5)}, viewed(10))
    expected = [i for i in popular_order("procedure") if i != 10]
    assert ids(rec("procedures", profile, strategy="original", limit=4)) == expected[:4]
    assert (
        ids(rec("categories", profile, strategy="original", limit=2))
        == (popular_order("category")[:2])
    )


# ------------------------------------------------------ diversity and seen
def test_diversity_cap_limits_items_per_category() -> None:
    profile = VisitorProfile("v", {1: affinity(1, 5.0)}, viewed(16))
    neighbours = {("procedure", 16): [(("procedure", 11), 30.0), (("procedure", 12), 20.0)]}
    uncapped = rec("procedures", profile, neighbours=neighbours, limit=4)
    capped = rec("procedures", profile, neighbours=neighbours, limit=4, max_per_category=1)
    primary = [r.item.category_ids[0] for r in uncapped]  # type: ignore[union-attr]
    assert len(set(primary)) < len(primary)  # the cap has something to do
    categories = [r.item.category_ids[0] for r in capped]  # type: ignore[union-attr]
    assert len(categories) == 4 and len(set(categories)) == 4
    assert capped[0].item.id == uncapped[0].item.id  # the best item stays first


def test_diversity_cap_gives_way_to_fill_the_list() -> None:
    profile = VisitorProfile("v", {}, viewed(16))
    recs = rec("procedures", profile, limit=7, max_per_category=1)
    assert len(recs) == 7  # 4 categories, 7 unseen items: the cap relaxes
    assert len({r.item.id for r in recs}) == 7
    first_four = [r.item.category_ids[0] for r in recs[:4]]  # type: ignore[union-attr]
    assert sorted(first_four) == [1, 2, 3, 4]


def test_exclude_seen_removes_history_items() -> None:
    seen = [13, 15, 17]
    profile = VisitorProfile("v", {}, viewed(*seen))
    neighbours = {("procedure", 13): [(("procedure", 15), 90.0), (("procedure", 14), 10.0)]}
    recs = rec("procedures", profile, neighbours=neighbours, limit=5)
    assert not set(ids(recs)) & set(seen)
    assert len(recs) == 5


def test_seen_items_are_demoted_when_not_excluded() -> None:
    # Laser resurfacing (90 visitors) was seen; Rhinoplasty has 70. Halved, 90 < 70.
    profile = VisitorProfile("v", {}, viewed(13))
    recs = rec("procedures", profile, limit=8, exclude_seen=False)
    order = ids(recs)
    assert 13 in order
    assert order.index(15) < order.index(13) < order.index(10)
    excluded = rec("procedures", profile, limit=8)
    assert 13 not in ids(excluded)


# ---------------------------------------------------------------- contextual
def test_context_without_profile_gives_co_viewed_then_related_then_popular() -> None:
    neighbours = {("procedure", 10): [(("procedure", 16), 20.0), (("doctor", 20), 10.0)]}
    recs = rec("procedures", None, neighbours=neighbours, context=("procedure", 10), limit=5)
    assert ids(recs)[:3] == [16, 11, 12]  # co-viewed, then Injectables by popularity
    assert 10 not in ids(recs)
    assert str(recs[0].reason) == "Because you viewed Botox"
    assert str(recs[1].reason) == "Related to Injectables"
    assert recs[3].reason.kind == "popular"


def test_context_category_page_leads_with_its_items() -> None:
    recs = rec("procedures", None, context=("category", 3), limit=3)
    assert ids(recs)[:2] == [15, 16]
    assert str(recs[0].reason) == "Related to Surgery"
    categories = rec("categories", None, context=("category", 3), limit=4)
    assert 3 not in ids(categories)  # not the page being viewed


def test_context_item_leads_category_recommendations() -> None:
    recs = rec("categories", None, context=("package", 30), limit=3)
    assert ids(recs)[:2] == [2, 4]  # Glow's categories, via its procedures
    assert str(recs[0].reason) == "Related to Glow"
    assert recs[2].reason.kind == "popular"


@pytest.mark.parametrize("context", [("procedure", 999), ("page", 1)])
def test_unknown_context_is_popular(context: tuple[str, int]) -> None:
    assert ids(rec("procedures", None, context=context, limit=3)) == popular_order("procedure")[:3]
    assert ids(rec("categories", None, context=context, limit=2)) == popular_order("category")[:2]


# ---------------------------------------------------------------- edge cases
def test_unknown_targets_and_categories_are_skipped() -> None:
    catalog = Catalog(
        [INJECTABLES, SKIN],
        [
            BOTOX,
            Item("procedure", 40, "Mystery", (77,)),  # a category the catalog lacks
            Item("doctor", 41, "Dr. Nobody"),  # no categories at all
            Item("doctor", 42, "Dr. Lee", procedure_ids=(10,)),
        ],
    )
    popularity = Popularity({"procedure": {40: 9, 10: 1}, "category": {1: 5}})
    neighbours: NeighbourMap = {
        ("procedure", 10): [
            (("procedure", 404), 50.0),  # gone from the catalog
            (("doctor", 41), 50.0),
            (("procedure", 40), 0.0),  # no weight: ignored
        ]
    }
    history = [
        *viewed(10),
        HistoryEntry("view", "category", 1, NOW - timedelta(hours=1)),
        HistoryEntry("view", "page", 3, NOW - timedelta(hours=2)),
    ]
    profile = VisitorProfile("v", {1: affinity(1, 0.5), 99: affinity(99, 4.0)}, history)

    def run(
        content_type: str, who: VisitorProfile | None, **options: object
    ) -> list[Recommendation]:
        return recommend(
            content_type,
            catalog=catalog,
            profile=who,
            popularity=popularity,
            neighbours=neighbours,
            now=NOW,
            limit=3,
            **options,  # type: ignore[arg-type]
        )

    procedures = run("procedures", profile)
    assert ids(procedures) == [40]  # Botox was seen; 404 does not exist
    assert str(procedures[0].reason) == "Popular"  # its category is unknown
    doctors = run("doctors", profile)
    assert ids(doctors) == [41, 42]
    assert str(doctors[0].reason) == "Because you viewed Botox"
    # Skin: no visitors, no affinity: nothing to go on, listed last.
    assert ids(run("categories", profile)) == [1, 4]
    assert ids(run("procedures", None, context=("procedure", 10))) == [40]


def test_only_the_most_recent_items_are_consulted() -> None:
    # Botox is just beyond the most recent distinct items: its neighbours are not consulted.
    history = [
        *viewed(*range(100, 100 + HISTORY_DEPTH)),
        HistoryEntry("view", "procedure", 10, NOW - timedelta(days=1)),
    ]
    neighbours = {("procedure", 10): [(("procedure", 16), 100.0)]}
    recs = rec("procedures", VisitorProfile("v", {}, history), neighbours=neighbours)
    assert 16 not in ids(recs)
    recent = rec("procedures", VisitorProfile("v", {}, history[-1:]), neighbours=neighbours)
    assert ids(recent)[0] == 16


def test_stale_popular_orders_are_dropped() -> None:
    popularity = Popularity({"procedure": {10: 1}})
    first = popularity.order(CATALOG, "procedure")
    for cid in range(1100):
        popularity.order(CATALOG, "procedure", cid)
    assert popularity.order(CATALOG, "procedure") == first
    assert popularity.order(CATALOG, "procedure", 1).ranked[0].id == 10
