"""The demo catalog is big enough to be believable and internally consistent."""

from __future__ import annotations

from collections import Counter

from demo_app.catalog import CATEGORIES, DOCTORS, PACKAGES, PROCEDURES, build_catalog


def test_sizes() -> None:
    catalog = build_catalog()
    assert len(catalog.categories) >= 10
    assert len(catalog.items("procedure")) >= 60
    assert len(catalog.items("doctor")) >= 40
    assert len(catalog.items("package")) >= 5


def test_ids_and_names_are_unique() -> None:
    for rows in (CATEGORIES, PROCEDURES, DOCTORS, PACKAGES):
        ids = [row.id for row in rows]
        assert len(ids) == len(set(ids))
        names = [row.name for row in rows]
        assert len(names) == len(set(names)), Counter(names).most_common(3)


def test_every_category_has_procedures_and_doctors() -> None:
    catalog = build_catalog()
    for category in catalog.categories:
        assert len(catalog.items_in("procedure", category.id)) >= 3, category.name
        assert catalog.items_in("doctor", category.id), category.name


def test_every_doctor_and_package_has_known_procedures() -> None:
    catalog = build_catalog()
    for kind in ("doctor", "package"):
        for item in catalog.items(kind):
            assert item.procedure_ids, item.name
            for pid in item.procedure_ids:
                assert catalog.item("procedure", pid) is not None, (item.name, pid)
            # Categories are derived from the procedures.
            assert item.category_ids, item.name


def test_every_procedure_is_offered_by_some_doctor() -> None:
    offered = {pid for d in DOCTORS for pid in d.procedure_ids}
    missing = [p.name for p in PROCEDURES if p.id not in offered]
    assert len(missing) <= 3, missing


def test_procedure_facts() -> None:
    catalog = build_catalog()
    category_ids = {c.id for c in catalog.categories}
    for item in catalog.items("procedure"):
        a = item.attributes
        assert 0 < a["price_min"] <= a["price_max"], item.name
        assert a["description"] and a["recovery"] and a["duration"], item.name
        assert set(item.category_ids) <= category_ids
        assert item.url == f"/procedures/{item.id}"


def test_search_words_find_their_category() -> None:
    catalog = build_catalog()
    for category in catalog.categories:
        for word in category.keywords[:2]:
            assert category.id in catalog.categories_for_query(word), (category.name, word)
