"""The background batch writer: the hot path hands it events and never waits.

``submit`` appends to a bounded in-memory queue; one daemon thread per process
takes up to ``batch_size`` events (or what arrived within ``flush_interval``) and
writes them with :meth:`Store.record`, one transaction per batch. While the
database is down the batch is kept and retried with exponential backoff, and new
events are accepted until the queue is full (memory stays bounded).

Every event is accounted for: ``accepted == stored + duplicates + dropped +
in_flight`` holds at every moment, under one lock.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Protocol

from penchant.engine.events import ITEM_TYPES, Interaction
from penchant.engine.ranking import HistoryEntry
from penchant.storage.schema_version import SchemaNotReady
from penchant.storage.store import (
    DeltasFor,
    ItemKey,
    RecordResult,
    Store,
    StoreUnavailable,
    describe_error,
)

__all__ = ["DROP_REASONS", "Intake", "PairsFor", "Writer", "WriterStats"]

logger = logging.getLogger("personalization")

PairsFor = Callable[
    [Sequence[Interaction], Mapping[str, Sequence[HistoryEntry]]],
    Mapping[tuple[ItemKey, ItemKey], float],
]

#: Why an accepted event was not stored; every reason is reported, zero or not.
DROP_REASONS: tuple[str, ...] = (
    "queue_full",
    "invalid",
    "bot",
    "rate_limited",
    "consent",
    "cross_site",
    "db_error",
    "dead_letter",
    "shutdown",
    "erased",
)


class Intake(Protocol):
    """Work handed over before it is an event (a page view whose visitor is not yet
    identified): the writer's thread drains it into :meth:`Writer.submit` when its
    next batch is due, so a request does no more than append to it."""

    def __len__(self) -> int: ...

    def drain(self) -> None: ...


# _next_batch_locked's answer when the intake must be drained first.
_DRAIN: list[tuple[int, Interaction]] = []

_UNEXPECTED_LIMIT = 5  # a batch failing this often for a non-connection reason is dropped


@dataclass(frozen=True, slots=True)
class WriterStats:
    """The writer's books at one moment."""

    accepted: int
    stored: int
    duplicates: int
    dropped: Mapping[str, int]
    in_flight: int
    errors: int
    last_error: str | None
    consecutive_failures: int

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "accepted": self.accepted,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "dropped": dict(self.dropped),
            "dropped_total": self.dropped_total,
            "in_flight": self.in_flight,
            "errors": self.errors,
            "last_error": self.last_error,
            "consecutive_failures": self.consecutive_failures,
        }


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


_writers: weakref.WeakSet[Writer] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for writer in list(_writers):
        writer._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Writer:
    """Batches interactions into :meth:`Store.record` from a daemon thread.

    The store comes from ``store_factory``, called in the writer's own process;
    the writer does not dispose it (whoever made it does). ``on_stored`` gets
    each batch's events once they are no longer pending (stored, already stored
    or dead-lettered), so a read-your-writes overlay can let go of them.
    """

    def __init__(
        self,
        store_factory: Callable[[], Store],
        deltas_for: DeltasFor,
        *,
        rate: float,
        batch_size: int = 500,
        queue_size: int = 10_000,
        flush_interval: float = 1.0,
        on_stored: Callable[[Sequence[Interaction]], None] | None = None,
        pairs_for: PairsFor | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        clock: Callable[[], datetime] = _utcnow,
        intake: Intake | None = None,
    ) -> None:
        if batch_size < 1 or queue_size < 1:
            raise ValueError("batch_size and queue_size must be at least 1")
        self._store_factory = store_factory
        self._deltas_for = deltas_for
        self._rate = rate
        self._batch_size = batch_size
        self._queue_size = queue_size
        self._flush_interval = flush_interval
        self._on_stored = on_stored
        self._pairs_for = pairs_for
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._clock = clock
        self._intake = intake
        self._reset()
        _writers.add(self)

    def _reset(self) -> None:
        """Fresh state for this process (also in a forked child: the parent owns its queue)."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  # the lock is taken bare on the hot path
        self._queue: deque[tuple[int, Interaction]] = deque()
        self._batch: list[tuple[int, Interaction]] = []
        self._abandoned: tuple[list[tuple[int, Interaction]], str] | None = None
        self._next_seq = 0
        self._flush_waiters = 0
        self._closing = False
        self._closed = False
        self._deadline: float | None = None
        self._lost_at_close = 0  # events given up on once close() was called
        self._thread: threading.Thread | None = None
        #: Whether the thread is running, in ``_run`` (it stays up once started,
        #: until close); set and cleared under the lock. Read-only to others: an
        #: attribute, not a property, since every page view reads it.
        self.running = False
        self._store: Store | None = None
        self._accepted = 0
        self._stored = 0
        self._duplicates = 0
        self._dropped: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self._errors = 0
        self._last_error: str | None = None
        self._failures = 0

    def _check_process(self) -> None:
        if self._pid != os.getpid():
            self._reset()

    # -------------------------------------------------------------- callers
    def submit(self, interaction: Interaction) -> bool:
        """Queue one event; never blocks, never raises. False: dropped (and counted)."""
        try:
            self._check_process()
            with self._lock:
                self._accepted += 1
                if self._closing:
                    self._dropped["shutdown"] += 1
                    return False
                if len(self._queue) + len(self._batch) >= self._queue_size:
                    self._dropped["queue_full"] += 1
                    return False
                self._queue.append((self._next_seq, interaction))
                self._next_seq += 1
                if len(self._queue) >= self._batch_size:
                    self._cond.notify_all()
                if not self.running:
                    self._ensure_thread()
            return True
        except Exception:
            logger.exception("could not queue an interaction")
            return False

    def wake(self) -> None:
        """The intake has work: start the thread, or have a waiting one look again
        (queue and intake together may make a batch that is due now)."""
        self._check_process()
        with self._cond:
            if self.running:
                self._cond.notify_all()
            else:
                self._ensure_thread()

    def count_dropped(self, reason: str, n: int = 1) -> None:
        """Count events rejected before the queue (invalid, bot, ...) in the same books."""
        if n <= 0:
            return
        self._check_process()
        with self._cond:
            self._accepted += n
            self._dropped[reason] = self._dropped.get(reason, 0) + n

    def discard(self, user_id: str) -> int:
        """Drop a visitor's queued events (erasure); return how many."""
        self._check_process()
        with self._cond:
            kept = deque(pair for pair in self._queue if pair[1].user_id != user_id)
            removed = len(self._queue) - len(kept)
            self._queue = kept
            self._dropped["erased"] += removed
            self._cond.notify_all()
        return removed

    def stats(self) -> WriterStats:
        self._check_process()
        with self._cond:
            return WriterStats(
                accepted=self._accepted,
                stored=self._stored,
                duplicates=self._duplicates,
                dropped=MappingProxyType(dict(self._dropped)),
                in_flight=len(self._queue) + len(self._batch),
                errors=self._errors,
                last_error=self._last_error,
                consecutive_failures=self._failures,
            )

    def flush(self, timeout: float) -> bool:
        """Wait until every event submitted before this call is written or dropped."""
        self._check_process()
        deadline = time.monotonic() + timeout
        with self._cond:
            target = self._next_seq
            if self._done_before(target):
                return True
            self._ensure_thread()
            self._flush_waiters += 1
            self._cond.notify_all()
            try:
                while not self._done_before(target):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._cond.wait(remaining)
                return True
            finally:
                self._flush_waiters -= 1

    def close(self, timeout: float) -> int:
        """Flush within ``timeout`` seconds, stop the thread; return events not written."""
        if self._pid != os.getpid():
            self._reset()
            return 0
        deadline = time.monotonic() + timeout
        if self._intake is not None and not self._closed:
            # Handed-over work becomes events while they are still accepted.
            self._intake.drain()
        with self._cond:
            if self._closed:
                return 0
            self._closing = True
            self._deadline = deadline
            thread = self._thread
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
            self._closed = True
            self._drop_pending_locked()
            lost = self._lost_at_close
            self._cond.notify_all()
        if lost:
            logger.warning("writer stopped with %d interactions not written", lost)
        return lost

    # ------------------------------------------------------------ internals
    def _done_before(self, target: int) -> bool:
        """No event with a sequence number below ``target`` is still pending (FIFO)."""
        head: int | None = None
        if self._batch:
            head = self._batch[0][0]
        elif self._queue:
            head = self._queue[0][0]
        return head is None or head >= target

    def _ensure_thread(self) -> None:
        # called with the lock held
        if self._closed or (self._thread is not None and self._thread.is_alive()):
            return
        self._thread = threading.Thread(target=self._run, name="penchant-writer", daemon=True)
        self.running = True
        self._thread.start()

    def _drop_pending_locked(self) -> int:
        """Count everything still pending as dropped (the deadline has passed)."""
        reason = "db_error" if self._failures else "shutdown"
        lost = len(self._queue) + len(self._batch)
        if self._batch:
            # the thread may still finish this batch; it then moves it back to stored
            self._abandoned = (self._batch, reason)
        self._queue.clear()
        self._batch = []
        self._dropped[reason] += lost
        self._lost_at_close += lost
        return lost

    def _run(self) -> None:
        try:
            drained = False
            while True:
                if drained and self._intake is not None:
                    # outside the lock: the intake submits what it turns into events
                    self._intake.drain()
                with self._cond:
                    batch = self._next_batch_locked(drained=drained)
                if batch is _DRAIN:
                    drained = True
                    continue
                drained = False
                if batch is None:
                    return
                self._write(batch)
        except Exception:
            # the next submit starts a new thread, which retries the batch in progress
            logger.exception("writer thread failed")
        finally:
            with self._cond:
                if self._thread is threading.current_thread():
                    self.running = False

    def _next_batch_locked(self, *, drained: bool = False) -> list[tuple[int, Interaction]] | None:
        """The next batch to write; ``_DRAIN`` first when the intake holds events
        that are due (``drained``: it was just emptied, take the queue now)."""
        if self._batch:
            return self._batch
        intake = self._intake
        waited_since: float | None = None
        while True:
            if self._closed:
                return None
            waiting = 0 if drained or intake is None else len(intake)
            if self._queue or waiting:
                urgent = (
                    drained
                    or self._closing
                    or self._flush_waiters > 0
                    or len(self._queue) + waiting >= self._batch_size
                )
                now = time.monotonic()
                if waited_since is None:
                    waited_since = now
                remaining = waited_since + self._flush_interval - now
                if urgent or remaining <= 0:
                    if waiting:
                        return _DRAIN
                    break
                self._cond.wait(remaining)
            else:
                if self._closing:
                    return None
                drained = False
                # What arrives while this thread waits has waited no longer than it has.
                waited_since = time.monotonic()
                self._cond.wait(self._flush_interval)
        queue = self._queue
        if len(queue) <= self._batch_size:  # all of it: one copy while submits wait
            self._batch = list(queue)
            queue.clear()
        else:
            self._batch = [queue.popleft() for _ in range(self._batch_size)]
        return self._batch

    def _write(self, batch: list[tuple[int, Interaction]]) -> None:
        events = [event for _, event in batch]
        delay = self._backoff_initial
        unexpected = 0
        while True:
            recent: Mapping[str, Sequence[HistoryEntry]] = {}
            try:
                if self._store is None:
                    self._store = self._store_factory()
                store = self._store
                pairing = {
                    e.user_id
                    for e in events
                    if e.target_id is not None and e.target_type in ITEM_TYPES
                }
                if self._pairs_for is not None and pairing:
                    # history before this batch: pairs_for adds the batch's own order;
                    # only visitors who touched a catalog item can form new pairs
                    recent = store.recent_history(sorted(pairing))
                result = store.record(events, self._deltas_for, self._rate)
            except Exception as exc:
                self._store = None  # ask the factory again: it may hand out a working store
                unexpected += 0 if isinstance(exc, StoreUnavailable) else 1
                if self._failed(batch, exc, give_up=unexpected >= _UNEXPECTED_LIMIT):
                    return
                self._pause(delay)
                delay = min(self._backoff_max, delay * 2)
                continue
            self._after_record(store, events, result, recent)
            self._succeeded(batch, result)
            return

    def _failed(
        self, batch: list[tuple[int, Interaction]], exc: Exception, *, give_up: bool
    ) -> bool:
        """Book a failed attempt; True when the batch is finished with (dropped)."""
        error = describe_error(exc)
        with self._cond:
            self._errors += 1
            self._failures += 1
            # one line per outage: the first failure, then only a different error
            quiet = self._failures > 1 and error == self._last_error
            self._last_error = error
            failures = self._failures
            if self._abandoned is not None and self._abandoned[0] is batch:
                self._abandoned = None  # close() already counted it as dropped
                return True
            deadline_passed = self._closing and (
                self._deadline is None or time.monotonic() >= self._deadline
            )
            if deadline_passed:
                self._drop_pending_locked()
                self._abandoned = None  # this thread is the one giving up on it
                self._cond.notify_all()
                return True
            if give_up:
                self._dropped["db_error"] += len(batch)
                self._batch = []
                self._cond.notify_all()
        if give_up:
            logger.error(
                "dropped a batch of %d interactions after repeated errors: %s", len(batch), error
            )
            self._notify_stored([event for _, event in batch])
            return True
        if isinstance(exc, SchemaNotReady) or quiet:
            # the schema's problem is logged once by its gate
            logger.debug("could not write %d interactions (failure %d)", len(batch), failures)
        else:
            logger.warning(
                "could not write %d interactions (failure %d), kept and retried: %s",
                len(batch),
                failures,
                error,
            )
        return False

    def _pause(self, delay: float) -> None:
        """Back off; only close() cuts the wait short (new events must not)."""
        end = time.monotonic() + delay
        with self._cond:
            was_closing = self._closing
            while not self._closed and self._closing == was_closing:
                if self._closing and self._deadline is not None:
                    end = min(end, self._deadline)
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return
                self._cond.wait(remaining)

    def _after_record(
        self,
        store: Store,
        events: Sequence[Interaction],
        result: RecordResult,
        recent: Mapping[str, Sequence[HistoryEntry]],
    ) -> None:
        if self._pairs_for is not None and result.inserted:
            try:
                increments = self._pairs_for(result.inserted, recent)
                if increments:
                    # how many networks saw each pair, when the caller counted them
                    networks = getattr(increments, "networks", None)
                    store.add_neighbours(increments, self._clock(), networks=networks)
            except Exception as exc:
                # co-occurrence is a ranking signal, not a record: skip it, keep going
                logger.warning("co-occurrence update skipped: %s", describe_error(exc))
        self._notify_stored(events)

    def _notify_stored(self, events: Sequence[Interaction]) -> None:
        if self._on_stored is None or not events:
            return
        try:
            self._on_stored(events)
        except Exception:
            logger.exception("on_stored callback failed")

    def _succeeded(self, batch: list[tuple[int, Interaction]], result: RecordResult) -> None:
        with self._cond:
            if self._failures:
                logger.info("database writes resumed after %d failures", self._failures)
            if self._abandoned is not None and self._abandoned[0] is batch:
                # close() gave up on this batch, but it was written after all
                self._dropped[self._abandoned[1]] -= len(batch)
                self._abandoned = None
            elif self._batch is batch:
                self._batch = []
            self._stored += result.stored
            self._duplicates += result.duplicates
            self._dropped["dead_letter"] += result.dead_lettered
            self._failures = 0
            self._cond.notify_all()
