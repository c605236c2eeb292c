"""Shared fixtures: every storage test runs on SQLite and on the real PostgreSQL.

PostgreSQL tests create and drop a database of their own on the server at
``PENCHANT_TEST_PG`` (default: postgresql://postgres@127.0.0.1:5432/postgres);
they never write into an existing database. Without a server they skip with
the reason, except under ``CI=true``, where a missing server is a failure.

Tests that compare with "now" take it from the ``now`` fixture and hand it to the
code (``Penchant(clock=...)``, ``penchant --now``); they carry the ``date_sensitive``
marker. ``PENCHANT_TEST_DAYS_AHEAD=400 python -m pytest -m date_sensitive`` runs
them 400 days in the future.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.harness import ADAPTERS, Timer

# The read deadline protects a live site from a hung database; on a loaded test machine a
# slow but healthy read must not turn into popular content, so tests wait longer.
os.environ.setdefault("PENCHANT_READ_TIMEOUT", "10")

# Days the ``now`` fixture runs ahead of the calendar (a time bomb goes off early).
DAYS_AHEAD = int(os.environ.get("PENCHANT_TEST_DAYS_AHEAD", "0"))

PG_ADMIN_URL = os.environ.get("PENCHANT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_admin() -> object:
    from sqlalchemy import create_engine, make_url

    url = make_url(PG_ADMIN_URL)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg2")  # the driver of the postgres extra
    return create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})


def _pg_available() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    try:
        from sqlalchemy import text

        engine = _pg_admin()
        with engine.connect() as conn:  # type: ignore[attr-defined]
            conn.execute(text("select 1"))
        engine.dispose()  # type: ignore[attr-defined]
        return None
    except Exception as exc:
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc.__class__.__name__}: {exc}"


_PG_REASON: str | bool | None = False  # False: not checked yet


def pg_unavailable_reason() -> str | None:
    global _PG_REASON
    if _PG_REASON is False:
        _PG_REASON = _pg_available()
    return _PG_REASON  # type: ignore[return-value]


def skip_or_fail(reason: str) -> None:
    """A service the test needs is missing: skip, except under CI=true, where it fails."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


REDIS_URL = os.environ.get("PENCHANT_TEST_REDIS", "redis://127.0.0.1:6379/0")


def redis_client() -> Any:
    """A client of the test Redis server; skips without one (fails under CI=true)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:  # pragma: no cover - depends on the machine
        skip_or_fail(f"Redis not reachable at {REDIS_URL}: {exc}")
    return client


def require_postgres() -> None:
    reason = pg_unavailable_reason()
    if reason is not None:
        skip_or_fail(reason)


def create_pg_database() -> str:
    """Create a fresh database; return its URL (drop it with drop_pg_database)."""
    from sqlalchemy import text

    require_postgres()
    name = f"penchant_test_{uuid.uuid4().hex[:12]}"
    engine = _pg_admin()
    with engine.connect() as conn:  # type: ignore[attr-defined]
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()  # type: ignore[attr-defined]
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def drop_pg_database(url: str) -> None:
    from sqlalchemy import text

    name = url.rsplit("/", 1)[1]
    engine = _pg_admin()
    with engine.connect() as conn:  # type: ignore[attr-defined]
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()  # type: ignore[attr-defined]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'penchant.db'}"
        return
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database only (for tests that need several processes)."""
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture(params=ADAPTERS)
def adapter(request: pytest.FixtureRequest) -> str:
    """The small site's adapter, "asgi" or "wsgi" (:func:`tests.harness.site_client`)."""
    return str(request.param)


@pytest.fixture
def timer() -> Timer:
    """Monotonic seconds for ``Penchant(timer=...)``, moved by the test."""
    return Timer()


@pytest.fixture
def now() -> datetime:
    """The test's one "now": the real UTC time (naive, as stored) plus
    ``PENCHANT_TEST_DAYS_AHEAD`` days, read once and frozen for the test."""
    return datetime.now(UTC).replace(tzinfo=None) + timedelta(days=DAYS_AHEAD)
