"""The writer through a database outage, and one poisoned row, on the real PostgreSQL.

The outage is made by a TCP proxy of our own between penchant and the server:
slow, then black-holed, then down (every connection reset, new ones refused),
then up again. The shared PostgreSQL server is never stopped.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from penchant import Interaction, Penchant
from penchant.engine.affinity import fold
from penchant.storage.store import Store
from penchant.storage.writer import Writer, WriterStats
from tests.harness import all_rows, count_rows, small_catalog
from tests.reliability.chaos_proxy import ChaosProxy, chaos_proxy

CATALOG = small_catalog()
T0 = datetime(2024, 5, 1, 12, 0, 0)


def _proxied(url: str, proxy: ChaosProxy) -> str:
    return sa.make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(False)


@pytest.fixture
def proxy(pg_url: str) -> Iterator[ChaosProxy]:
    url = sa.make_url(pg_url)
    with chaos_proxy((url.host or "127.0.0.1", url.port or 5432)) as running:
        yield running


def _event(n: int, *, user: str | None = None, **changes: object) -> Interaction:
    values: dict[str, object] = {
        "user_id": user or f"{n % 37:032x}",
        "session_id": f"s{n % 37}",
        "interaction_type": ("view", "click", "search", "form_submit")[n % 4],
        "target_type": "procedure",
        "target_id": n % 9 + 1,
        "timestamp": T0 + timedelta(seconds=n),
        "event_id": uuid.uuid4().hex,
        "extra_data": {"n": n},
    }
    values.update(changes)
    return Interaction(**values)  # type: ignore[arg-type]


def _balanced(stats: WriterStats) -> bool:
    return stats.accepted == (
        stats.stored + stats.duplicates + stats.dropped_total + stats.in_flight
    )


def _wait_for(condition: Callable[[], bool], *, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


class _Auditor:
    """Samples the writer's books from another thread while the load runs."""

    def __init__(self, writer: Writer, queue_size: int) -> None:
        self.writer, self.queue_size = writer, queue_size
        self.samples = 0
        self.broken: list[WriterStats] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            stats = self.writer.stats()
            self.samples += 1
            if not _balanced(stats) or stats.in_flight > self.queue_size:
                self.broken.append(stats)
            time.sleep(0.002)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.slow
def test_writer_keeps_every_event_accounted_for_through_an_outage(
    pg_url: str, proxy: ChaosProxy
) -> None:
    Store(pg_url).create_all()
    stores: list[Store] = []

    def store_factory() -> Store:
        store = Store(
            _proxied(pg_url, proxy), connect_timeout=1, statement_timeout=2, pool_timeout=1
        )
        stores.append(store)
        return store

    queue_size = 600
    writer = Writer(
        store_factory,
        lambda batch: fold(batch, CATALOG, {"view": 0.1, "click": 0.3}, 0.95),
        rate=0.95,
        batch_size=40,
        queue_size=queue_size,
        flush_interval=0.02,
        backoff_initial=0.05,
        backoff_max=0.4,
    )
    auditor = _Auditor(writer, queue_size)
    n = 0

    def load(count: int) -> None:
        nonlocal n
        for _ in range(count):
            writer.submit(_event(n))
            n += 1

    load(400)
    assert writer.flush(10)
    proxy.set_mode("delay", latency=0.002)
    load(300)
    proxy.set_mode("blackhole")
    load(200)
    # Down: the black-holed connections are reset, new ones refused.
    proxy.down()
    load(900)  # more than the queue holds: the excess is dropped and counted
    assert _wait_for(lambda: writer.stats().consecutive_failures >= 2, timeout=15)
    during = writer.stats()
    assert during.in_flight <= queue_size
    proxy.up()
    load(200)
    assert writer.flush(30), writer.stats()
    auditor.stop()
    stats = writer.stats()
    writer.close(5)
    for store in stores:
        store.dispose()

    assert stats.accepted == n == 2000
    assert stats.in_flight == 0
    assert stats.stored + stats.duplicates + stats.dropped_total == stats.accepted
    assert stats.dropped["queue_full"] > 0
    assert stats.dropped["dead_letter"] == 0  # an outage is not a data error
    assert stats.errors >= 2
    # Events ids are all distinct, so a "duplicate" is a batch whose commit
    # landed while its connection was being reset; it is in the table once.
    assert count_rows(pg_url) == stats.stored + stats.duplicates
    assert count_rows(pg_url, "penchant_dead_letter") == 0
    assert auditor.samples > 100
    assert auditor.broken == []


def test_one_poisoned_event_is_dead_lettered_and_the_rest_stored(pg_url: str) -> None:
    penchant = Penchant(
        database_url=pg_url,
        secret_key="poison-0123456789abcdef",
        catalog=CATALOG,
        flush_interval=0.05,
    )
    penchant.init_db()
    events = [_event(i) for i in range(99)]
    # PostgreSQL text cannot hold NUL; the HTTP layer refuses it, a caller of submit() may not.
    poison = _event(99, session_id="bad\x00session")
    events.insert(50, poison)
    for event in events:
        assert penchant.submit(event)
    assert penchant.flush(20)
    stats = penchant.writer.stats()
    penchant.close()

    assert stats.stored == 99
    assert stats.dropped["dead_letter"] == 1
    assert stats.accepted == stats.stored + stats.dropped_total
    rows = all_rows(pg_url, "user_interactions")
    assert len(rows) == 99
    assert poison.event_id not in {r["event_id"] for r in rows}
    letters = all_rows(pg_url, "penchant_dead_letter")
    assert len(letters) == 1
    assert poison.event_id in letters[0]["payload"]
    assert "\x00" not in letters[0]["payload"] + letters[0]["error"]
