"""The read path: a database that hangs or fails costs a request at most the read deadline."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from penchant import Catalog, Category, Item, Penchant

CATALOG = Catalog(
    [Category(1, "Injectables")], [Item("procedure", i, f"P{i}", (1,)) for i in range(1, 5)]
)


class SilentServer:
    def __init__(self, port: int, held: list[socket.socket]) -> None:
        self.port, self.held = port, held


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    """A TCP server that accepts connections and never answers (a hung database)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield SilentServer(server.getsockname()[1], held)
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_a_hung_database_is_given_up_on_then_left_alone(
    silent_server: SilentServer, caplog: pytest.LogCaptureFixture
) -> None:
    penchant = Penchant(
        database_url=f"postgresql://postgres@127.0.0.1:{silent_server.port}/x",
        secret_key="k-0123456789abcdef",
        catalog=CATALOG,
        read_timeout=0.3,
        holdout=0.0,
    )
    results: list[list[object]] = []
    with caplog.at_level(logging.WARNING, logger="personalization"):
        # the first request waits for the deadline, not for the database
        worker = threading.Thread(
            target=lambda: results.append(list(penchant.recommend("procedures", "a" * 32, limit=3)))
        )
        worker.start()
        worker.join(timeout=30)
        assert results, "the request waited for a database that never answers"
        connections = len(silent_server.held)
        assert connections >= 1
        # then the breaker keeps requests away from the database altogether
        again = [penchant.recommend("procedures", "a" * 32, limit=3) for _ in range(20)]
        assert len(silent_server.held) == connections
    first = results[0]
    # popular content (catalog order without counts), never an exception
    assert [r.item.id for r in first] == [1, 2, 3]  # type: ignore[attr-defined]
    assert all([r.item.id for r in recs] == [1, 2, 3] for recs in again)
    assert {r.reason.kind for r in first} == {"popular"}  # type: ignore[attr-defined]
    # One line for the outage, without a traceback: the schema check's, said when
    # its connection gives up (connect_timeout, 5 s), on the read pool's thread:
    # the store's first use is a read under the deadline like any other.
    give_up = time.monotonic() + 20
    while not any(r.levelno >= logging.WARNING for r in caplog.records):
        assert time.monotonic() < give_up, "nothing logged for a database that never answers"
        time.sleep(0.1)
    failures = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage().split(": ")[0] for r in failures] == [
        f"database postgresql+psycopg2://postgres@127.0.0.1:{silent_server.port}/x unavailable"
    ]
    assert failures[0].exc_info is None
    penchant.close(timeout=0.5)
