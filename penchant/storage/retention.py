"""Retention: interactions older than ``INTERACTION_RETENTION_DAYS`` are deleted.

Affinities not updated within the same window go too; so do dead-lettered rows,
which hold visitor data as well.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from penchant.storage.store import PurgeResult, Store

__all__ = ["cutoff", "purge_expired"]


def cutoff(retention_days: int, *, now: datetime | None = None) -> datetime:
    """The oldest moment still kept (naive UTC, as stored)."""
    if retention_days < 1:
        raise ValueError(f"retention must be at least one day, got {retention_days!r}")
    moment = now if now is not None else datetime.now(UTC)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment - timedelta(days=retention_days)


def purge_expired(
    store: Store, retention_days: int, *, now: datetime | None = None, dry_run: bool = False
) -> PurgeResult:
    """Delete (or with ``dry_run`` only count) what is older than the retention window."""
    before = cutoff(retention_days, now=now)
    return store.purge_counts(before) if dry_run else store.purge(before)
