"""Chaos through HTTP: page views and beacons while PostgreSQL slows, vanishes and returns.

2,000 requests go through the ASGI app (Starlette test client) from 40
visitors; meanwhile the chaos proxy between penchant and PostgreSQL delays,
then refuses and resets every connection, then lets them through again. Every
host response must succeed, and afterwards the books must balance exactly:
``stored + duplicates + dropped == accepted``, with the table holding the rows.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from penchant import Penchant
from penchant.storage.store import Store
from tests.harness import (
    BEACON,
    beacon_event,
    count_rows,
    site_client,
    small_catalog,
    starlette_site,
)
from tests.reliability.chaos_proxy import ChaosProxy, chaos_proxy

TOKEN = re.compile(r'data-token="([^"]+)"')
VISITORS = 40
TOTAL = 2000


@pytest.fixture
def proxy(pg_url: str) -> Iterator[ChaosProxy]:
    url = sa.make_url(pg_url)
    with chaos_proxy((url.host or "127.0.0.1", url.port or 5432)) as running:
        yield running


@pytest.mark.slow
def test_every_response_succeeds_and_the_books_balance(pg_url: str, proxy: ChaosProxy) -> None:
    from starlette.testclient import TestClient

    Store(pg_url).create_all()
    queue_size = 1000
    penchant = Penchant(
        database_url=sa.make_url(pg_url)
        .set(host="127.0.0.1", port=proxy.port)
        .render_as_string(False),
        secret_key="chaos-0123456789abcdef",
        catalog=small_catalog(),
        url_patterns={"/procedures/{id}": "procedure"},
        flush_interval=0.05,
        batch_size=50,
        queue_size=queue_size,
        visitor_rate_limit=0,
        ip_rate_limit=0,
    )
    app = penchant.asgi(starlette_site())
    statuses: dict[str, list[int]] = {"page": [], "beacon": []}
    expected_events = 0
    tokens: dict[int, str] = {}
    sent = 0

    def headers(visitor: int) -> dict[str, str]:
        return {
            "User-Agent": f"Mozilla/5.0 (X11; Linux x86_64) ChaosTest/{visitor}",
            "Accept-Language": "en-GB",
            "Sec-Fetch-Site": "same-origin",
        }

    def one_request(client: TestClient) -> None:
        nonlocal expected_events, sent
        visitor = sent % VISITORS
        if sent % 3 != 2 or visitor not in tokens:
            # Half the pages ask for recommendations (the read path meets the outage too).
            path = f"/procedures/{sent % 9 + 1}" if sent % 2 else "/"
            response = client.get(path, headers=headers(visitor))
            statuses["page"].append(response.status_code)
            found = TOKEN.search(response.text)
            if found:
                tokens[visitor] = found.group(1)
            expected_events += 1
        else:
            events = [
                beacon_event(uuid.uuid4().hex, target_id=(sent + k) % 9 + 1) for k in range(3)
            ]
            response = client.post(
                BEACON,
                json={"token": tokens[visitor], "events": events},
                headers=headers(visitor),
            )
            statuses["beacon"].append(response.status_code)
            expected_events += len(events)
        sent += 1

    with TestClient(app) as client:
        for _ in range(600):
            one_request(client)
        proxy.set_mode("delay", latency=0.001)
        for _ in range(150):
            one_request(client)
        proxy.down()
        for _ in range(600):
            one_request(client)
        # The writer must really have met the outage before the database returns.
        deadline = time.monotonic() + 15
        while penchant.health().get("consecutive_failures", 0) == 0:
            assert time.monotonic() < deadline, penchant.health()
            one_request(client)
        down_stats = penchant.health()
        proxy.up()
        while sent < TOTAL:
            one_request(client)
        assert penchant.flush(30), penchant.health()
    health = penchant.health()
    penchant.close()
    # Shown with `pytest -rP`: the books of this run.
    print(
        f"requests={sent} pages={len(statuses['page'])} beacons={len(statuses['beacon'])} "
        f"accepted={health['accepted']} stored={health['stored']} "
        f"duplicates={health['duplicates']} dropped={health['dropped_total']} "
        f"queue_full={health['dropped']['queue_full']} errors={health['errors']} "  # type: ignore[index]
        f"in_flight_during_outage={down_stats['in_flight']} rows={count_rows(pg_url)}"
    )

    assert sent >= TOTAL
    assert set(statuses["page"]) == {200}
    assert set(statuses["beacon"]) == {202}
    assert len(statuses["beacon"]) > 300
    assert isinstance(down_stats["in_flight"], int) and down_stats["in_flight"] <= queue_size
    assert health["in_flight"] == 0
    assert health["accepted"] == expected_events
    dropped = health["dropped"]
    assert isinstance(dropped, dict)
    assert health["stored"] + health["duplicates"] + sum(dropped.values()) == health["accepted"]  # type: ignore[operator]
    assert dropped["dead_letter"] == 0
    assert health["errors"] >= 1  # type: ignore[operator]
    # Every event id is new, so a duplicate can only be a commit that landed
    # while its connection was reset: the row is there once either way.
    assert count_rows(pg_url) == health["stored"] + health["duplicates"]  # type: ignore[operator]


def test_a_database_that_never_answers_does_not_hold_up_a_page(
    pg_url: str, proxy: ChaosProxy
) -> None:
    Store(pg_url).create_all()
    penchant = Penchant(
        database_url=sa.make_url(pg_url)
        .set(host="127.0.0.1", port=proxy.port)
        .render_as_string(False),
        secret_key="stall-0123456789abcdef",
        catalog=small_catalog(),
        read_timeout=1.0,
    )
    client = site_client("wsgi", penchant)
    browser = {"User-Agent": "Mozilla/5.0 StallTest", "Sec-Fetch-Site": "same-origin"}
    assert client.get("/procedures/1", headers=browser).status == 200  # pool and caches warm
    proxy.set_mode("blackhole")
    replies: list[int] = []
    visitor = {**browser, "User-Agent": "Mozilla/5.0 StallTest/2"}
    worker = threading.Thread(
        target=lambda: replies.append(client.get("/procedures/2", headers=visitor).status)
    )
    worker.start()
    # A page that asks for recommendations should fall back to popular content well
    # before a visitor gives up; 6 s is already far too long for a page.
    worker.join(6.0)
    answered_in_time = not worker.is_alive()
    proxy.down()  # reset the stalled connections so the request (and the test) can end
    worker.join(30.0)
    client.close()
    penchant.close(timeout=1.0)
    assert replies == [200]
    assert answered_in_time


def test_a_database_that_never_answers_from_the_start_does_not_hold_up_the_first_page(
    pg_url: str, proxy: ChaosProxy
) -> None:
    """The store's first use (its schema check and first connection) is a read of
    the request path like any other, under the read deadline: the first page of a
    process whose database never answers waited for the connect timeout (5 s)
    where the deadline is 1 s."""
    Store(pg_url).create_all()
    proxy.set_mode("blackhole")
    penchant = Penchant(
        database_url=sa.make_url(pg_url)
        .set(host="127.0.0.1", port=proxy.port)
        .render_as_string(False),
        secret_key="stall-0123456789abcdef",
        catalog=small_catalog(),
        read_timeout=1.0,
    )
    client = site_client("wsgi", penchant)
    browser = {"User-Agent": "Mozilla/5.0 StallTest/3", "Sec-Fetch-Site": "same-origin"}
    replies: list[int] = []
    worker = threading.Thread(
        target=lambda: replies.append(client.get("/procedures/2", headers=browser).status)
    )
    worker.start()
    worker.join(4.0)  # the deadline is 1 s; the connect timeout, 5 s
    answered_in_time = not worker.is_alive()
    proxy.down()
    worker.join(30.0)
    client.close()
    penchant.close(timeout=1.0)
    assert replies == [200]
    assert answered_in_time
