"""Penchant: the one object a host application creates.

It owns the settings, the catalog, the per-process Store and batch Writer, and
the caches of the read path (popular content, visitor profiles, neighbours). The
HTTP adapters in ``penchant.middleware`` and the seed-compatible facade both
work through it.
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import threading
import time
import uuid
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from penchant.config import Settings
from penchant.engine import ranking
from penchant.engine.affinity import fold
from penchant.engine.catalog import Catalog
from penchant.engine.events import INTERACTION_TYPES, ITEM_TYPES, TARGET_TYPES, Interaction
from penchant.engine.experiments import Variant, assign_variant
from penchant.engine.fingerprint import session_id as derive_session_id
from penchant.engine.ranking import (
    CONTENT_TYPES,
    HistoryEntry,
    Popularity,
    Recommendation,
    VisitorProfile,
)
from penchant.engine.report import Report
from penchant.storage import changes, popular
from penchant.storage.reporting import Exposure, experiment_report, record_exposures
from penchant.storage.schema_version import SchemaGate, upgrade
from penchant.storage.store import StoreUnavailable, describe_error

if TYPE_CHECKING:
    from penchant.middleware.types import ASGIApp, WSGIApp
    from penchant.storage.store import Store
    from penchant.storage.writer import Writer, WriterStats

__all__ = [
    "PAIR_NETWORKS",
    "ChangeFeed",
    "Penchant",
    "ReadUnavailable",
    "SharedCounts",
    "utcnow",
]

logger = logging.getLogger("personalization")

CatalogSource = Catalog | Callable[[], Catalog]
#: co-viewed items kept and read per item (fewer measurably lowers hit rates offline)
NEIGHBOURS_PER_ITEM = 50
NeighbourMap = Mapping[tuple[str, int], Sequence[tuple[tuple[str, int], float]]]
#: Networks a co-viewed pair must be seen from before it is read (ranked, a reason).
PAIR_NETWORKS = 2


class SharedCounts(Protocol):
    """Who counts in the shared counts (popular content, co-viewed items): the
    middleware's identity budget (``penchant.middleware.networks``)."""

    def verdict_of(self, user_id: str) -> Any:
        """The visitor's verdict (``.shared``, ``.network``), None if not judged here."""
        ...

    def first_pair_from(self, network: str, pair: str, at: datetime) -> bool:
        """True the first time today ``pair`` is seen from ``network``."""
        ...


def utcnow() -> datetime:
    """Naive UTC, as stored in the original tables."""
    now = datetime.now(UTC)
    return datetime.combine(now.date(), now.time())  # a third of what .replace() costs


#: Ranked lists kept per process (about 1 KB each; three per page of a visitor).
RANKED_CACHE = 4096
#: A popular-content refresh quicker than this (seconds) is waited for.
POPULAR_QUICK = 0.05


class _Job(threading.Event):
    """A background job: set when it is over."""

    def __init__(self, started: float) -> None:
        super().__init__()
        self.started = started


#: How often a process reads the change feed (other processes' writes).
CHANGE_POLL_INTERVAL = 0.25
#: Ids of its own feed rows a process remembers between two polls.
OWN_CHANGES_KEPT = 10_000
#: How often a writing process deletes old rows of the change feed.
CHANGE_TRIM_INTERVAL = 300.0


class ChangeFeed:
    """This process's place in the change feed (:mod:`penchant.storage.changes`):
    the last id read, and ``own``, ids of rows it wrote itself (bounded by
    :data:`OWN_CHANGES_KEPT`), which its polls skip."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last: int | None = None  # the last id read; None: not started
        self.polled = 0.0
        self.next_poll = 0.0
        self.next_trim = 0.0
        self.epoch = 0  # bumped whenever a poll drops cached profiles
        self.own: set[int] = set()  # ids this process wrote: its own caches are current

    def remember_own(self, ids: Sequence[int]) -> None:
        """Note ids this process wrote, so its own polls skip them (bounded)."""
        if self.last is None:
            return  # not reading the feed yet: the first poll starts after these
        if len(self.own) + len(ids) > OWN_CHANGES_KEPT:
            self.own.clear()  # a process that stopped reading: its polls drop a bit more
        self.own.update(ids)

    def forget_own_before(self, last: int) -> None:
        if self.own:
            self.own = {i for i in self.own if i > last}


@dataclass(frozen=True, slots=True)
class _Ranked:
    """One visitor's ranked list and what it was ranked from."""

    profile: VisitorProfile
    popularity: Popularity
    catalog: Catalog
    at: datetime
    result: tuple[Recommendation, ...]

    #: Recency weighs history by days; within this span a list ranks the same.
    FRESH_FOR: ClassVar[timedelta] = timedelta(seconds=60)

    def valid_for(
        self, profile: VisitorProfile, popularity: Popularity, catalog: Catalog, now: datetime
    ) -> bool:
        return (
            self.popularity is popularity
            and self.catalog is catalog
            and abs(now - self.at) <= self.FRESH_FOR
            and (self.profile is profile or self.profile == profile)
        )


class _Reading:
    """What one page's lists are ranked from, read once for all of them: the
    catalog, popular content, the clock and, on first need, the visitor's profile."""

    __slots__ = ("_penchant", "_profile", "catalog", "now", "popularity", "user_id")

    def __init__(self, penchant: Penchant, user_id: str | None) -> None:
        self._penchant = penchant
        self.user_id = user_id
        self.catalog = penchant.catalog
        self.popularity = penchant.popularity()
        self.now = penchant.clock()
        self._profile: VisitorProfile | None = None

    def profile(self) -> VisitorProfile:
        """The visitor's profile (a failed read raises, and is tried again next time)."""
        if self._profile is None:
            assert self.user_id is not None
            self._profile = self._penchant.profile(self.user_id)
        return self._profile


class _Deferred:
    """Work a request hands over rather than does: ``(function, *arguments)``,
    called in order by whoever drains it: the writer's thread when its batch is
    due, and a read of a profile first for the work that can move one
    (``reads``), so that a visitor's next request sees their own page view.
    Bounded, half of ``queue_size`` each: what does not fit is refused, and the
    caller counts it. A fork empties them in place."""

    __slots__ = ("cap", "later", "later_lock", "reads", "reads_lock")

    def __init__(self, queue_size: int) -> None:
        self.cap = max(1, queue_size // 2)
        self.reads: deque[tuple[Any, ...]] = deque()  # drained before a profile is read
        self.later: deque[tuple[Any, ...]] = deque()  # by the writer's thread only
        self.reads_lock = threading.Lock()
        self.later_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.reads) + len(self.later)

    def reset(self) -> None:
        """Empty, with new locks (in a forked child: a parent's thread may hold one)."""
        self.reads.clear()
        self.later.clear()
        self.reads_lock = threading.Lock()
        self.later_lock = threading.Lock()

    def drain(self) -> None:
        self.drain_for_reads()
        if self.later:
            with self.later_lock:
                _call_each(self.later)

    def drain_for_reads(self) -> None:
        """Also waits for a drain in progress: what it took may be a visitor's view."""
        if self.reads or self.reads_lock.locked():
            with self.reads_lock:  # one drainer at a time keeps the order
                _call_each(self.reads)


def _call_each(items: deque[tuple[Any, ...]]) -> None:
    """Call what is waiting now, and no more: under a flood, work keeps arriving
    while this runs, and a drain that went on until the deque was empty would
    never hand the writer back its thread (no batch would be written)."""
    pop = items.popleft
    for _ in range(len(items)):
        function, *arguments = pop()
        try:
            function(*arguments)
        except Exception:
            logger.exception("deferred work failed")


class _TTLCache:
    """A small LRU cache whose entries expire; thread-safe (changes under a lock,
    hits without one)."""

    def __init__(self, maxsize: int, ttl: float, clock: Callable[[], float]) -> None:
        self._data: OrderedDict[Any, tuple[float, Any]] = OrderedDict()
        self._maxsize, self._ttl, self._clock = maxsize, ttl, clock
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any | None:
        # No lock on the hit path (each step is whole under the interpreter lock): a
        # lock taken on every request is one a threaded server's requests queue on.
        data = self._data
        entry = data.get(key)
        if entry is None:
            return None
        if entry[0] < self._clock():
            data.pop(key, None)  # at worst a fresher value put meanwhile: one miss
            return None
        try:  # noqa: SIM105 - suppress() would cost a context manager on every hit
            data.move_to_end(key)
        except KeyError:  # evicted meanwhile
            pass
        return entry[1]

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._data[key] = (self._clock() + self._ttl, value)
            self._data.move_to_end(key)
            while len(self._data) > self._maxsize:
                self._data.popitem(last=False)

    def pop(self, key: Any) -> None:
        with self._lock:
            self._data.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def pop_where(self, predicate: Callable[[Any], bool]) -> None:
        """Drop every entry whose key matches (a scan: for rare events like erasure)."""
        with self._lock:
            for key in [k for k in self._data if predicate(k)]:
                del self._data[key]

    def __len__(self) -> int:
        return len(self._data)


_T = TypeVar("_T")


class ReadUnavailable(Exception):
    """The database did not answer a read in time, or recently failed."""


class _ReadGuard:
    """Reads of the request path: a deadline each, and a breaker after failures.

    A read runs on a small pool so the request can stop waiting after
    ``timeout``; after a failure, reads are skipped for a growing pause so an
    outage costs each request nothing and the log one line.
    """

    def __init__(
        self,
        timeout: float,
        clock: Callable[[], float],
        said: Callable[[], bool] = lambda: False,
    ) -> None:
        self._timeout = timeout
        self._clock = clock
        self._said = said  # True: the problem is already in the log (the schema gate's)
        self._pool: ThreadPoolExecutor | None = None
        self._pid = -1
        self._open_until = 0.0
        self._failures = 0
        self._lock = threading.Lock()

    def call(self, what: str, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        if self._clock() < self._open_until:
            raise ReadUnavailable(what)
        if self._pid != os.getpid() or self._pool is None:
            with self._lock:
                if self._pid != os.getpid() or self._pool is None:
                    self._pool = ThreadPoolExecutor(4, thread_name_prefix="penchant-read")
                    self._pid = os.getpid()
        future = self._pool.submit(fn, *args, **kwargs)
        try:
            result = future.result(timeout=self._timeout)
        except FuturesTimeout:
            self.trip(what, f"no answer within {self._timeout:g} s")
            raise ReadUnavailable(what) from None
        except Exception as exc:
            self.trip(what, f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200]}")
            raise ReadUnavailable(what) from exc
        if self._failures:
            with self._lock:
                self._failures = 0
            logger.warning("database reads answer again")
        return result

    def trip(self, what: str, why: str) -> None:
        """Count a failure: reads pause for a growing while; the first is logged."""
        with self._lock:
            self._failures += 1
            pause = min(30.0, 0.5 * 2 ** (self._failures - 1))
            self._open_until = self._clock() + pause
            first = self._failures == 1
        if first and not self._said():
            logger.warning("%s failed (%s); serving popular content for a while", what, why)
        else:
            logger.debug("%s failed again (%s); next try in %.1f s", what, why, pause)

    @property
    def open(self) -> bool:
        return self._clock() < self._open_until


class Penchant:
    """Personalization for anonymous visitors of one site.

    ``Penchant()`` reads the environment; keyword arguments are any
    :class:`~penchant.Settings` field (plus ``secret_key``) and win over it.
    ``clock`` gives "now" (naive UTC) to everything dated; ``timer`` gives the
    seconds that caches, deadlines and retries count (``time.monotonic``).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        catalog: CatalogSource | None = None,
        catalog_ttl: float = 300.0,
        clock: Callable[[], datetime] = utcnow,
        timer: Callable[[], float] = time.monotonic,
        **settings_kwargs: Any,
    ) -> None:
        if settings is None:
            settings = Settings.from_env(**settings_kwargs)
        elif settings_kwargs:
            settings = Settings.build(**{**_fields(settings), **settings_kwargs})
        self.settings = settings
        self.clock = clock
        self._monotonic = timer  # seconds, for caches, deadlines and retries
        #: Monotonic seconds (``timer=``): what caches, deadlines and backoffs count.
        self.timer = timer
        self._catalog_source: CatalogSource = catalog if catalog is not None else Catalog()
        self._catalog_ttl = catalog_ttl
        self._catalog: Catalog | None = None
        self._catalog_expires = 0.0
        self._lock = threading.RLock()  # re-entered: the secret is read through the store
        self._pid = -1
        self._store: Store | None = None
        self._writer: Writer | None = None
        self._schema = self._new_schema_gate()
        self._secret: bytes | None = (
            settings.secret_key.encode() if settings.secret_key is not None else None
        )
        # Read path: a deadline per read and a breaker after failures.
        self._reads = _ReadGuard(
            settings.read_timeout, self._monotonic, said=lambda: not self._schema.ready
        )
        # Read path caches.
        self._popular: tuple[float, Popularity] | None = None
        self._popular_job: _Job | None = None
        self._popular_cost = 0.0  # seconds the last refresh took
        self._profiles = _TTLCache(
            settings.affinity_cache_size, settings.affinity_cache_ttl, self._monotonic
        )
        self._neighbours = _TTLCache(50_000, settings.popular_ttl, self._monotonic)
        # A visitor's ranked lists, reused while their profile, popular content and
        # the catalog are the same objects (or equal) and co-viewed items are cached.
        self._ranked = _TTLCache(
            min(settings.affinity_cache_size, RANKED_CACHE), settings.popular_ttl, self._monotonic
        )
        # Page views handed over by requests, turned into events off the request.
        self._deferred = _Deferred(settings.queue_size)
        # Read-your-writes: events submitted and not yet written, per visitor.
        self._pending: dict[str, list[Interaction]] = {}
        # Writes this process has seen finish: a profile read while one finished may
        # predate it, so it is not cached (see profile()).
        self._written = 0
        self._pending_lock = threading.Lock()
        # The change feed: other processes' writes drop cached profiles (see changes.py).
        self._feed = ChangeFeed()
        # Exposures of recommendation lists, written by the writer's thread.
        self._exposures: deque[Exposure] = deque(maxlen=settings.queue_size)
        # Who counts in the shared counts: set by the middleware (count_shared_by).
        self.shared_counts: SharedCounts | None = None
        # Sessions without cookies: visitor -> (started, last seen, session id).
        self._sessions: OrderedDict[str, tuple[datetime, datetime, str]] = OrderedDict()
        self._session_timeout = timedelta(seconds=settings.session_timeout)
        _live.add(self)

    # ------------------------------------------------------------- resources
    def _ensure_process(self) -> None:
        """One Store and one Writer per process, created after fork."""
        pid = os.getpid()
        if self._pid == pid:
            return
        with self._lock:
            if self._pid == pid:
                return
            self._store = None
            self._writer = None
            self._schema = self._new_schema_gate()
            self._pending.clear()
            self._profiles.clear()
            self._ranked.clear()
            self._feed = ChangeFeed()
            self._popular_job = None
            self._pid = pid

    @property
    def store(self) -> Store:
        """This process's store; on first use its tables are created if the
        database has none (see :class:`~penchant.storage.schema_version.SchemaGate`)."""
        store = self._process_store()
        if not self._schema.ready:
            self._schema.check(store)
        return store

    def _process_store(self) -> Store:
        self._ensure_process()
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = self._new_store()
        return self._store

    def _store_for_writes(self) -> Store:
        """The store, once its schema is current (else the writer waits and retries)."""
        store = self.store
        self._schema.require(store)
        return store

    def _first_run_hint(self, store: Store) -> str:
        where = store.display_url
        if store.dialect == "sqlite" and store.url.database not in (None, "", ":memory:"):
            where = f"{where} (the file {os.path.abspath(str(store.url.database))})"
        s = self.settings
        if s.dashboard_token or (s.dashboard_user and s.dashboard_password):
            login = "with PENCHANT_DASHBOARD_TOKEN or the dashboard user and password"
        else:
            login = "after setting PENCHANT_DASHBOARD_TOKEN (it is closed without one)"
        return (
            f"penchant created its tables in an empty database: {where}. "
            f"See what it stores with `penchant stats --database-url '{store.display_url}'`, "
            f"or open {s.prefix}/dashboard on the site {login}"
        )

    def _new_store(self) -> Store:
        from penchant.storage.store import Store

        # late-bound: a clock swapped on the service (tests) is the one the store reads
        return Store(self.settings.database_url, clock=lambda: self.clock())

    @property
    def writer(self) -> Writer:
        self._ensure_process()
        if self._writer is None:
            with self._lock:
                if self._writer is None:
                    self._writer = self._new_writer()
        return self._writer

    def _new_writer(self) -> Writer:
        from penchant.storage.writer import Writer

        s = self.settings
        return Writer(
            self._store_for_writes,
            self._deltas_for,
            rate=s.decay_rate,
            batch_size=s.batch_size,
            queue_size=s.queue_size,
            flush_interval=s.flush_interval,
            on_stored=self._on_stored,
            pairs_for=self._pairs_for,
            clock=lambda: self.clock(),
            intake=self._deferred,
        )

    def count_shared_by(self, counts: SharedCounts) -> None:
        """Let ``counts`` decide who counts in popular content and co-viewed items
        (the middleware's identity budget); without it everyone does."""
        self.shared_counts = counts

    def _pairs_for(
        self, new: Sequence[Interaction], recent: Mapping[str, Sequence[HistoryEntry]]
    ) -> Mapping[tuple[tuple[str, int], tuple[str, int]], float]:
        """Co-occurrence increments of the visitors who count, each network adding to
        a pair once a day (its first visitor's increment) and counted in the pair's
        ``networks``. A visitor not judged by the identity budget (the host's own
        :meth:`track`, or no budget at all) is a network of its own."""
        from penchant.engine.cooccurrence import PairIncrements, pair_increments_per_visitor

        counts = self.shared_counts
        out = PairIncrements()
        now = self.clock()
        for user_id, found in pair_increments_per_visitor(new, recent).items():
            verdict = None if counts is None else counts.verdict_of(user_id)
            if verdict is not None and not verdict.shared:
                continue
            network = "visitor:" + user_id if verdict is None else str(verdict.network)
            for (a, b), value in found.items():
                if b < a:
                    continue  # both orders of a pair are one pair, handled together
                name = f"{a[0]}:{a[1]}|{b[0]}:{b[1]}"
                if counts is not None and not counts.first_pair_from(network, name, now):
                    continue  # this network added to this pair today already
                for pair in ((a, b), (b, a)):
                    out[pair] = out.get(pair, 0.0) + value
                    out.networks[pair] = out.networks.get(pair, 0) + 1
        return out

    def _mark_unshared(self, written: Sequence[Interaction]) -> None:
        """Store which of these visitors do not count in popular content today."""
        counts = self.shared_counts
        if counts is None:
            return
        marks: set[tuple[str, Any]] = set()
        for event in written:
            verdict = counts.verdict_of(event.user_id)
            if verdict is not None and not verdict.shared:
                marks.add((event.user_id, event.timestamp.date()))
        if marks:
            try:
                self.store.mark_unshared(marks)
            except Exception as exc:
                logger.warning("visitors left out of popular content not noted: %s", exc)

    def _deltas_for(self, batch: Sequence[Interaction]) -> list[Any]:
        return fold(batch, self.catalog, self.settings.weights, self.settings.decay_rate)

    def init_db(self) -> None:
        """Bring the database to the current schema: create or migrate (idempotent)."""
        store = self._process_store()
        before, _ = upgrade(store)
        if before.is_empty:
            logger.warning("%s", self._first_run_hint(store))
        self._schema = self._new_schema_gate()
        self._schema.check(store)

    def _new_schema_gate(self) -> SchemaGate:
        return SchemaGate(
            create=self.settings.create_tables,
            first_run_hint=self._first_run_hint,
            clock=self._monotonic,
        )

    @property
    def secret(self) -> bytes:
        """The key for fingerprints and signatures.

        Without a configured secret, one is generated once and kept in the
        database, so every worker sharing the database agrees on it. Set
        ``PENCHANT_SECRET_KEY`` in production: a secret stored beside the data
        does not protect that data if the database leaks.
        """
        if self._secret is None:
            # Outside the lock: the store property takes the same (non-reentrant) lock.
            store = self.store
            with self._lock:
                if self._secret is None:
                    value = store.set_meta_if_absent("secret_key", secrets.token_hex(32))
                    logger.warning(
                        "no secret key configured; using one generated and stored in the database"
                    )
                    self._secret = value.encode()
        return self._secret

    @property
    def secrets(self) -> tuple[bytes, ...]:
        """All accepted secrets, newest first (for verifying signatures)."""
        if self.settings.secret_keys:
            return tuple(k.encode() for k in self.settings.secret_keys)
        return (self.secret,)

    # ----------------------------------------------------------------- catalog
    @property
    def catalog(self) -> Catalog:
        source = self._catalog_source
        if isinstance(source, Catalog):
            return source
        now = self._monotonic()
        if self._catalog is None or now >= self._catalog_expires:
            try:
                self._catalog = source()
            except Exception:
                logger.exception("catalog loader failed; keeping the previous catalog")
                if self._catalog is None:
                    self._catalog = Catalog()
            self._catalog_expires = now + self._catalog_ttl
        return self._catalog

    def set_catalog(self, catalog: CatalogSource) -> None:
        """Replace the catalog (or its loader); the next read uses it."""
        self._catalog_source = catalog
        self._catalog = None

    # -------------------------------------------------------------- identity
    def session_id(self, user_id: str, now: datetime | None = None) -> str:
        """The visitor's session: a new one after ``session_timeout`` without activity.

        Takes no lock: each step is one operation on the map, whole under the
        interpreter lock. A lock here is one that every request of a threaded
        server queues on (measured: 4 threads made the WSGI adapter cost 40 us per
        request instead of 10). Two requests of one visitor racing at the very
        start of a session may each derive an id; the later one is kept.
        """
        now = now or self.clock()
        sessions = self._sessions
        entry = sessions.get(user_id)
        if entry is not None and now - entry[1] <= self._session_timeout:
            started, derived = entry[0], entry[2]
            if now < entry[1]:
                now = entry[1]  # a page view turned into an event after a later event
        else:
            # Derived once per session, not per request: the HMAC is the costly part.
            started = now
            derived = derive_session_id(user_id, now.replace(microsecond=0), key=self.secret)
        sessions[user_id] = (started, now, derived)
        try:
            sessions.move_to_end(user_id)
            while len(sessions) > self.settings.affinity_cache_size:
                sessions.popitem(last=False)
        except KeyError:  # another thread evicted it meanwhile: nothing to keep in order
            pass
        return derived

    def variant(self, user_id: str | None) -> Variant:
        if user_id is None:
            return "personalized"
        return assign_variant(
            user_id, key=self.settings.experiment_key, holdout=self.settings.holdout
        )

    # ------------------------------------------------------------ write path
    def track(
        self,
        interaction_type: str,
        target_type: str,
        target_id: int | None = None,
        *,
        user_id: str,
        session_id: str | None = None,
        extra_data: Mapping[str, object] | None = None,
        timestamp: datetime | None = None,
        event_id: str | None = None,
    ) -> bool:
        """Queue one interaction for ``user_id``; never blocks, never raises.

        Returns False when it was not accepted (tracking disabled, bad type, full
        queue). Consent is the caller's to check: the middleware only calls this
        for visitors who may be tracked.
        """
        if not self.settings.enabled:
            return False
        if interaction_type not in INTERACTION_TYPES or target_type not in TARGET_TYPES:
            logger.debug("ignored interaction %r on %r", interaction_type, target_type)
            return False
        try:
            now = timestamp or self.clock()
            if interaction_type == "search" and extra_data and "categories" not in extra_data:
                query = extra_data.get("query")
                matched = self.catalog.categories_for_query(query) if isinstance(query, str) else ()
                kept = {k: v for k, v in extra_data.items() if k != "query"}
                if self.settings.store_search_text and isinstance(query, str):
                    from penchant.engine.privacy import scrub

                    kept["query"] = scrub(query)
                extra_data = {**kept, "categories": list(matched)}
            interaction = Interaction(
                user_id=user_id,
                session_id=session_id or self.session_id(user_id, now),
                interaction_type=interaction_type,
                target_type=target_type,
                target_id=target_id,
                timestamp=now,
                event_id=event_id or uuid.uuid4().hex,
                extra_data=extra_data,
            )
            return self.submit(interaction)
        except Exception:
            logger.exception("tracking failed")
            return False

    def defer(
        self, function: Callable[..., object], *arguments: object, before_reads: bool = False
    ) -> bool:
        """Hand ``function(*arguments)`` to the writer's thread, which calls it (in
        order) before its next batch: for work a request need not wait for, such as
        turning a page view into an event. ``before_reads``: it can move a visitor's
        profile, so a read of a profile in this process calls it first. False when
        the hand-over is full (counted as dropped)."""
        return self.defer_work((function, *arguments), before_reads)

    def defer_work(self, work: tuple[Any, ...], before_reads: bool = False) -> bool:
        """:meth:`defer` of ``work``, ``(function, *arguments)`` made by the caller:
        the middleware builds one tuple per page view, and no more."""
        deferred = self._deferred
        items = deferred.reads if before_reads else deferred.later
        if len(items) >= deferred.cap:
            self.writer.count_dropped("queue_full")
            return False
        items.append(work)
        writer = self._writer  # the thread runs: handed-over work waits for it
        if writer is None or not writer.running:
            self.writer.wake()
        return True

    def handed_over(self) -> list[tuple[tuple[Any, ...], bool]]:
        """What was handed over (:meth:`defer`) and still waits: ``(work,
        before_reads)`` pairs, ``work`` being ``(function, *arguments)``; those a
        read of a profile takes first come first. A copy, for checks and tests."""
        deferred = self._deferred
        return [
            *((work, True) for work in list(deferred.reads)),
            *((work, False) for work in list(deferred.later)),
        ]

    def settle(self) -> None:
        """Do now everything requests handed over (:meth:`defer`) that is still waiting."""
        deferred = self._deferred
        if deferred.reads or deferred.later:
            deferred.drain()

    def submit(self, interaction: Interaction) -> bool:
        """Hand a ready interaction to the writer and the read-your-writes overlay."""
        overlay = _moves_profile(interaction)
        if overlay:
            with self._pending_lock:
                self._pending.setdefault(interaction.user_id, []).append(interaction)
        accepted = self.writer.submit(interaction)
        if not accepted and overlay:
            self._forget_pending((interaction,))
        logger.debug(
            "tracked %s %s %s for %s",
            interaction.interaction_type,
            interaction.target_type,
            interaction.target_id,
            interaction.user_id,
        )
        return accepted

    def _on_stored(self, written: Sequence[Interaction]) -> None:
        self._mark_unshared(written)
        self._note_changes(self._forget_pending(written))
        self._write_exposures()

    def record_exposure(
        self,
        *,
        user_id: str,
        session_id: str,
        page_view_id: str,
        variant: str,
        content_type: str,
        recommendations: Sequence[Recommendation],
        at: datetime | None = None,
    ) -> None:
        """Remember that a page view showed this list (for the holdout comparison).

        Buffered in memory (bounded) and written by the writer's thread with its
        next batch, so the request never waits for the database. ``at``: when it
        was shown (default: now).
        """
        if not recommendations or not self.settings.enabled:
            return
        items = tuple([r.item.id for r in recommendations])
        self._exposures.append(
            Exposure(
                user_id,
                session_id,
                page_view_id,
                variant,
                content_type,
                items,
                self.clock() if at is None else at,
            )
        )

    def _write_exposures(self) -> None:
        if not self._exposures:
            return
        try:
            store = self._store_for_writes()
        except StoreUnavailable:
            return  # kept (the queue is bounded) until the database can take them
        batch: list[Exposure] = []
        while self._exposures:
            try:
                batch.append(self._exposures.popleft())
            except IndexError:
                break
        if not batch:
            return
        try:
            record_exposures(store, batch)
        except Exception:
            logger.exception("writing %d exposures failed; they are dropped", len(batch))

    def report(self, days: int = 30, *, minimum: int = 100) -> Report:
        """Personalized against holdout over the last ``days`` days; recommendation
        clicks are attributed by the server (see ``storage.reporting.experiment_report``)."""
        self._write_exposures()
        s = self.settings
        return experiment_report(
            self.store,
            self.clock(),
            days=days,
            key=s.experiment_key,
            holdout=s.holdout,
            minimum=minimum,
            window=s.attribution_window,
        )

    def _forget_pending(self, written: Sequence[Interaction]) -> set[str]:
        """Let go of written events; a visitor's cached profile is dropped only when
        an event that moves a profile was written (a plain page view does not).
        Returns those visitors."""
        by_user: dict[str, set[str]] = {}
        for event in written:
            if _moves_profile(event):
                by_user.setdefault(event.user_id, set()).add(event.event_id)
        if not by_user:
            return set()
        with self._pending_lock:
            self._written += 1
            for user_id, ids in by_user.items():
                left = [e for e in self._pending.get(user_id, ()) if e.event_id not in ids]
                if left:
                    self._pending[user_id] = left
                else:
                    self._pending.pop(user_id, None)
                self._profiles.pop(user_id)
        return set(by_user)

    # ------------------------------------------------------------- read path
    def profile(self, user_id: str) -> VisitorProfile:
        """Stored affinities and history, plus this process's unwritten events."""
        self._deferred.drain_for_reads()
        self._poll_changes()
        # Read without the lock (each read is whole under the interpreter lock); the
        # counters are read before the profile and checked again under it.
        written = self._written
        epoch = self._feed.epoch
        pending = list(self._pending.get(user_id, ()))
        stored: VisitorProfile | None = self._profiles.get(user_id)
        if stored is None:
            stored = self._reads.call("reading a visitor's profile", self._load_profile, user_id)
            with self._pending_lock:
                # not if a write finished, or a poll of the feed dropped profiles, meanwhile
                if self._written == written and self._feed.epoch == epoch:
                    self._profiles.put(user_id, stored)
        if not pending:
            return stored
        affinities = dict(stored.affinities)
        for delta in fold(pending, self.catalog, self.settings.weights, self.settings.decay_rate):
            affinities[delta.category_id] = delta.apply(
                affinities.get(delta.category_id), self.settings.decay_rate
            )
        recent = [
            HistoryEntry(e.interaction_type, e.target_type, e.target_id, e.timestamp)
            for e in reversed(pending)
            if e.target_id is not None
        ]
        return VisitorProfile(user_id, affinities, [*recent, *stored.history])

    def _load_profile(self, user_id: str) -> VisitorProfile:
        return self.store.load_profile(user_id)

    def _on_store(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """``fn(store, ...)``, for a read of the request path: called on the read
        pool, so the store's first use (the schema check, a connection to a
        database that does not answer) is under the read's deadline too."""
        return fn(self.store, *args, **kwargs)

    # ------------------------------------------------------------ change feed
    @property
    def change_feed(self) -> ChangeFeed:
        """This process's place in the change feed (a new one after a fork)."""
        return self._feed

    def _poll_changes(self) -> None:
        """Drop cached profiles that another process's writes made stale.

        At most once per :data:`CHANGE_POLL_INTERVAL` per process, by whichever
        request finds it due (one indexed query); the others do not wait for it.
        """
        self._ensure_process()  # a forked child starts a feed (and lock) of its own
        feed = self._feed
        now = self._monotonic()
        if now < feed.next_poll or not feed.lock.acquire(blocking=False):
            return
        try:
            feed.next_poll = now + CHANGE_POLL_INTERVAL
            if feed.last is None or now - feed.polled > changes.KEEP.total_seconds() / 2:
                # a new reader, or one that may have missed trimmed rows: start afresh
                last = self._reads.call(
                    "reading the change feed", self._on_store, changes.latest_change
                )
                stale: frozenset[int] | None = None
            else:
                last, stale = self._reads.call(
                    "reading the change feed",
                    self._on_store,
                    changes.changes_since,
                    feed.last,
                    feed.own,
                )
            with self._pending_lock:
                if stale is None:
                    self._profiles.clear()
                    self._ranked.clear()
                elif stale:
                    self._profiles.pop_where(lambda key: changes.bucket(key) in stale)
                    self._ranked.pop_where(lambda key: changes.bucket(key[0]) in stale)
                if stale is None or stale:
                    feed.epoch += 1
            feed.last, feed.polled = last, now
            feed.forget_own_before(last)
        except Exception as exc:
            # the cached profiles then live out their TTL (affinity_cache_ttl)
            logger.debug("change feed not read: %s", exc)
        finally:
            feed.lock.release()

    def _note_changes(self, user_ids: set[str]) -> None:
        """Tell other processes these visitors' profiles changed (never raises)."""
        if not user_ids:
            return
        try:
            store = self.store
            now = self.clock()
            ids = changes.note_changes(store, user_ids, now)
            self._feed.remember_own(ids)
            mono = self._monotonic()
            if mono >= self._feed.next_trim:
                self._feed.next_trim = mono + CHANGE_TRIM_INTERVAL
                changes.trim_changes(store, now)
        except Exception as exc:
            logger.warning("change feed not written: %s", exc)

    def popularity(self) -> Popularity:
        """Distinct visitors per item and day over the popular window, cached for
        ``popular_ttl``.

        Refreshed on a thread of its own (:mod:`penchant.storage.popular`). A
        request waits for a refresh only when nothing is cached yet, or when the
        last refresh was quick (under :data:`POPULAR_QUICK` s, a small site);
        otherwise it gets the previous lists while the refresh runs. Never waits
        longer than ``read_timeout``, nor while database reads are failing.
        """
        cached = self._popular
        if cached is not None and cached[0] > self._monotonic():
            return cached[1]
        if self._reads.open:  # the database is failing: do not add to its load
            return cached[1] if cached is not None else Popularity()
        job = self._refresh_popularity()
        if cached is None or self._popular_cost < POPULAR_QUICK:
            job.wait(max(0.0, self.settings.read_timeout - (self._monotonic() - job.started)))
        cached = self._popular
        return cached[1] if cached is not None else Popularity()

    def refresh_popularity(self, timeout: float = 30.0) -> bool:
        """Recompute popular content now, from everything written so far; wait for it.

        For operators and tests; requests never need it. False if it did not
        finish within ``timeout``.
        """
        deadline = self._monotonic() + timeout
        running = self._popular_job
        if running is not None and not running.wait(timeout):
            return False
        job = self._refresh_popularity()  # a new job: the one before may predate a write
        return job.wait(max(0.0, deadline - self._monotonic()))

    def _refresh_popularity(self) -> _Job:
        """The refresh in progress, or a new one."""
        self._ensure_process()  # a job of the parent's has no thread in a forked child
        with self._lock:
            job = self._popular_job
            if job is None or job.is_set():
                job = self._popular_job = _Job(self._monotonic())
                threading.Thread(
                    target=self._run_popularity, args=(job,), name="penchant-popular", daemon=True
                ).start()
        return job

    def _run_popularity(self, job: _Job) -> None:
        ttl = self.settings.popular_ttl
        try:
            store = self.store
            now = self.clock()
            popular.refresh(store, now, self.settings.popular_window_days)
            since = now - timedelta(days=self.settings.popular_window_days)
            value = popular.read_popularity(store, since)
            self._popular_cost = self._monotonic() - job.started
            self._popular = (self._monotonic() + ttl, value)
        except Exception as exc:
            if isinstance(exc, StoreUnavailable):
                # an unreachable database counts like a failed read: one log line per outage
                self._reads.trip("refreshing popular content", describe_error(exc))
            else:
                logger.warning("popular content not refreshed: %s", describe_error(exc))
            cached = self._popular
            # keep what we had; try again in a while, not on every request
            self._popular = (
                self._monotonic() + min(ttl, 5.0),
                cached[1] if cached is not None else Popularity(),
            )
        finally:
            job.set()

    def _neighbours_or_none(self, keys: Sequence[tuple[str, int]]) -> NeighbourMap:
        if not keys:
            return {}
        try:
            return self.neighbours(keys)
        except ReadUnavailable:
            return {}

    def neighbours(self, keys: Sequence[tuple[str, int]]) -> NeighbourMap:
        """Co-viewed items of ``keys``, cached per item."""
        found: dict[tuple[str, int], Sequence[tuple[tuple[str, int], float]]] = {}
        missing: list[tuple[str, int]] = []
        for key in keys:
            hit = self._neighbours.get(key)
            if hit is None:
                missing.append(key)
            else:
                found[key] = hit
        if missing:
            loaded = self._reads.call(
                "reading co-viewed items",
                self._on_store,
                _neighbours,
                missing,
                limit_per_item=NEIGHBOURS_PER_ITEM,
                min_networks=PAIR_NETWORKS,
            )
            for key in missing:
                value = loaded.get(key, [])
                self._neighbours.put(key, value)
                found[key] = value
        return found

    def recommend(
        self,
        content_type: str,
        user_id: str | None = None,
        *,
        limit: int | None = None,
        variant: Variant | None = None,
        context: tuple[str, int] | None = None,
    ) -> list[Recommendation]:
        """Ranked recommendations for one visitor (popular for ``None``); never raises
        but a ValueError for an unknown content type."""
        return self._recommend(content_type, user_id, limit, variant, context, None)

    def _recommend(
        self,
        content_type: str,
        user_id: str | None,
        limit: int | None,
        variant: Variant | None,
        context: tuple[str, int] | None,
        reading: _Reading | None,
    ) -> list[Recommendation]:
        """:meth:`recommend`, ranking from ``reading`` when given (one per page)."""
        if content_type not in CONTENT_TYPES:
            raise ValueError(f"unknown content type {content_type!r}")
        if limit is None:
            limit = self.default_limit(content_type)
        if reading is None or reading.user_id != user_id:
            reading = _Reading(self, user_id)
        catalog = reading.catalog
        popularity = reading.popularity
        try:
            if not self.settings.enabled:
                return ranking.popular(content_type, catalog, popularity, limit=limit)
            if user_id is not None and (variant or self.variant(user_id)) == "holdout":
                return ranking.as_holdout(
                    ranking.popular(content_type, catalog, popularity, limit=limit)
                )
            profile = reading.profile() if user_id is not None else None
            now = reading.now
            memo_key = (user_id, content_type, limit, context) if profile is not None else None
            if memo_key is not None:
                memo = self._ranked.get(memo_key)
                if memo is not None and memo.valid_for(profile, popularity, catalog, now):
                    return list(memo.result)
            keys: list[tuple[str, int]] = []
            if profile is not None:
                keys = list(
                    dict.fromkeys(
                        (h.target_type, h.target_id)
                        for h in profile.history
                        if h.target_type in ITEM_TYPES
                    )
                )[: ranking.HISTORY_DEPTH]
            if context is not None:
                keys.append(context)
            s = self.settings
            result = ranking.recommend(
                content_type,
                catalog=catalog,
                profile=profile,
                popularity=popularity,
                neighbours=self._neighbours_or_none(keys),
                now=now,
                limit=limit,
                strategy=s.strategy,
                rate=s.decay_rate,
                max_per_category=s.max_per_category,
                exclude_seen=s.exclude_seen,
                context=context,
            )
            if memo_key is not None and profile is not None:
                self._ranked.put(
                    memo_key, _Ranked(profile, popularity, catalog, now, tuple(result))
                )
            return result
        except ReadUnavailable:
            return ranking.popular(content_type, catalog, popularity, limit=limit)
        except Exception:
            logger.exception("recommendation failed; serving popular content")
            return ranking.popular(content_type, catalog, popularity, limit=limit)

    def default_limit(self, content_type: str) -> int:
        s = self.settings
        if content_type == "categories":
            return s.category_limit
        if content_type == "procedures":
            return s.procedure_limit
        if content_type == "doctors":
            return s.doctor_limit
        if content_type == "packages":
            return s.package_limit
        raise KeyError(content_type)

    # ------------------------------------------------------------- the visitor
    def erase(self, user_id: str | Sequence[str], *, timeout: float | None = None) -> int:
        """Erase everything stored for a visitor, including unwritten events.

        ``user_id``: their id, or every id they have (one per accepted secret: see
        ``Core.identities_of``). Within ``timeout`` seconds (default
        ``privacy_timeout``); a database that cannot do it in time raises
        :class:`~penchant.storage.store.StoreUnavailable`, and nothing stored is
        deleted: the caller says so and the visitor can try again.
        """
        ids = (user_id,) if isinstance(user_id, str) else tuple(dict.fromkeys(user_id))
        deadline = self._deadline(timeout)
        # Events on their way land first, so the delete takes them (and counts them);
        # a database that cannot take them in time cannot erase either: nothing is done.
        self.settle()
        writer = self.writer
        if not writer.flush(self._left(deadline)):
            raise StoreUnavailable("erasure: earlier events could not be written in time")
        with self._pending_lock:
            for uid in ids:
                self._pending.pop(uid, None)
        for uid in ids:
            writer.discard(uid)  # any submitted since
        shown = self._exposures
        if any(e.user_id in ids for e in list(shown)):
            kept = [e for e in list(shown) if e.user_id not in ids]
            shown.clear()
            shown.extend(kept)
        deleted = self.store.erase(ids, timeout=self._left(deadline))
        # Cached reads go once the rows are gone (one read while erasing is not cached).
        with self._pending_lock:
            self._written += 1
            for uid in ids:
                self._profiles.pop(uid)
        self._ranked.pop_where(lambda key: key[0] in ids)
        self._note_changes(set(ids))
        return deleted

    def export(
        self, user_id: str | Sequence[str], *, timeout: float | None = None
    ) -> dict[str, object]:
        """Everything stored about a visitor (``user_id`` as for :meth:`erase`), JSON-ready.

        Within ``timeout`` seconds (default ``privacy_timeout``), else
        :class:`~penchant.storage.store.StoreUnavailable`. Events still on their way
        are waited for within the same deadline.
        """
        deadline = self._deadline(timeout)
        self.settle()
        writer = self._writer if self._pid == os.getpid() else None
        if writer is None or writer.flush(self._left(deadline)):
            self._write_exposures()
        return self.store.export(user_id, timeout=self._left(deadline))

    def _deadline(self, timeout: float | None) -> float:
        return self._monotonic() + (self.settings.privacy_timeout if timeout is None else timeout)

    def _left(self, deadline: float) -> float:
        """Seconds to a deadline; never 0, which a database would read as no limit."""
        return max(0.001, deadline - self._monotonic())

    # ------------------------------------------------------------- operations
    def health(self) -> dict[str, object]:
        """Writer accounting and cache sizes, for a health or metrics endpoint."""
        if self._pid == os.getpid():
            self.settle()  # page views handed over are counted as accepted
        out: dict[str, object] = {"enabled": self.settings.enabled}
        writer = self._writer if self._pid == os.getpid() else None
        stats: WriterStats | None = writer.stats() if writer is not None else None
        if stats is not None:
            out.update(stats.as_dict())
        out["cached_profiles"] = len(self._profiles)
        out["cached_lists"] = len(self._ranked)  # ranked lists kept for reuse
        out["sessions"] = len(self._sessions)  # visitors whose session is remembered
        store = self._process_store()  # first: a new process has a new gate
        self._schema.check(store)
        out["schema"] = self._schema.status()
        out["ok"] = self._schema.ready
        return out

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything submitted so far is written."""
        self.settle()
        writer = self._writer if self._pid == os.getpid() else None
        done = True if writer is None else writer.flush(timeout)
        self._write_exposures()
        return done

    def close(self, timeout: float | None = None) -> int:
        """Flush within the deadline and stop; returns events that could not be written."""
        if self._pid == os.getpid():
            self.settle()
        with self._lock:
            writer = self._writer if self._pid == os.getpid() else None
            self._writer = None
        lost = 0
        if writer is not None:
            lost = writer.close(self.settings.shutdown_timeout if timeout is None else timeout)
            self._write_exposures()
        store = self._store if self._pid == os.getpid() else None
        if store is not None:
            store.dispose()
            self._store = None
        return lost

    # ------------------------------------------------------------ adapters
    def asgi(self, app: ASGIApp) -> ASGIApp:
        """Wrap an ASGI application."""
        from penchant.middleware.asgi import PenchantASGI

        return PenchantASGI(app, self)

    def wsgi(self, app: WSGIApp) -> WSGIApp:
        """Wrap a WSGI application."""
        from penchant.middleware.wsgi import PenchantWSGI

        return PenchantWSGI(app, self)


def _moves_profile(event: Interaction) -> bool:
    """Whether storing ``event`` can change its visitor's profile.

    A profile is affinities (moved by catalog targets and by searches that
    matched categories) and the history of catalog targets: an event without a
    target and without matched categories, such as a plain page view, moves
    neither, so it needs no read-your-writes overlay and leaves a cached
    profile valid.
    """
    if event.target_id is not None:
        return True
    extra = event.extra_data
    return bool(extra and extra.get("categories"))


def _fields(settings: Settings) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}


_live: weakref.WeakSet[Penchant] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # What the parent's requests handed over is the parent's to write.
    for instance in list(_live):
        instance._deferred.reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@atexit.register
def _flush_at_exit() -> None:
    for instance in list(_live):
        try:
            instance.close()
        except Exception:  # pragma: no cover - nothing left to report to at exit
            logger.exception("flush at exit failed")


def _neighbours(store: Store, *args: Any, **kwargs: Any) -> Any:
    return store.neighbours(*args, **kwargs)
