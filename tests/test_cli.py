"""The penchant command: every command on both databases, one-line errors, exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from penchant.cli import main
from penchant.engine.affinity import fold
from penchant.engine.catalog import Catalog, Category, Item
from penchant.engine.events import Interaction
from penchant.storage.store import Store

CATALOG = Catalog([Category(1, "Injectables")], [Item("procedure", 10, "Botox", (1,))])


def visitor(n: int) -> str:
    return f"{n:032x}"


def at(moment: datetime) -> list[str]:
    """The hidden group option that gives every command the test's clock."""
    return ["--now", moment.isoformat()]


def seed(url: str, events: list[tuple[str, datetime, str]]) -> Store:
    store = Store(url)
    store.create_all()
    batch = [
        Interaction(user, "s", kind, "procedure", 10, at, uuid.uuid4().hex, {"k": "v"})
        for user, at, kind in events
    ]
    store.record(batch, lambda b: fold(b, CATALOG, {"view": 0.1, "click": 0.3}, 0.95), 0.95)
    return store


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("INTERACTION_RETENTION_DAYS", raising=False)
    return CliRunner()


def test_init_db_is_idempotent(runner: CliRunner, database_url: str) -> None:
    outputs = []
    for _ in range(2):
        result = runner.invoke(main, ["init-db", "--database-url", database_url])
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert "created the tables at revision 0003" in outputs[0]
    assert "already at revision 0003" in outputs[1]
    store = Store(database_url)
    assert store.count_interactions() == 0
    store.dispose()


def test_database_url_comes_from_the_environment(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    assert runner.invoke(main, ["init-db"]).exit_code == 0
    assert (tmp_path / "env.db").exists()


@pytest.mark.date_sensitive
def test_stats_text_and_json(runner: CliRunner, database_url: str, now: datetime) -> None:
    today = now - timedelta(minutes=5)
    events = [(visitor(1), today, "view")] * 6 + [(visitor(2), today, "click")] * 2
    events += [(visitor(3), now - timedelta(days=20), "view")] * 7
    seed(database_url, events).dispose()

    result = runner.invoke(main, [*at(now), "stats", "--database-url", database_url, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output.strip().splitlines()[-1])
    assert data["days"] == 7
    counts = {(d["interaction_type"], d["count"]) for d in data["daily"]}
    assert counts == {("view", 6), ("click", 2)}
    assert data["engaged_visitors"] == [{"user_id": visitor(1), "interactions": 6}]

    text = runner.invoke(main, [*at(now), "stats", "--database-url", database_url, "--days", "30"])
    assert text.exit_code == 0
    assert visitor(1) in text.output and visitor(3) in text.output
    assert visitor(2) not in text.output  # two interactions are not "engaged"


@pytest.mark.date_sensitive
def test_purge_dry_run_then_purge(runner: CliRunner, database_url: str, now: datetime) -> None:
    events = [(visitor(1), now - timedelta(days=100), "view")] * 3
    events += [(visitor(2), now - timedelta(days=1, minutes=1), "view")]  # older than --days 1
    store = seed(database_url, events)
    dry = runner.invoke(main, [*at(now), "purge", "--database-url", database_url, "--dry-run"])
    assert dry.exit_code == 0 and "would delete 3 interactions, 1 affinities" in dry.output
    assert store.count_interactions() == 4
    done = runner.invoke(main, [*at(now), "purge", "--database-url", database_url])
    assert done.exit_code == 0 and "deleted 3 interactions" in done.output
    assert store.count_interactions() == 1
    shorter = runner.invoke(
        main, [*at(now), "purge", "--database-url", database_url, "--days", "1"]
    )
    assert "deleted 1 interactions" in shorter.output
    store.dispose()


@pytest.mark.date_sensitive
def test_purge_default_reads_the_retention_setting(
    runner: CliRunner, database_url: str, monkeypatch: pytest.MonkeyPatch, now: datetime
) -> None:
    seed(database_url, [(visitor(1), now - timedelta(days=40), "view")]).dispose()
    monkeypatch.setenv("INTERACTION_RETENTION_DAYS", "30")
    result = runner.invoke(main, [*at(now), "purge", "--database-url", database_url, "--dry-run"])
    assert "would delete 1 interactions" in result.output


def test_export_to_stdout_and_file(
    runner: CliRunner, database_url: str, tmp_path: Path, now: datetime
) -> None:
    seed(database_url, [(visitor(1), now, "view"), (visitor(2), now, "view")]).dispose()
    result = runner.invoke(main, ["export", visitor(1).upper(), "--database-url", database_url])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["user_id"] == visitor(1)
    assert [i["extra_data"] for i in data["interactions"]] == [{"k": "v"}]
    target = tmp_path / "out.json"
    result = runner.invoke(
        main, ["export", visitor(1), "--database-url", database_url, "--output", str(target)]
    )
    assert result.exit_code == 0
    assert json.loads(target.read_text())["affinities"][0]["category_id"] == 1


def test_erase_asks_unless_yes(runner: CliRunner, database_url: str, now: datetime) -> None:
    store = seed(database_url, [(visitor(1), now, "view"), (visitor(2), now, "view")])
    refused = runner.invoke(
        main, ["erase", visitor(1), "--database-url", database_url], input="n\n"
    )
    assert refused.exit_code == 1
    assert store.count_interactions(visitor(1)) == 1
    done = runner.invoke(main, ["erase", visitor(1), "--database-url", database_url, "--yes"])
    assert done.exit_code == 0 and "erased 2 rows" in done.output
    assert store.count_interactions(visitor(1)) == 0
    assert store.count_interactions(visitor(2)) == 1
    # running workers learn of it through the change feed (by bucket, not by id)
    from penchant.storage import changes

    assert changes.changes_since(store, 0)[1] == {changes.bucket(visitor(1))}
    store.dispose()


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["init-db", "--database-url", "mysql://root@localhost/x"], 2, "DATABASE_URL"),
        (["init-db", "--database-url", "postgresql://u:secret@127.0.0.1:1/x"], 1, "unavailable"),
        (["stats", "--database-url", "sqlite:////nonexistent/dir/x.db"], 1, "no database at"),
        (["stats", "--days", "0"], 2, "--days"),
        (["stats", "--days", "many"], 2, "--days"),
        (["export", "not-a-fingerprint"], 2, "32 hexadecimal"),
        (["erase"], 2, "FINGERPRINT"),
        (["nosuch"], 2, "nosuch"),
        (["--now", "yesterday", "stats"], 2, "--now"),
    ],
)
def test_errors_are_one_line_with_an_exit_code(
    runner: CliRunner, args: list[str], code: int, words: str
) -> None:
    result = runner.invoke(main, args)
    assert result.exit_code == code
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("penchant: error:")
    assert words in lines[0]
    assert "secret" not in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.date_sensitive
def test_now_is_the_moment_every_command_compares_with(
    runner: CliRunner, database_url: str, now: datetime
) -> None:
    seed(database_url, [(visitor(1), now - timedelta(days=3), "view")]).dispose()
    url = ["--database-url", database_url]

    def stats(moment: str) -> Any:
        result = runner.invoke(main, ["--now", moment, "stats", *url, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.output.strip().splitlines()[-1])

    assert stats(now.isoformat())["since"] == (now - timedelta(days=7)).isoformat()
    assert len(stats(now.isoformat())["daily"]) == 1
    later = now + timedelta(days=10)
    assert stats(later.isoformat())["daily"] == []  # 13 days before that now: outside 7
    # an offset is honoured: the same moment, written in UTC+2
    shifted = later.replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=2))).isoformat()
    assert stats(shifted)["since"] == (later - timedelta(days=7)).isoformat()
    for moment, deleted in ((now, 0), (now + timedelta(days=100), 1)):
        purge = runner.invoke(main, [*at(moment), "purge", *url, "--dry-run"])
        assert purge.exit_code == 0 and f"would delete {deleted} interactions" in purge.output
    for moment, visitors in ((now, 1), (later, 0)):
        report = runner.invoke(main, [*at(moment), "report", *url, "--json", "--days", "7"])
        assert report.exit_code == 0, report.output
        shown = json.loads(report.output.strip().splitlines()[-1])["visitors"]
        assert sum(shown.values()) == visitors
    assert "--now" not in runner.invoke(main, ["--help"]).output  # hidden: for tests


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01", "", "1700000000"])
def test_a_bad_now_is_a_usage_error(runner: CliRunner, value: str) -> None:
    result = runner.invoke(main, ["--now", value, "stats"])
    assert result.exit_code == 2
    assert "--now" in result.stderr and "ISO 8601" in result.stderr
    assert "Traceback" not in result.output


def test_bad_environment_value_is_a_usage_error(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AFFINITY_DECAY_RATE", "2")
    result = runner.invoke(main, ["stats"])
    assert result.exit_code == 2 and "AFFINITY_DECAY_RATE" in result.stderr


def test_the_installed_command_runs_in_a_real_process(tmp_path: Path) -> None:
    script = shutil.which("penchant")
    command = [script] if script else [sys.executable, "-m", "penchant.cli"]
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    shown = subprocess.run(
        [*command, "--help"], capture_output=True, text=True, env=env, timeout=60
    )
    assert shown.returncode == 0 and "init-db" in shown.stdout
    url = f"sqlite:///{tmp_path / 'real.db'}"
    made = subprocess.run(
        [*command, "init-db", "--database-url", url],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "real.db").exists()
    bad = subprocess.run(
        [*command, "init-db", "--database-url", "oracle://x"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
