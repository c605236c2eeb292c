"""Fixtures of the middleware tests: a host app of each kind over a fresh SQLite database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from penchant import Penchant
from tests.harness import (
    HOSTS,
    Client,
    host_client,
    make_penchant,
    make_penchant_with_database_down,
)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'host.db'}"


@pytest.fixture
def open_site() -> Iterator[Callable[..., Client]]:
    """``open_site(kind, database_url, **settings)``: a wrapped host app and its client;
    ``open_site(kind, database_down=True, **settings)``: the same over a database that
    is down (:data:`~tests.harness.DOWN_DATABASE_URL`)."""
    opened: list[tuple[Client, Penchant]] = []

    def open_(
        kind: str,
        database_url: str | None = None,
        *,
        database_down: bool = False,
        peer: str = "203.0.113.7",
        secure: bool = False,
        **settings: Any,
    ) -> Client:
        if database_down:
            assert database_url is None, "a site whose database is down has no database URL"
            penchant = make_penchant_with_database_down(**settings)
        else:
            assert database_url is not None
            penchant = make_penchant(database_url, **settings)
        client = host_client(kind, penchant, peer=peer, secure=secure)
        opened.append((client, penchant))
        return client

    yield open_
    for client, penchant in opened:
        client.close()
        penchant.close(timeout=min(5.0, penchant.settings.shutdown_timeout))


@pytest.fixture(params=HOSTS)
def host(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def site(host: str, sqlite_url: str, open_site: Callable[..., Client]) -> Client:
    return open_site(host, sqlite_url)
