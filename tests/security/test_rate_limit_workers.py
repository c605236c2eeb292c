"""Rate limits hold across worker processes that share Redis.

Two uvicorn processes serve the same site; one visitor sends twice its
per-minute limit in beacons, alternating between them. Together they admit the
limit and no more, each process did its share, the table holds exactly what
was admitted, and Redis holds no raw address or visitor id.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from penchant.storage.store import Store
from tests.conftest import skip_or_fail
from tests.harness import BEACON, all_rows, beacon_event
from tests.reliability.servers import uvicorn_servers
from tests.security.helpers import SAME_ORIGIN

REDIS_URL = "redis://127.0.0.1:6379/13"
LIMIT = 30
TOKEN = re.compile(r'data-token="([^"]+)"')


@pytest.fixture
def redis_db() -> Iterator[object]:
    """Redis database 13; the keys this test creates are deleted afterwards."""
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:  # pragma: no cover - depends on the machine
        skip_or_fail(f"Redis not reachable: {exc}")
    before = set(client.scan_iter(match="penchant:*"))
    yield client
    created = set(client.scan_iter(match="penchant:*")) - before
    if created:
        client.delete(*created)
    client.close()


@pytest.mark.slow
def test_two_workers_share_one_visitor_limit_through_redis(
    pg_url: str, tmp_path: Path, redis_db: object
) -> None:
    Store(pg_url).create_all()
    dashboard = uuid.uuid4().hex
    settings = {
        "visitor_rate_limit": LIMIT,
        "ip_rate_limit": 0,
        "redis_url": REDIS_URL,
        "flush_interval": 0.1,
        "dashboard_token": dashboard,
        # A secret of this run's own: its counter keys cannot meet another run's.
        "secret_keys": [uuid.uuid4().hex],
    }
    with uvicorn_servers(2, database_url=pg_url, settings=settings, log_dir=tmp_path) as servers:
        clients = [httpx.Client(base_url=s.url, headers=SAME_ORIGIN, timeout=10) for s in servers]
        token = TOKEN.search(clients[0].get("/").text)
        assert token is not None
        started = time.time()
        for i in range(2 * LIMIT):
            body = {"token": token.group(1), "events": [beacon_event(uuid.uuid4().hex)]}
            reply = clients[i % 2].post(
                BEACON, content=json.dumps(body), headers={"Content-Type": "text/plain"}
            )
            # Over the limit or not, the answer is the same.
            assert reply.status_code == 202
            assert reply.json()["accepted"] == 1
        finished = time.time()
        limits = [
            c.get(
                "/personalization/health", headers={"Authorization": f"Bearer {dashboard}"}
            ).json()["rate_limits"]
            for c in clients
        ]
        keys = [k.decode() for k in redis_db.scan_iter(match="penchant:*")]  # type: ignore[attr-defined]
        for client in clients:
            client.close()
        for server in servers:
            server.stop()

    # Shown with `pytest -rP`.
    print(f"limit={LIMIT} sent={2 * LIMIT} per_worker={limits} redis_keys={len(keys)}")
    allowed = LIMIT
    if math.floor(started / 60) != math.floor(finished / 60):
        # The burst crossed a window boundary: the new window adds at most its elapsed share.
        allowed += math.ceil(LIMIT * (finished % 60) / 60)
    admitted = sum(int(s["admitted"]) for s in limits)
    assert LIMIT <= admitted <= allowed
    assert sum(int(s["limited"]) for s in limits) == 2 * LIMIT - admitted
    assert all(int(s["admitted"]) > 0 for s in limits)
    assert all(int(s["backend_errors"]) == 0 for s in limits)
    clicks = [r for r in all_rows(pg_url, "user_interactions") if r["interaction_type"] == "click"]
    assert len(clicks) == admitted
    visitor = clicks[0]["user_id"]
    assert keys
    assert not any("127.0.0.1" in key or visitor in key for key in keys)
