"""SIGTERM with events still queued in 4 uvicorn processes: every one is written, once.

The writer's flush interval is set far beyond the test's length, so nothing is
written before the signal: what reaches the table is what the shutdown flush
wrote. The client then replays every beacon against restarted servers, and
the table still holds each event exactly once.
"""

from __future__ import annotations

import json
import re
import signal
import uuid
from pathlib import Path

import httpx
import pytest

from penchant.storage.store import Store
from tests.harness import BEACON, all_rows, beacon_event, count_rows
from tests.reliability.servers import UvicornServer, uvicorn_servers

WORKERS = 4
CLEAN_EXIT = {0, -signal.SIGTERM}
EVENTS = 400
TOKEN = re.compile(r'data-token="([^"]+)"')
HEADERS = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) ShutdownTest/1.0",
    "Accept-Language": "en-GB",
    "Sec-Fetch-Site": "same-origin",
}
SETTINGS = {
    # Nothing is written before SIGTERM: one batch, due only after the test is over.
    "flush_interval": 600.0,
    "batch_size": 10_000,
    "visitor_rate_limit": 0,
    "ip_rate_limit": 0,
    "shutdown_timeout": 8.0,
}


def _send_all(servers: list[UvicornServer], beacons: list[dict[str, object]]) -> list[int]:
    """Round-robin over the servers, one event per beacon; returns the status codes."""
    clients = [httpx.Client(base_url=s.url, headers=HEADERS, timeout=10) for s in servers]
    try:
        # A token from a page of one worker: every worker shares the secret.
        page = clients[0].get("/")
        token = TOKEN.search(page.text)
        assert token is not None, page.text
        statuses = []
        for i, event in enumerate(beacons):
            response = clients[i % len(clients)].post(
                BEACON,
                content=json.dumps({"token": token.group(1), "events": [event]}),
                headers={"Content-Type": "text/plain;charset=UTF-8"},
            )
            statuses.append(response.status_code)
        return statuses
    finally:
        for client in clients:
            client.close()


@pytest.mark.slow
def test_sigterm_writes_every_queued_event_once_even_after_replay(
    pg_url: str, tmp_path: Path
) -> None:
    Store(pg_url).create_all()
    beacons = [beacon_event(uuid.uuid4().hex, target_id=i % 9 + 1) for i in range(EVENTS)]
    with uvicorn_servers(
        WORKERS, database_url=pg_url, settings=SETTINGS, log_dir=tmp_path, tag="first"
    ) as servers:
        statuses = _send_all(servers, beacons)
        assert statuses == [202] * EVENTS
        # Everything is still queued in the four processes.
        assert count_rows(pg_url) == 0
        codes = [server.stop() for server in servers]
        logs = "\n".join(server.log() for server in servers)
    # uvicorn re-raises the signal once its graceful shutdown is done.
    assert set(codes) <= CLEAN_EXIT, logs
    assert logs.count("Finished server process") == WORKERS, logs
    # N beacon events plus the one page view that handed out the token.
    assert count_rows(pg_url) == EVENTS + 1, logs
    assert "not written" not in logs

    with uvicorn_servers(
        WORKERS, database_url=pg_url, settings=SETTINGS, log_dir=tmp_path, tag="replay"
    ) as servers:
        assert _send_all(servers, beacons) == [202] * EVENTS
        codes = [server.stop() for server in servers]
    assert set(codes) <= CLEAN_EXIT

    rows = all_rows(pg_url, "user_interactions")
    beacon_ids = {str(b["event_id"]) for b in beacons}
    stored_ids = [r["event_id"] for r in rows if r["event_id"] in beacon_ids]
    # Each beacon event exactly once; the replay added only its own page view.
    assert sorted(stored_ids) == sorted(beacon_ids)
    assert len(rows) == EVENTS + 2
    # Shown with `pytest -rP`.
    print(
        f"workers={WORKERS} beacon_events={EVENTS} rows_after_sigterm={EVENTS + 1} "
        f"rows_after_replay={len(rows)} distinct_beacon_events={len(set(stored_ids))}"
    )
