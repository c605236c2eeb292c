"""The versioned schema: migrations, upgrades of older databases with their rows,
and first-use creation that never alters a database behind the current schema."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from penchant.storage import schema_version
from penchant.storage.schema import metadata
from penchant.storage.schema_version import VERSION_TABLE, SchemaError
from penchant.storage.store import Store

AT = datetime(2026, 1, 2, 3, 4, 5)
VISITOR = "ab" * 16

# One row for every table of the first schema (0001), as its code wrote them.
FIRST_ROWS: dict[str, list[dict[str, object]]] = {
    "user_interactions": [
        {
            "user_id": VISITOR,
            "session_id": "s" * 64,
            "interaction_type": "view",
            "target_type": "procedure",
            "target_id": 10,
            "extra_data": '{"path": "/procedures/10"}',
            "timestamp": AT,
            "event_id": "e" * 32,
        }
    ],
    "user_category_affinity": [
        {
            "user_id": VISITOR,
            "category_id": 1,
            "affinity_score": 0.3,
            "last_updated": AT,
            "raw_score": 0.3,
        }
    ],
    "penchant_meta": [{"key": "secret_key", "value": "0" * 64}],
    "penchant_dead_letter": [{"failed_at": AT, "error": "ValueError: bad", "payload": "{}"}],
    "penchant_item_neighbours": [
        {
            "item_type": "procedure",
            "item_id": 10,
            "neighbour_type": "procedure",
            "neighbour_id": 11,
            "score": 2.0,
            "last_updated": AT,
        }
    ],
    "penchant_exposures": [
        {
            "user_id": VISITOR,
            "session_id": "s" * 64,
            "page_view_id": "p" * 32,
            "variant": "personalized",
            "content_type": "procedures",
            # [target_type, target_id, position], stored out of order
            "items": '[["procedure", 11, 1], ["procedure", 10, 0], ["procedure", 12, 2]]',
            "timestamp": AT,
        }
    ],
}
SECOND_ROWS: dict[str, list[dict[str, object]]] = {
    **FIRST_ROWS,
    "penchant_exposures": [
        {**FIRST_ROWS["penchant_exposures"][0], "items": '{"procedures":[10,11,12]}', "lists": 1}
    ],
    "penchant_changes": [{"bucket": 4242, "changed_at": AT}],
    "penchant_popular_days": [
        {"day": AT.date(), "target_type": "procedure", "target_id": 10, "visitors": 3}
    ],
}


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store(database_url)
    yield s
    s.dispose()


def _insert(store: Store, rows: dict[str, list[dict[str, object]]]) -> None:
    reflected = sa.MetaData()
    with store.transaction(write=True) as conn:
        reflected.reflect(conn)
        for name, values in rows.items():
            conn.execute(reflected.tables[name].insert(), values)


def _rows(store: Store, name: str) -> list[dict[str, object]]:
    reflected = sa.MetaData()
    with store.transaction() as conn:
        reflected.reflect(conn, only=[name])
        table = reflected.tables[name]
        return [dict(r._mapping) for r in conn.execute(sa.select(table))]


def _tables(store: Store) -> set[str]:
    with store.transaction() as conn:
        return set(sa.inspect(conn).get_table_names())


def _first_schema_unversioned(store: Store) -> None:
    """A database as the first schema's code left it: its tables, no version table."""
    with store.transaction(write=True) as conn:
        schema_version.migrate(conn, "0001")
        conn.execute(sa.text(f"DROP TABLE {VERSION_TABLE}"))


def _subset(row: dict[str, object], expected: dict[str, object]) -> dict[str, object]:
    return {key: row[key] for key in expected}


def test_the_migrations_build_exactly_the_schema_the_code_declares(store: Store) -> None:
    with store.transaction(write=True) as conn:
        schema_version.migrate(conn)
    with store.transaction() as conn:
        differences = compare_metadata(
            MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}), metadata
        )
    assert differences == []
    assert schema_version.current(store).revision == schema_version.head() == "0003"


def test_an_empty_database_is_created_at_the_current_revision(store: Store) -> None:
    assert schema_version.current(store).is_empty
    state = schema_version.ensure(store)
    assert (state.revision, state.created) == ("0003", True)
    assert {t.name for t in metadata.sorted_tables} | {VERSION_TABLE} == _tables(store)
    again = schema_version.ensure(store)
    assert (again.revision, again.created) == ("0003", False)


def test_a_database_made_before_versioning_is_upgraded_with_every_row(store: Store) -> None:
    # what the code before the versioned schema did on first use: create_all, no version
    with store.transaction(write=True) as conn:
        metadata.create_all(conn)
    _insert(store, SECOND_ROWS)
    assert schema_version.current(store).revision == "0003"  # told by its tables

    before, after = schema_version.upgrade(store)

    assert (before.revision, after.revision) == ("0003", "0003")
    assert VERSION_TABLE in _tables(store)
    for name, expected in SECOND_ROWS.items():
        rows = _rows(store, name)
        assert [_subset(row, expected[0]) for row in rows] == expected, name


@pytest.mark.parametrize("versioned", [False, True], ids=["unversioned", "versioned"])
def test_the_first_schema_is_migrated_with_its_rows(store: Store, versioned: bool) -> None:
    if versioned:
        with store.transaction(write=True) as conn:
            schema_version.migrate(conn, "0001")
    else:
        _first_schema_unversioned(store)
    _insert(store, FIRST_ROWS)
    assert schema_version.current(store).is_behind

    before, after = schema_version.upgrade(store)

    assert (before.revision, after.revision) == ("0001", "0003")
    for name, expected in FIRST_ROWS.items():
        if name == "penchant_exposures":
            continue
        assert [_subset(row, expected[0]) for row in _rows(store, name)] == expected, name
    (exposure,) = _rows(store, "penchant_exposures")
    assert exposure["lists"] == 1
    assert exposure["content_type"] == "procedures"
    assert json.loads(str(exposure["items"])) == {"procedures": [10, 11, 12]}  # by position
    assert _rows(store, "penchant_changes") == []
    # the visitor's export reads the migrated exposure in the current form
    exported = store.export(VISITOR)
    assert exported["exposures"] == [
        {
            "page_view_id": "p" * 32,
            "session_id": "s" * 64,
            "variant": "personalized",
            "lists": ["procedures"],
            "items": {"procedures": [10, 11, 12]},
            "timestamp": AT.isoformat(),
        }
    ]
    with store.transaction() as conn:
        assert (
            compare_metadata(
                MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}), metadata
            )
            == []
        )


def test_first_use_never_alters_a_database_behind_the_current_schema(store: Store) -> None:
    _first_schema_unversioned(store)
    tables = _tables(store)

    state = schema_version.ensure(store, create=True)

    assert (state.revision, state.is_behind, state.created) == ("0001", True, False)
    assert _tables(store) == tables
    with store.transaction() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("penchant_exposures")}
    assert "lists" not in columns


def test_creation_can_be_turned_off(store: Store) -> None:
    state = schema_version.ensure(store, create=False)
    assert state.is_empty
    assert _tables(store) == set()


def test_tables_that_are_no_schema_penchant_knows_are_refused(store: Store) -> None:
    with store.transaction(write=True) as conn:
        metadata.tables["penchant_meta"].create(conn)
    with pytest.raises(SchemaError, match="penchant_meta"):
        schema_version.current(store)
    with pytest.raises(SchemaError):
        schema_version.upgrade(store)
    assert _tables(store) == {"penchant_meta"}


def test_a_revision_this_penchant_does_not_know_is_refused(store: Store) -> None:
    schema_version.upgrade(store)
    with store.transaction(write=True) as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    state = schema_version.current(store)
    assert (state.revision, state.is_current, state.is_behind) == ("9999", False, False)
    with pytest.raises(SchemaError, match="upgrade penchant"):
        schema_version.upgrade(store)
