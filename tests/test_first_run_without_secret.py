"""A site started on an empty database without a configured secret works from its
first request: penchant creates its tables, generates a secret and keeps it in the
database, and the page views it serves are stored.

Nothing is prepared beforehand: no ``init_db()``, no ``create_all()``, only a
fresh database URL and ``Penchant(database_url=...)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from penchant import Penchant
from tests.harness import engine_for, site_client, small_catalog
from tests.security.helpers import SAME_ORIGIN


@pytest.fixture
def penchant(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Penchant]:
    for name in ("PENCHANT_SECRET_KEY", "PENCHANT_SECRET_KEYS", "PENCHANT_CREATE_TABLES"):
        monkeypatch.delenv(name, raising=False)
    service = Penchant(
        database_url=database_url,
        catalog=small_catalog(),
        url_patterns={"/procedures/{id}": "procedure"},
        flush_interval=0.05,
    )
    yield service
    service.close(timeout=5.0)


def test_the_first_page_views_on_an_empty_database_are_stored(
    adapter: str, penchant: Penchant, database_url: str
) -> None:
    client = site_client(adapter, penchant)
    try:
        for path in ("/", "/procedures/4", "/procedures/7"):
            assert client.get(path, headers=SAME_ORIGIN).status == 200
    finally:
        client.close()
    assert penchant.flush(10)

    engine = engine_for(database_url)
    try:
        with engine.connect() as conn:
            views = conn.execute(
                sa.text(
                    "SELECT user_id, interaction_type, target_type, target_id"
                    " FROM user_interactions"
                )
            ).all()
            secret = conn.execute(
                sa.text("SELECT value FROM penchant_meta WHERE key = 'secret_key'")
            ).scalar()
    finally:
        engine.dispose()
    assert sorted(tuple(v[1:]) for v in views) == [
        ("view", "page", None),
        ("view", "procedure", 4),
        ("view", "procedure", 7),
    ]
    # One visitor, known by a fingerprint made with the generated secret.
    assert len({v[0] for v in views}) == 1
    assert re.fullmatch(r"[0-9a-f]{32}", views[0][0])
    assert re.fullmatch(r"[0-9a-f]{64}", secret)
    assert penchant.health()["ok"] is True
