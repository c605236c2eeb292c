"""`penchant db upgrade|current`, and read-only commands that create nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from penchant.cli import main
from penchant.storage import schema_version
from penchant.storage.schema_version import VERSION_TABLE
from penchant.storage.store import Store


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["stats"],
        ["report"],
        ["purge", "--dry-run"],
        ["export", "ab" * 16],
        ["erase", "--yes", "ab" * 16],
        ["db", "current"],
    ],
    ids=lambda c: c[0],
)
def test_commands_on_a_missing_sqlite_file_create_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    code, _out, err = _run(*command)  # the default: sqlite:///penchant.db, here
    assert code == 1
    assert f"no database at {tmp_path / 'penchant.db'}" in err
    assert "unavailable" not in err and "OperationalError" not in err
    assert os.listdir(tmp_path) == []


def test_stats_on_a_database_without_tables_says_nothing_is_stored(database_url: str) -> None:
    store = Store(database_url)
    with store.transaction(write=True) as conn:  # the file exists, the tables do not
        conn.execute(sa.text("SELECT 1"))
    code, _, err = _run("stats", "--database-url", database_url)
    assert code == 1
    assert "has no penchant tables yet: nothing has been stored" in err
    with store.transaction() as conn:
        assert sa.inspect(conn).get_table_names() == []
    store.dispose()


def test_upgrade_creates_then_says_current(database_url: str) -> None:
    code, out, _ = _run("db", "upgrade", "--database-url", database_url)
    assert code == 0 and "created the tables at revision 0003" in out
    code, out, _ = _run("db", "current", "--database-url", database_url)
    assert code == 0 and "revision 0003 (current)" in out
    code, out, _ = _run("db", "upgrade", "--database-url", database_url)
    assert code == 0 and "already at revision 0003" in out
    code, out, _ = _run("init-db", "--database-url", database_url)
    assert code == 0 and "already at revision 0003" in out
    code, out, _ = _run("stats", "--database-url", database_url)
    assert code == 0 and "Dead-lettered rows: 0" in out


def test_a_database_behind_is_named_and_upgraded(database_url: str) -> None:
    store = Store(database_url)
    with store.transaction(write=True) as conn:
        schema_version.migrate(conn, "0001")
        conn.execute(sa.text(f"DROP TABLE {VERSION_TABLE}"))
    code, _, err = _run("db", "current", "--database-url", database_url)
    assert code == 1 and "revision 0001, this penchant needs 0003" in err
    code, _, err = _run("stats", "--database-url", database_url)
    assert code == 1 and "run `penchant db upgrade`" in err
    code, out, _ = _run("db", "upgrade", "--database-url", database_url)
    assert code == 0 and "from revision 0001 to 0003" in out
    assert schema_version.current(store).is_current
    store.dispose()
