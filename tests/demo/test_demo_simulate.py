"""The simulated crowd fills the database through the real HTTP endpoints."""

from __future__ import annotations

import re
import socket
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from demo_app.__main__ import main
from demo_app.server import serve_in_thread
from demo_app.simulate import answers_as_demo, crowd, is_loopback
from penchant.storage.store import Store
from tests.demo.helpers import running_demo


def since(now: datetime | None = None) -> datetime:
    """A day before ``now`` (the test's clock, handed to the demo), else the real clock."""
    return (now or datetime.now(UTC).replace(tzinfo=None)) - timedelta(days=1)


@pytest.mark.date_sensitive
def test_a_small_crowd_fills_the_database(database_url: str, now: datetime) -> None:
    demo = running_demo(database_url, trusted_proxies=("127.0.0.1",), clock=lambda: now)
    with demo as (base, penchant):
        result = crowd(base, visitors=8, seed=7, forwarded_for=True, workers=2, time_limit=120)
        assert penchant.flush(timeout=30.0)
        store = penchant.store
        per_type: Counter[str] = Counter()
        for _, kind, count in store.daily_counts(since(now)):
            per_type[kind] += count
        visitors = store.engaged_visitors(since(now), minimum=0)
        popularity = store.popularity(since(now))
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


@pytest.mark.date_sensitive
def test_without_a_trusted_proxy_browsers_still_tell_visitors_apart(
    tmp_path: Path, now: datetime
) -> None:
    with running_demo(f"sqlite:///{tmp_path / 'd.db'}", clock=lambda: now) as (base, penchant):
        result = crowd(base, visitors=3, seed=11, forwarded_for=False, workers=1, time_limit=60)
        assert penchant.flush(timeout=30.0)
        visitors = penchant.store.engaged_visitors(since(now), minimum=0)
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


def _printed(output: str, name: str) -> int:
    """A count from the command's summary (``  clicks              4``)."""
    match = re.search(rf"^  {name} +(\d+)$", output, re.M)
    assert match is not None, output
    return int(match.group(1))


def _port_nobody_listens_on() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_command_drives_the_demo_that_is_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def second_server(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("simulate started a demo of its own")

    monkeypatch.setattr("demo_app.__main__.create_app", second_server)
    monkeypatch.setattr("demo_app.__main__.serve_in_thread", second_server)
    with running_demo(f"sqlite:///{tmp_path / 'running.db'}") as (base, penchant):
        # `python -m demo_app --port N` serves it; `python -m demo_app --port N simulate` visits it.
        port = str(urlsplit(base).port)
        outcome = CliRunner().invoke(
            main,
            [
                *("--port", port, "simulate", "--visitors", "3", "--seed", "5", "--workers", "1"),
                *("--secret-file", str(tmp_path / "secret")),
            ],
        )
        assert penchant.flush(timeout=30.0)
        per_type: Counter[str] = Counter()
        for _, kind, count in penchant.store.daily_counts(since()):
            per_type[kind] += count
        visitors = penchant.store.engaged_visitors(since(), minimum=0)
    assert outcome.exit_code == 0, outcome.output
    assert f"the demo is running at {base}" in outcome.output
    # The crowd's events are in the running demo's database, each once.
    assert len(visitors) == 3
    assert per_type["click"] == _printed(outcome.output, "clicks") > 0
    assert per_type["search"] == _printed(outcome.output, "searches")
    assert per_type["view"] >= 3
    assert not (tmp_path / "secret").exists()  # no demo was built in the command's process


def test_the_command_starts_a_demo_when_none_is_running(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'own.db'}"
    port = _port_nobody_listens_on()
    outcome = CliRunner().invoke(
        main,
        [
            *("--port", str(port), "simulate", "--visitors", "2", "--seed", "3", "--workers", "1"),
            *("--secret-file", str(tmp_path / "secret")),
        ],
        default_map={"simulate": {"database_url": url}},  # not the repository's demo.db
    )
    assert outcome.exit_code == 0, outcome.output
    assert f"no demo answers at http://127.0.0.1:{port}: starting one" in outcome.output
    assert "writer stored" in outcome.output
    store = Store(url)
    try:
        assert store.count_interactions() > 0
    finally:
        store.dispose()


def test_only_the_demo_answers_as_the_demo(tmp_path: Path) -> None:
    async def about(_request: Any) -> JSONResponse:
        return JSONResponse({"app": "something else"})

    other = Starlette(routes=[Route("/about.json", about)])
    with serve_in_thread(other) as base:
        assert not answers_as_demo(base)
    assert not answers_as_demo(f"http://127.0.0.1:{_port_nobody_listens_on()}")
    assert not answers_as_demo("http://example.com")
    with running_demo(f"sqlite:///{tmp_path / 'd.db'}") as (base, penchant):
        assert answers_as_demo(base)
        assert penchant.flush(timeout=30.0)
        # Asking is no page view.
        assert penchant.store.count_interactions() == 0


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
