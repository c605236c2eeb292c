"""The change feed: which cached visitor profiles another process has made stale.

A process caches visitor profiles. Its own writes drop its own cached copies;
to learn of writes by other processes (other workers, other hosts, the CLI's
erasure) it polls this feed, about every ``poll_interval``, with one indexed
query: "rows after the last id I saw". Each row names a *bucket* (16 bits of a
hash of the visitor id), not the visitor: the feed holds no identifier, and a
bucket only costs the cached profiles that share it a reload.

Soundness rests on ids being visible in order: SQLite has one writer at a time
and ``AUTOINCREMENT`` never reuses an id; on PostgreSQL the inserting
transaction takes an advisory lock, so a later id never commits before an
earlier one. Rows older than ``KEEP`` are deleted by the writers; a process
that has not polled for ``KEEP / 2`` drops its whole cache instead of trusting
the feed.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Iterable
from datetime import datetime, timedelta

import sqlalchemy as sa

from penchant.storage.schema import changes
from penchant.storage.store import Store

__all__ = [
    "KEEP",
    "MAX_ROWS",
    "bucket",
    "changes_since",
    "latest_change",
    "note_changes",
    "trim_changes",
]

KEEP = timedelta(hours=1)
_LOCK_KEY = 726150002  # serializes feed inserts across PostgreSQL sessions
#: Feed rows read at once; more since the last read drop every cached profile.
MAX_ROWS = 10_000


def bucket(user_id: str) -> int:
    """The feed's 16-bit bucket of a visitor id."""
    return zlib.crc32(user_id.encode("utf-8", "surrogatepass")) & 0xFFFF


def note_changes(store: Store, user_ids: Iterable[str], now: datetime) -> list[int]:
    """Record that these visitors' profiles changed; returns the ids of the rows added."""
    buckets = sorted({bucket(u) for u in user_ids})
    if not buckets:
        return []
    with store._begin(write=True) as conn:
        if store.dialect == "postgresql":
            conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})"))
        result = conn.execute(
            changes.insert().returning(changes.c.id),
            [{"bucket": b, "changed_at": now} for b in buckets],
        )
        return [int(row[0]) for row in result]


def trim_changes(store: Store, now: datetime) -> int:
    """Delete feed rows older than :data:`KEEP`."""
    with store._begin(write=True) as conn:
        result = conn.execute(sa.delete(changes).where(changes.c.changed_at < now - KEEP))
    return int(result.rowcount or 0)


def latest_change(store: Store) -> int:
    """The feed's last id (0 when empty): where a new reader starts."""
    with store._begin() as conn:
        value = conn.execute(sa.select(sa.func.max(changes.c.id))).scalar()
    return int(value or 0)


def changes_since(
    store: Store, last: int, own: Collection[int] = ()
) -> tuple[int, frozenset[int] | None]:
    """(new last id, changed buckets) after ``last``, leaving out the rows in ``own``
    (the reader's own writes). Buckets None: too many changes, drop every cached profile."""
    with store._begin() as conn:
        rows = conn.execute(
            sa.select(changes.c.id, changes.c.bucket)
            .where(changes.c.id > last)
            .order_by(changes.c.id)
            .limit(MAX_ROWS)
        ).all()
    if not rows:
        return last, frozenset()
    newest = int(rows[-1][0])
    if len(rows) >= MAX_ROWS:
        return newest, None
    return newest, frozenset(int(r[1]) for r in rows if int(r[0]) not in own)
