"""Rate limits on beacon events, per visitor and per client IP.

A sliding-window estimate built from two fixed windows: the count of the
current window plus the previous window's count weighted by how much of it
still overlaps the sliding window. It needs two integers per key, and the same
arithmetic runs over an in-process LRU (one worker) or Redis (every worker of
every machine shares the counts).

Keys are hashed before they reach a backend, so Redis never holds a raw IP
address. A Redis failure fails open: the event is accepted, the failure is
logged on the ``personalization`` logger and counted, and Redis is left alone
for a short pause so a dead server does not slow every beacon.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from penchant.config import Settings

__all__ = [
    "CounterBackend",
    "MemoryBackend",
    "RateLimiter",
    "RateLimiterStats",
    "RedisBackend",
    "backend_for",
]

logger = logging.getLogger("personalization")

#: Seconds in one window: the limits are events per minute.
WINDOW = 60.0


class CounterBackend(Protocol):
    """Adds ``cost`` to a key's counter for window ``index``; returns (current, previous)."""

    def hit(self, key: str, index: int, cost: int, window: float) -> tuple[int, int]: ...

    def remember(self, key: str, ttl: float) -> bool:
        """Mark ``key`` for ``ttl`` seconds; True when it was not marked already."""
        ...

    def marked(self, key: str) -> bool:
        """Whether ``key`` is marked (:meth:`remember`) and not expired."""
        ...

    def token(self, key: str, ttl: float) -> str:
        """A random value kept under ``key`` for ``ttl`` seconds: the first caller's,
        the same for every caller until it expires (then gone for good)."""
        ...

    def close(self) -> None: ...


class MemoryBackend:
    """Counters in this process: a bounded LRU of keys, safe across threads."""

    def __init__(self, *, max_keys: int = 20_000, max_marks: int = 20_000) -> None:
        # key -> [window index, count in that window, count in the window before]
        self._counters: OrderedDict[str, list[int]] = OrderedDict()
        # key -> (monotonic expiry, value): marks and tokens. Fewer than counters: a
        # mark forgotten early only means a visitor is judged again (and then counts
        # against their network's budget once more), and each costs about 270 bytes.
        self._marks: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._max_keys = max_keys
        self._max_marks = max_marks
        self._lock = threading.Lock()

    def hit(self, key: str, index: int, cost: int, window: float) -> tuple[int, int]:
        with self._lock:
            entry = self._counters.get(key)
            if entry is None:
                entry = [index, 0, 0]
                self._counters[key] = entry
            else:
                self._counters.move_to_end(key)
            if entry[0] == index - 1:
                entry[:] = [index, 0, entry[1]]
            elif entry[0] < index - 1:
                entry[:] = [index, 0, 0]
            elif entry[0] > index:
                # A caller's clock behind another's: count it in the newer window.
                index = entry[0]
            entry[1] += cost
            current, previous = entry[1], entry[2]
            while len(self._counters) > self._max_keys:
                self._counters.popitem(last=False)
        return current, previous

    def _set_if_absent(self, key: str, value: str, ttl: float) -> tuple[bool, str]:
        now = time.monotonic()
        with self._lock:
            entry = self._marks.get(key)
            if entry is not None and entry[0] > now:
                return False, entry[1]
            self._marks[key] = (now + ttl, value)
            self._marks.move_to_end(key)
            while len(self._marks) > self._max_marks:
                self._marks.popitem(last=False)
        return True, value

    def remember(self, key: str, ttl: float) -> bool:
        return self._set_if_absent(key, "1", ttl)[0]

    def marked(self, key: str) -> bool:
        entry = self._marks.get(key)
        return entry is not None and entry[0] > time.monotonic()

    def token(self, key: str, ttl: float) -> str:
        return self._set_if_absent(key, secrets.token_hex(32), ttl)[1]

    def __len__(self) -> int:
        return len(self._counters)

    def close(self) -> None:
        with self._lock:
            self._counters.clear()
            self._marks.clear()


class RedisBackend:
    """Counters in Redis, shared by every worker; INCRBY + EXPIRE + GET in one transaction.

    The client is created lazily in the process that uses it (after a fork).
    Network timeouts are short: a beacon must never wait on a sick Redis.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "penchant:rl:",
        socket_timeout: float = 0.25,
        client_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self._socket_timeout = socket_timeout
        self._client_factory = client_factory
        self._client: Any = None
        self._lock = threading.Lock()

    def _redis(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    if self._client_factory is not None:
                        self._client = self._client_factory()
                    else:
                        import redis

                        self._client = redis.Redis.from_url(
                            self.url,
                            socket_timeout=self._socket_timeout,
                            socket_connect_timeout=self._socket_timeout,
                        )
        return self._client

    def hit(self, key: str, index: int, cost: int, window: float) -> tuple[int, int]:
        current_key = f"{self.prefix}{key}:{index}"
        previous_key = f"{self.prefix}{key}:{index - 1}"
        pipe = self._redis().pipeline(transaction=True)
        pipe.incrby(current_key, cost)
        # Kept for two windows: the next window reads it as its previous one.
        pipe.expire(current_key, math.ceil(2 * window))
        pipe.get(previous_key)
        current, _, previous = pipe.execute()
        return int(current), int(previous or 0)

    def remember(self, key: str, ttl: float) -> bool:
        return bool(self._redis().set(f"{self.prefix}{key}", b"1", nx=True, ex=math.ceil(ttl)))

    def marked(self, key: str) -> bool:
        return bool(self._redis().exists(f"{self.prefix}{key}"))

    def token(self, key: str, ttl: float) -> str:
        client = self._redis()
        name = f"{self.prefix}{key}"
        client.set(name, secrets.token_hex(32).encode(), nx=True, ex=math.ceil(ttl))
        value = client.get(name)
        if value is None:  # expired between the two calls: ask again
            return self.token(key, ttl)
        return bytes(value).decode()

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


def backend_for(settings: Settings) -> CounterBackend:
    """Redis when ``redis_url`` is set (every worker shares the counts), else memory."""
    return RedisBackend(settings.redis_url) if settings.redis_url else MemoryBackend()


@dataclass(frozen=True, slots=True)
class RateLimiterStats:
    """What the limiter decided since start: events admitted, events over a limit,
    backend failures (each failed open)."""

    admitted: int
    limited: int
    backend_errors: int

    def as_dict(self) -> dict[str, int]:
        return {
            "admitted": self.admitted,
            "limited": self.limited,
            "backend_errors": self.backend_errors,
        }


class RateLimiter:
    """Events per window per key, for several kinds of key (``visitor``, ``ip``).

    ``limits`` maps a kind to its events per window; a kind missing or set to 0
    is not limited. Keys are hashed with ``secret`` (when given) before they
    reach the backend.
    """

    def __init__(
        self,
        limits: dict[str, int],
        *,
        window: float = WINDOW,
        backend: CounterBackend | None = None,
        secret: bytes | None = None,
        clock: Callable[[], float] = time.time,
        error_pause: float = 1.0,
    ) -> None:
        if window <= 0:
            raise ValueError("window: must be positive")
        for kind, limit in limits.items():
            if limit < 0:
                raise ValueError(f"{kind} rate limit: must not be negative")
        self.limits = {kind: limit for kind, limit in limits.items() if limit > 0}
        self.window = window
        self.backend: CounterBackend = backend if backend is not None else MemoryBackend()
        self._secret = secret or b""
        self._clock = clock
        self._error_pause = error_pause
        self._paused_until = 0.0
        self._failing = False
        self._admitted = 0
        self._limited = 0
        self._errors = 0
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        secret: bytes | None = None,
        backend: CounterBackend | None = None,
    ) -> RateLimiter:
        """Per-visitor and per-IP limits; shared through Redis when ``redis_url`` is set
        (``backend``: the store to count in, default :func:`backend_for` the settings)."""
        if backend is None:
            backend = backend_for(settings)
        if secret is None and settings.secret_key is not None:
            secret = settings.secret_key.encode()
        return cls(
            {"visitor": settings.visitor_rate_limit, "ip": settings.ip_rate_limit},
            backend=backend,
            secret=secret,
        )

    @property
    def enabled(self) -> bool:
        return bool(self.limits)

    def _digest(self, kind: str, key: str) -> str:
        # Keyed so a counter key in Redis reveals neither the IP nor the visitor.
        return hashlib.blake2b(
            f"{kind}\x00{key}".encode("utf-8", "surrogatepass"),
            key=self._secret[:64],
            digest_size=16,
        ).hexdigest()

    def admit(
        self, key: str, cost: int = 1, now: float | None = None, *, kind: str = "visitor"
    ) -> int:
        """How many of ``cost`` events from ``key`` fit within the ``kind`` limit (0..cost)."""
        limit = self.limits.get(kind, 0)
        if cost <= 0 or limit == 0:
            return max(cost, 0)
        now = self._clock() if now is None else now
        if now < self._paused_until:
            return self._count(cost, cost)
        index = math.floor(now / self.window)
        elapsed = now / self.window - index
        try:
            current, previous = self.backend.hit(
                f"{kind}:{self._digest(kind, key)}", index, cost, self.window
            )
        except Exception as exc:
            return self._failed_open(exc, now, cost)
        if self._failing:
            self._failing = False
            logger.warning("rate limit backend is back")
        estimate = previous * (1.0 - elapsed) + current
        over = math.ceil(estimate - limit - 1e-9)
        return self._count(cost, min(cost, max(0, cost - max(0, over))))

    def allow(
        self, key: str, cost: int = 1, now: float | None = None, *, kind: str = "visitor"
    ) -> bool:
        """True when all ``cost`` events from ``key`` fit within the ``kind`` limit."""
        return self.admit(key, cost, now, kind=kind) == cost

    def admit_beacon(
        self,
        *,
        visitor: str | None,
        ip: str | None,
        cost: int = 1,
        now: float | None = None,
    ) -> int:
        """How many of a beacon's ``cost`` events fit within both the visitor and the IP limit."""
        now = self._clock() if now is None else now
        admitted = cost
        if visitor is not None:
            admitted = min(admitted, self.admit(visitor, cost, now, kind="visitor"))
        if ip is not None:
            admitted = min(admitted, self.admit(ip, cost, now, kind="ip"))
        return admitted

    def _count(self, cost: int, admitted: int) -> int:
        with self._lock:
            self._admitted += admitted
            self._limited += cost - admitted
        return admitted

    def _failed_open(self, exc: Exception, now: float, cost: int) -> int:
        with self._lock:
            self._errors += 1
            first, self._failing = not self._failing, True
            self._paused_until = now + self._error_pause
        # One warning per outage; every later failure only at debug level.
        log = logger.warning if first else logger.debug
        log("rate limit backend failed (%s: %s); events accepted", exc.__class__.__name__, exc)
        return self._count(cost, cost)

    def stats(self) -> RateLimiterStats:
        with self._lock:
            return RateLimiterStats(self._admitted, self._limited, self._errors)

    def close(self) -> None:
        self.backend.close()
