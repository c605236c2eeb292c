"""Retention runs because the site is visited: once its first delay is over, a page
view starts the retention run in the background, and the rows older than
``retention_days`` are gone while the recent ones stay.

Time moves through the clocks the service is given (``clock=`` for the dates,
``timer=`` for the schedule); the test waits only for the background run to end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from penchant import Penchant
from tests.harness import Clock, Timer, engine_for, site_client, small_catalog
from tests.security.helpers import SAME_ORIGIN

pytestmark = pytest.mark.date_sensitive

PEER = "198.51.100.30"
#: Longer than the first delay before a process's first retention run (60 s).
PAST_FIRST_DELAY = 61.0


@pytest.fixture
def clock(now: datetime) -> Clock:
    return Clock(now)


@pytest.fixture
def penchant(database_url: str, clock: Clock, timer: Timer) -> Iterator[Penchant]:
    """A service that keeps 30 days, on the test's clock and timer."""
    service = Penchant(
        database_url=database_url,
        secret_key="retention-traffic-0123456789abcdef",
        catalog=small_catalog(),
        url_patterns={"/procedures/{id}": "procedure"},
        holdout=0.0,
        flush_interval=0.05,
        retention_days=30,
        clock=clock,
        timer=timer,
    )
    yield service
    service.close(timeout=5.0)


def stored_views(database_url: str) -> set[tuple[int, datetime]]:
    """(procedure, time) of every stored interaction."""
    engine = engine_for(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT target_id, timestamp FROM user_interactions"))
            return {(int(r[0]), _naive(r[1])) for r in rows}
    finally:
        engine.dispose()


def _naive(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Whether ``condition`` holds within ``seconds`` (a background thread's work)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_page_views_start_the_retention_run_that_deletes_old_rows(
    adapter: str,
    penchant: Penchant,
    clock: Clock,
    timer: Timer,
    database_url: str,
    now: datetime,
) -> None:
    # The adapters run on the service's timer (Penchant(timer=...)), which the test moves.
    site = site_client(adapter, penchant, peer=PEER)
    try:
        forty_days_ago = now - timedelta(days=40)
        clock.now = forty_days_ago
        assert site.get("/procedures/1", headers=SAME_ORIGIN).status == 200
        clock.now = now
        assert site.get("/procedures/2", headers=SAME_ORIGIN).status == 200
        assert penchant.flush(10)
        # Within the first delay, page views leave the old row alone.
        assert stored_views(database_url) == {(1, forty_days_ago), (2, now)}

        timer.seconds = PAST_FIRST_DELAY
        assert site.get("/procedures/3", headers=SAME_ORIGIN).status == 200
    finally:
        site.close()
    assert penchant.flush(10)
    assert wait_for(lambda: (1, forty_days_ago) not in stored_views(database_url)), (
        "no retention run deleted the 40-day-old row"
    )
    assert stored_views(database_url) == {(2, now), (3, now)}
