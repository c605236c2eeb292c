"""Holdout visitors get popular content even when they have a history."""

from __future__ import annotations

from pathlib import Path

from penchant import Catalog, Category, Item, Penchant
from penchant.engine import ranking
from penchant.engine.experiments import assign_variant

CATALOG = Catalog(
    [Category(1, "Injectables"), Category(2, "Laser"), Category(3, "Surgery")],
    [Item("procedure", i, f"P{i}", ((i % 3) + 1,)) for i in range(1, 13)]
    + [Item("doctor", 1, "Dr. A", procedure_ids=(2, 5)), Item("doctor", 2, "Dr. B", (3,))],
)


def test_holdout_visitors_never_get_personalized_content(tmp_path: Path) -> None:
    penchant = Penchant(
        database_url=f"sqlite:///{tmp_path / 'h.db'}",
        secret_key="k-0123456789abcdef",
        catalog=CATALOG,
        holdout=0.5,
        experiment_key="exp",
    )
    penchant.init_db()
    visitors = [f"{i:032x}" for i in range(40)]
    for user in visitors:
        for item in (2, 5, 8):  # all in category 3 (Surgery)
            assert penchant.track("click", "procedure", item, user_id=user)
    assert penchant.flush(timeout=10)
    popularity = penchant.popularity()
    seen = {"holdout": 0, "personalized": 0}
    for user in visitors:
        variant = assign_variant(user, key="exp", holdout=0.5)
        seen[variant] += 1
        for content_type in ("categories", "procedures", "doctors"):
            recs = penchant.recommend(content_type, user, limit=3)
            if variant == "holdout":
                popular = ranking.popular(content_type, CATALOG, popularity, limit=3)
                assert [r.item.id for r in recs] == [r.item.id for r in popular]
                assert {r.reason.kind for r in recs} == {"holdout"}
            else:
                assert "holdout" not in {r.reason.kind for r in recs}
        if variant == "personalized":
            top = penchant.recommend("categories", user, limit=1)[0]
            assert top.item.id == 3 and top.reason.kind != "popular"
    assert seen["holdout"] > 5 and seen["personalized"] > 5
    penchant.close()
