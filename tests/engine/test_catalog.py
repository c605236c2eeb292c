from __future__ import annotations

import pytest

from penchant.engine.catalog import Catalog, Category, Item


@pytest.fixture
def catalog() -> Catalog:
    return Catalog(
        [
            Category(1, "Injectables", keywords=("botox", "filler")),
            Category(2, "Laser treatments", slug="laser"),
        ],
        [
            Item("procedure", 1, "Botox", (1,)),
            Item("procedure", 2, "Lip filler", (1,)),
            Item("procedure", 3, "Tattoo removal", (2,)),
            Item("doctor", 1, "Dr. Rossi", procedure_ids=(1, 3)),
            Item("doctor", 2, "Dr. Lee", category_ids=(2,), procedure_ids=(1,)),
            Item("package", 1, "Fresh face", procedure_ids=(2,)),
        ],
    )


def test_categories_derived_through_procedures(catalog: Catalog) -> None:
    assert catalog.categories_of("doctor", 1) == (1, 2)
    assert catalog.categories_of("package", 1) == (1,)
    # explicit categories win over derived ones
    assert catalog.categories_of("doctor", 2) == (2,)
    assert catalog.categories_of("category", 2) == (2,)


def test_unknown_targets_move_nothing(catalog: Catalog) -> None:
    assert catalog.categories_of("procedure", 99) == ()
    assert catalog.categories_of("category", 99) == ()
    assert catalog.categories_of("page", None) == ()


def test_items_in_category(catalog: Catalog) -> None:
    assert [i.id for i in catalog.items_in("procedure", 1)] == [1, 2]
    assert [i.id for i in catalog.items_in("doctor", 1)] == [1]
    assert [i.id for i in catalog.items("doctor")] == [1, 2]


def test_search_query_matches_category_words_and_procedure_names(catalog: Catalog) -> None:
    assert catalog.categories_for_query("BOTOX near me") == (1,)
    assert catalog.categories_for_query("laser") == (2,)
    assert catalog.categories_for_query("tattoo") == (2,)
    assert catalog.categories_for_query("!!!") == ()
    assert catalog.categories_for_query("unrelated words") == ()


def test_bad_item_type() -> None:
    with pytest.raises(ValueError, match="item type"):
        Item("banana", 1, "x")
