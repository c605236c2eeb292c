"""Fixtures of the security tests: the small site through either adapter, on either database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from penchant import Penchant
from tests.harness import Client, site_client, small_catalog
from tests.security.helpers import OpenSite


@pytest.fixture
def open_site() -> Iterator[OpenSite]:
    """``open_site(adapter, database_url, peer=..., **settings)`` -> (client, penchant)."""
    opened: list[tuple[Client, Penchant]] = []

    def open_(
        adapter: str, database_url: str, *, peer: str = "198.51.100.20", **settings: Any
    ) -> tuple[Client, Penchant]:
        options: dict[str, Any] = {
            "secret_key": "security-tests-0123456789abcdef",
            "catalog": small_catalog(),
            "url_patterns": {"/procedures/{id}": "procedure"},
            "flush_interval": 0.05,
        }
        options.update(settings)
        penchant = Penchant(database_url=database_url, **options)
        penchant.init_db()
        client = site_client(adapter, penchant, peer=peer)
        opened.append((client, penchant))
        return client, penchant

    yield open_
    for client, penchant in opened:
        client.close()
        penchant.close(timeout=5.0)
