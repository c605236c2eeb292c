"""A request does not wait for a database that holds its reads: past ``read_timeout``
it is answered with popular content, while the database is still held.

The hold is real: on SQLite a connection in exclusive locking mode (readers of a
WAL database are blocked by nothing else), on PostgreSQL the profile's tables
locked by another connection. The visitor's own history would rank their liked
category first; popular content ranks the most visited one first, so the answer
says which of the two it is. The hold outlasts the answer by far, then ends, and
only then is the answer read.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from penchant import Catalog, Category, Item, Penchant, Recommendation
from tests.harness import Timer

CATALOG = Catalog(
    [Category(1, "Injectables"), Category(2, "Laser")],
    [
        Item("procedure", 1, "Botox", (1,)),
        Item("procedure", 2, "Fillers", (1,)),
        Item("procedure", 3, "Lip filler", (1,)),
        Item("procedure", 4, "Laser hair removal", (2,)),
        Item("procedure", 5, "Laser resurfacing", (2,)),
    ],
)
VISITOR = "a" * 32
#: How long the database stays held while the answer is awaited (the deadline is 0.3 s;
#: the database's own timeouts, 10 s, are longer).
HELD_FOR = 5.0


@contextmanager
def reads_held(database_url: str) -> Iterator[None]:
    """Until the block ends, no other connection reads a visitor's profile."""
    url = sa.make_url(database_url)
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(str(url.database), isolation_level=None)
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    import psycopg2

    pg = psycopg2.connect(database_url)
    try:
        with pg.cursor() as cursor:
            cursor.execute(
                "LOCK TABLE user_interactions, user_category_affinity IN ACCESS EXCLUSIVE MODE"
            )
        yield
    finally:
        pg.rollback()
        pg.close()


@pytest.fixture
def penchant(database_url: str, timer: Timer) -> Iterator[Penchant]:
    service = Penchant(
        database_url=database_url,
        secret_key="read-deadline-0123456789abcdef",
        catalog=CATALOG,
        holdout=0.0,
        flush_interval=0.05,
        popular_ttl=3600.0,
        read_timeout=0.3,
        timer=timer,
    )
    yield service
    service.close(timeout=5.0)


def ranked(found: list[Recommendation]) -> list[tuple[int, str]]:
    return [(r.item.id, r.reason.kind) for r in found]


def test_a_held_database_costs_the_visitor_personalization_not_the_answer(
    penchant: Penchant, timer: Timer
) -> None:
    # Two visitors like Injectables; ours likes Laser.
    for user_id, procedure in (("b" * 32, 1), ("c" * 32, 2), (VISITOR, 4), (VISITOR, 5)):
        assert penchant.track("click", "procedure", procedure, user_id=user_id)
    assert penchant.flush(10)
    assert penchant.refresh_popularity()
    assert ranked(penchant.recommend("categories", None)) == [(1, "popular"), (2, "popular")]
    # Pooled connections closed: SQLite's exclusive lock waits for every other one.
    penchant.close(timeout=5.0)

    answers: list[list[Recommendation]] = []
    request = threading.Thread(
        target=lambda: answers.append(penchant.recommend("categories", VISITOR)), daemon=True
    )
    with reads_held(penchant.settings.database_url):
        request.start()
        request.join(HELD_FOR)
        answered_while_held = not request.is_alive()
    request.join(30)
    assert answers, "the request never returned"
    assert ranked(answers[0]) == [(1, "popular"), (2, "popular")]
    assert answered_while_held, "the request waited for the held database"
    # Once the database answers again (and the breaker's pause is over), the
    # visitor's history ranks Laser first.
    timer.seconds += 60.0
    assert ranked(penchant.recommend("categories", VISITOR)) == [
        (2, "category_affinity"),
        (1, "popular"),
    ]
