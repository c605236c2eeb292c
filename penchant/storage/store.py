"""The Store: every SQL statement penchant runs lives here.

SQLAlchemy Core over SQLite (WAL, busy timeout) or PostgreSQL. One Store (one
engine and pool) per process, created after fork.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from penchant.engine.affinity import AffinityDelta, AffinityState
from penchant.engine.events import Interaction
from penchant.engine.ranking import HistoryEntry, Popularity, VisitorProfile

__all__ = ["PurgeResult", "RecordResult", "Store"]


@dataclass(frozen=True, slots=True)
class RecordResult:
    """What one :meth:`Store.record` call did with its batch."""

    stored: int  # new rows in user_interactions
    duplicates: int  # already stored (same user_id, event_id): ignored
    dead_lettered: int  # could not be stored even row by row
    inserted: tuple[Interaction, ...] = ()  # the rows actually inserted


@dataclass(frozen=True, slots=True)
class PurgeResult:
    interactions: int
    affinities: int


class Store:
    """Interface contract (implemented in this module)."""

    def __init__(self, database_url: str, *, connect_timeout: float = 5.0) -> None:
        raise NotImplementedError

    def create_all(self) -> None: ...
    def dispose(self) -> None: ...
    def ping(self) -> bool: ...

    # write path
    def record(
        self, batch: Sequence[Interaction], deltas_for: "DeltasFor", rate: float
    ) -> RecordResult: ...

    # read path
    def load_profile(self, user_id: str, *, history_limit: int = 50) -> VisitorProfile: ...
    def popularity(self, since: datetime, *, limit_per_type: int = 500) -> Popularity: ...

    # privacy and retention
    def erase(self, user_id: str) -> int: ...
    def export(self, user_id: str) -> dict[str, object]: ...
    def purge(self, before: datetime) -> PurgeResult: ...

    # monitoring
    def daily_counts(self, since: datetime) -> list[tuple[str, str, int]]: ...
    def engaged_visitors(self, since: datetime, *, minimum: int = 5) -> list[tuple[str, int]]: ...

    # meta
    def get_meta(self, key: str) -> str | None: ...
    def set_meta_if_absent(self, key: str, value: str) -> str: ...


DeltasFor = "Callable[[Sequence[Interaction]], list[AffinityDelta]]"
_unused: tuple[object, ...] = (Iterable, Mapping, AffinityState, HistoryEntry)
