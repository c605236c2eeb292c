"""The simulated crowd fills the database through the real HTTP endpoints."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from demo_app.__main__ import main
from demo_app.simulate import crowd, is_loopback
from penchant.storage.store import Store
from tests.demo.helpers import running_demo


def since() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None) - timedelta(days=1)


def test_a_small_crowd_fills_the_database(database_url: str) -> None:
    with running_demo(database_url, trusted_proxies=("127.0.0.1",)) as (base, penchant):
        result = crowd(base, visitors=8, seed=7, forwarded_for=True, workers=2, time_limit=120)
        assert penchant.flush(timeout=30.0)
        store = penchant.store
        per_type: Counter[str] = Counter()
        for _, kind, count in store.daily_counts(since()):
            per_type[kind] += count
        visitors = store.engaged_visitors(since(), minimum=0)
        popularity = store.popularity(since())
    assert result.visitors == 8 and result.errors == 0
    assert result.events_sent > 0 and result.events_accepted == result.events_sent
    # Each visitor has its own address and browser, so its own fingerprint.
    assert len(visitors) == 8
    # Every beacon event was stored once, and the form was counted once per submission.
    assert per_type["click"] == result.clicks
    assert per_type["search"] == result.searches
    assert per_type["form_submit"] == result.forms
    assert per_type["view"] >= 8
    assert sum(popularity.counts.get("procedure", {}).values()) > 0


def test_without_a_trusted_proxy_browsers_still_tell_visitors_apart(tmp_path: Path) -> None:
    with running_demo(f"sqlite:///{tmp_path / 'd.db'}") as (base, penchant):
        result = crowd(base, visitors=3, seed=11, forwarded_for=False, workers=1, time_limit=60)
        assert penchant.flush(timeout=30.0)
        visitors = penchant.store.engaged_visitors(since(), minimum=0)
    assert result.errors == 0
    assert len(visitors) == 3


def test_the_command_runs_an_in_process_demo(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    outcome = CliRunner().invoke(
        main,
        [
            "simulate",
            "--visitors",
            "3",
            "--seed",
            "5",
            "--workers",
            "1",
            "--database-url",
            url,
            "--secret-file",
            str(tmp_path / "secret"),
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    assert "visitors" in outcome.output and "writer stored" in outcome.output
    store = Store(url)
    try:
        assert store.count_interactions() > 0
    finally:
        store.dispose()
    assert (tmp_path / "secret").exists()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://localhost:8000", True),
        ("http://[::1]:8000", True),
        ("http://127.8.9.10", True),
        ("http://example.com", False),
        ("http://10.0.0.1:8000", False),
        ("not a url", False),
    ],
)
def test_loopback_only(url: str, expected: bool) -> None:
    assert is_loopback(url) is expected


def test_the_crowd_refuses_other_hosts() -> None:
    with pytest.raises(ValueError, match="loopback"):
        crowd("http://example.com", visitors=1)
    outcome = CliRunner().invoke(
        main, ["simulate", "--visitors", "1", "--base-url", "http://example.com"]
    )
    assert outcome.exit_code == 2
    assert "loopback" in outcome.output


def test_a_bad_database_url_is_one_line(tmp_path: Path) -> None:
    outcome = CliRunner().invoke(
        main, ["--database-url", "mysql://x@y/z", "--secret-file", str(tmp_path / "secret")]
    )
    assert outcome.exit_code == 2
    assert "DATABASE_URL" in outcome.output
    assert "Traceback" not in outcome.output
