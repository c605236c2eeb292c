"""Rate limits: the window arithmetic, both backends, workers sharing Redis, failing open."""

from __future__ import annotations

import logging
import multiprocessing
import threading
import uuid
from collections.abc import Iterator

import pytest

from penchant.config import Settings
from penchant.middleware.ratelimit import (
    CounterBackend,
    MemoryBackend,
    RateLimiter,
    RedisBackend,
)
from tests.conftest import REDIS_URL, redis_client

WINDOW = 60.0
# A moment at the very start of a window, so the previous window weighs fully.
T0 = 1_700_000_040.0
assert T0 % WINDOW == 0


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    client = redis_client()
    prefix = f"penchant-test:{uuid.uuid4().hex}:"
    yield prefix
    keys = list(client.scan_iter(match=f"{prefix}*"))  # type: ignore[attr-defined]
    if keys:
        client.delete(*keys)  # type: ignore[attr-defined]
    client.close()  # type: ignore[attr-defined]


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> Iterator[CounterBackend]:
    if request.param == "memory":
        yield MemoryBackend()
        return
    prefix = request.getfixturevalue("redis_prefix")
    redis_backend = RedisBackend(REDIS_URL, prefix=prefix)
    yield redis_backend
    redis_backend.close()


def test_exactly_the_limit_is_admitted_within_one_window(backend: CounterBackend) -> None:
    limiter = RateLimiter({"visitor": 7}, backend=backend, secret=b"k")
    results = [limiter.allow("alice", now=T0 + i) for i in range(12)]
    assert results == [True] * 7 + [False] * 5
    assert limiter.stats().admitted == 7
    assert limiter.stats().limited == 5


def test_keys_and_kinds_are_counted_apart(backend: CounterBackend) -> None:
    limiter = RateLimiter({"visitor": 2, "ip": 3}, backend=backend)
    assert limiter.admit("alice", 5, now=T0) == 2
    assert limiter.admit("bob", 5, now=T0) == 2
    # The same string as an IP is another counter with its own limit.
    assert limiter.admit("alice", 5, now=T0, kind="ip") == 3


def test_a_batch_is_admitted_up_to_what_is_left(backend: CounterBackend) -> None:
    limiter = RateLimiter({"visitor": 10}, backend=backend)
    assert limiter.admit("v", 4, now=T0) == 4
    assert limiter.admit("v", 4, now=T0) == 4
    assert limiter.admit("v", 4, now=T0) == 2
    assert limiter.admit("v", 4, now=T0) == 0
    assert not limiter.allow("v", now=T0)


def test_the_previous_window_weighs_by_its_overlap(backend: CounterBackend) -> None:
    limit = 20
    limiter = RateLimiter({"visitor": limit}, backend=backend)
    assert limiter.admit("v", 12, now=T0 + 10) == 12
    # A quarter into the next window, three quarters of the 12 still count: 9.
    at = T0 + WINDOW + WINDOW / 4
    expected = limit - int(12 * 0.75)
    assert limiter.admit("v", 100, now=at) == expected
    # Refused attempts count too: right after the flood nothing gets through.
    assert limiter.admit("v", 1, now=T0 + 2 * WINDOW) == 0
    # A full window without traffic later, the whole limit is available again.
    assert limiter.admit("v", limit, now=T0 + 4 * WINDOW) == limit


def test_a_zero_limit_disables_that_kind(backend: CounterBackend) -> None:
    limiter = RateLimiter({"visitor": 0, "ip": 1}, backend=backend)
    assert limiter.admit("v", 1000, now=T0) == 1000
    assert limiter.admit("1.2.3.4", 1000, now=T0, kind="ip") == 1
    assert RateLimiter({"visitor": 0, "ip": 0}).enabled is False


def test_a_beacon_must_fit_both_limits(backend: CounterBackend) -> None:
    limiter = RateLimiter({"visitor": 5, "ip": 8}, backend=backend)
    assert limiter.admit_beacon(visitor="a", ip="10.0.0.1", cost=3, now=T0) == 3
    # Visitor "a" has 2 left of 5; the IP has 5 left of 8.
    assert limiter.admit_beacon(visitor="a", ip="10.0.0.1", cost=4, now=T0) == 2
    # Another visitor behind the same IP: the IP's remaining budget binds.
    # (The IP counted 7 attempts so far, so 1 is left.)
    assert limiter.admit_beacon(visitor="b", ip="10.0.0.1", cost=4, now=T0) == 1
    assert limiter.admit_beacon(visitor=None, ip=None, cost=4, now=T0) == 4


def test_threads_never_admit_more_than_the_limit(backend: CounterBackend) -> None:
    limit = 50
    limiter = RateLimiter({"visitor": limit}, backend=backend)
    admitted: list[int] = []
    lock = threading.Lock()

    def hammer() -> None:
        mine = sum(limiter.admit("shared", 1, now=T0) for _ in range(40))
        with lock:
            admitted.append(mine)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(admitted) == limit


def test_memory_backend_keeps_a_bounded_number_of_keys() -> None:
    backend = MemoryBackend(max_keys=100)
    limiter = RateLimiter({"visitor": 1}, backend=backend)
    for i in range(1000):
        limiter.allow(f"visitor-{i}", now=T0)
    assert len(backend) == 100


def test_redis_never_holds_the_raw_key(redis_prefix: str) -> None:
    client = redis_client()
    backend = RedisBackend(REDIS_URL, prefix=redis_prefix)
    limiter = RateLimiter({"ip": 5}, backend=backend, secret=b"site secret")
    limiter.allow("203.0.113.77", now=T0, kind="ip")
    keys = [k.decode() for k in client.scan_iter(match=f"{redis_prefix}*")]  # type: ignore[attr-defined]
    assert len(keys) == 1
    assert "203.0.113.77" not in keys[0]
    # Kept for two windows, then Redis forgets it on its own.
    assert 0 < client.ttl(keys[0]) <= 2 * WINDOW  # type: ignore[attr-defined]
    backend.close()
    client.close()  # type: ignore[attr-defined]


def _worker_admits(prefix: str, limit: int, attempts: int, start: object, out: object) -> None:
    backend = RedisBackend(REDIS_URL, prefix=prefix)
    limiter = RateLimiter({"visitor": limit}, backend=backend)
    start.wait()  # type: ignore[attr-defined]
    admitted = sum(limiter.admit("the same visitor", 1, now=T0) for _ in range(attempts))
    out.put(admitted)  # type: ignore[attr-defined]
    backend.close()


def test_two_processes_share_one_limit_through_redis(redis_prefix: str) -> None:
    limit = 60
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    out = context.Queue()
    workers = [
        context.Process(target=_worker_admits, args=(redis_prefix, limit, 50, start, out))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    start.set()
    results = [out.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    # 100 attempts from two processes: exactly the shared limit gets through.
    assert sum(results) == limit


def test_a_dead_redis_fails_open_counts_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    backend = RedisBackend("redis://127.0.0.1:1/0")
    clock = [T0]
    limiter = RateLimiter({"visitor": 1}, backend=backend, clock=lambda: clock[0], error_pause=5.0)
    with caplog.at_level(logging.DEBUG, logger="personalization"):
        assert [limiter.allow("v") for _ in range(3)] == [True, True, True]
    stats = limiter.stats()
    assert stats.admitted == 3
    # The first failure pauses the backend: the next two calls do not wait on it.
    assert stats.backend_errors == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "events accepted" in warnings[0].getMessage()
    # After the pause it is tried again (and fails again, still open).
    clock[0] += 6.0
    assert limiter.allow("v")
    assert limiter.stats().backend_errors == 2
    backend.close()


def test_from_settings_picks_the_backend_and_limits() -> None:
    plain = RateLimiter.from_settings(
        Settings.build(visitor_rate_limit=3, ip_rate_limit=0, secret_key="s-0123456789abcdef")
    )
    assert isinstance(plain.backend, MemoryBackend)
    assert plain.limits == {"visitor": 3}
    shared = RateLimiter.from_settings(Settings.build(redis_url=REDIS_URL))
    assert isinstance(shared.backend, RedisBackend)
    assert shared.limits == {"visitor": 240, "ip": 1200}
    shared.close()


def test_bad_limits_raise_at_start_up() -> None:
    with pytest.raises(ValueError, match="ip rate limit"):
        RateLimiter({"ip": -1})
    with pytest.raises(ValueError, match="window"):
        RateLimiter({"ip": 1}, window=0)
