"""Persistence: the tables, the Store (all SQL lives here), the batch writer, retention."""

from __future__ import annotations

from penchant.storage.schema import metadata
from penchant.storage.store import (
    PurgeResult,
    RecordResult,
    Store,
    StoreError,
    StoreUnavailable,
)
from penchant.storage.writer import DROP_REASONS, Writer, WriterStats

__all__ = [
    "DROP_REASONS",
    "PurgeResult",
    "RecordResult",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "Writer",
    "WriterStats",
    "metadata",
]
