"""The Store: every SQL statement penchant runs lives here.

SQLAlchemy Core over SQLite (WAL, busy timeout) or PostgreSQL (psycopg2, with
connect, statement and pool timeouts). One Store (one engine and pool) per
process, created after fork.

Errors come in two kinds. :class:`StoreUnavailable` means the database did not
answer (refused, timed out, locked, restarted): the caller keeps its data and
tries again later. Anything else raised by a write is a problem with the data,
which :meth:`Store.record` handles itself by retrying row by row and
dead-lettering the rows that still fail.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache, cached_property
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import StaticPool

from penchant.engine.affinity import AffinityDelta, AffinityState, days_between
from penchant.engine.events import Interaction
from penchant.engine.ranking import HistoryEntry, Popularity, VisitorProfile
from penchant.storage.schema import (
    dead_letter,
    exposures,
    item_neighbours,
    meta,
    unshared,
    user_category_affinity,
    user_interactions,
)

__all__ = [
    "INTERACTION_COLUMNS",
    "DeltasFor",
    "ItemKey",
    "PurgeResult",
    "RecordResult",
    "SQLiteBatch",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "copy_text",
    "pg_number_array",
    "pg_text_array",
]

logger = logging.getLogger("personalization")

DeltasFor = Callable[[Sequence[Interaction]], list[AffinityDelta]]
ItemKey = tuple[str, int]

_UNION_CHUNK = 50  # per-visitor / per-item subqueries glued into one round trip
# Each item's best neighbours on PostgreSQL, for items given as two arrays.
_PG_NEIGHBOURS = (
    "SELECT k.item_type, k.item_id, n.neighbour_type, n.neighbour_id, n.score"
    " FROM unnest(%(types)s::text[], %(ids)s::bigint[]) AS k(item_type, item_id)"
    " CROSS JOIN LATERAL ("
    f"SELECT neighbour_type, neighbour_id, score FROM {item_neighbours.name}"
    f" WHERE {item_neighbours.name}.item_type = k.item_type"
    f" AND {item_neighbours.name}.item_id = k.item_id"
    f" AND {item_neighbours.name}.networks >= %(networks)s"
    " ORDER BY score DESC LIMIT %(limit)s) AS n"
)
_MAX_ERROR_CHARS = 500
_WRITER_CACHE_KIB = 16384  # SQLite pages cached by the write connection (default 2 MB)
_TRANSIENT_RETRIES = 3  # deadlock or serialization failure: retry the transaction at once

# SQLite takes a whole batch in one statement: the rows go in as one JSON array and
# json_each() unpacks them. One step of the statement, so the writer lets go of the
# interpreter lock once per batch, not once per row as the driver's executemany
# does (each time making the request thread wait to take it back). The values are
# made ready by the caller: no per-row statement compiling or type processing.
#: The columns of a stored interaction, in the order the batch paths write them.
INTERACTION_COLUMNS = (
    "user_id",
    "session_id",
    "interaction_type",
    "target_type",
    "target_id",
    "extra_data",
    "timestamp",
    "event_id",
)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# JSON for the batch: a lone surrogate stays one, so the driver rejects it as before
_encode_rows = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


@dataclass(frozen=True)
class SQLiteBatch:
    """An INSERT of many rows into one SQLite table, in one statement where it can."""

    table: str
    columns: tuple[str, ...]
    conflict: str  # e.g. "ON CONFLICT (a, b) DO NOTHING": a NULL in a NOT NULL column still fails

    @cached_property
    def per_row(self) -> str:
        """The statement for one row (executemany, or row by row)."""
        marks = ", ".join("?" * len(self.columns))
        return (
            f"INSERT INTO {self.table} ({', '.join(self.columns)}) VALUES ({marks}) {self.conflict}"
        )

    @cached_property
    def as_json(self) -> str:
        """The statement for a whole batch given as one JSON array of rows."""
        values = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(self.columns)))
        # WHERE true: SQLite's upsert after INSERT .. SELECT needs it to parse
        return (
            f"INSERT INTO {self.table} ({', '.join(self.columns)}) SELECT {values}"
            f" FROM json_each(?) WHERE true {self.conflict}"
        )

    def insert(self, conn: Connection, rows: Sequence[Sequence[Any]], *, use_json: bool) -> int:
        """Insert the rows (text, integers, floats and NULLs only); return how many went in.

        A NUL character takes the executemany path: JSON text would cut it.
        """
        if not rows:
            return 0
        text = _encode_rows(rows) if use_json else ""
        if use_json and "\\u0000" not in text:
            count = conn.exec_driver_sql(self.as_json, (text,)).rowcount
        else:
            count = conn.exec_driver_sql(self.per_row, list(rows)).rowcount
        return max(0, count or 0)


_SQLITE_INTERACTIONS = SQLiteBatch(
    "user_interactions", INTERACTION_COLUMNS, "ON CONFLICT (user_id, event_id) DO NOTHING"
)
# the batch's new rows: SQLite gives each new row the largest rowid so far, and the
# writer holds the write lock, so the last ``n`` rowids are this batch's ``n`` rows
_SQLITE_NEWEST = "SELECT user_id, event_id FROM user_interactions ORDER BY id DESC LIMIT ?"


class StoreError(Exception):
    """The database cannot be used as configured (a bad URL, a missing driver)."""


class StoreUnavailable(StoreError):
    """The database did not answer (connection refused, timeout, lock): try again later."""


@dataclass(frozen=True, slots=True)
class RecordResult:
    """What one :meth:`Store.record` call did with its batch."""

    stored: int  # new rows in user_interactions
    duplicates: int  # already stored (same user_id, event_id): ignored
    dead_lettered: int  # could not be stored even row by row
    inserted: tuple[Interaction, ...] = ()  # the rows actually inserted
    failed: tuple[Interaction, ...] = ()  # the rows dead-lettered


@dataclass(frozen=True, slots=True)
class PurgeResult:
    interactions: int
    affinities: int
    dead_letters: int = 0
    exposures: int = 0


# The same arithmetic as the per-row upsert (and AffinityDelta.apply), for a whole
# batch: the ON CONFLICT branch finds its own delta by key in {deltas}, either the
# arrays unnested in a CTE or the staging table (whose primary key makes that lookup
# an index probe instead of a scan of every delta).
_PG_UPSERT_TEMPLATE = """{prefix}
INSERT INTO user_category_affinity AS a
    (user_id, category_id, affinity_score, raw_score, last_updated)
SELECT u, c, LEAST(cap, add), add_raw, last FROM {deltas} ORDER BY u COLLATE "C", c
ON CONFLICT (user_id, category_id) DO UPDATE SET
    (affinity_score, raw_score, last_updated) = (
        SELECT
            LEAST(d.cap, f.factor * a.affinity_score + d.add),
            f.factor * a.raw_score + d.add_raw,
            GREATEST(d.last, a.last_updated)
        FROM {deltas} AS d
        CROSS JOIN LATERAL (
            SELECT d.scale * power(
                CAST(%(rate)s AS FLOAT),
                CAST(GREATEST(
                    0.0, CAST(EXTRACT(epoch FROM d.first - a.last_updated) AS FLOAT) / 86400.0
                ) AS FLOAT)
            ) AS factor
        ) AS f
        WHERE d.u = EXCLUDED.user_id AND d.c = EXCLUDED.category_id
    )
"""
_DELTA_STAGING = "penchant_staging_deltas"
_DELTA_COLUMNS = "u, c, first, last, scale, add, cap, add_raw"
_PG_SET_UPSERT = _PG_UPSERT_TEMPLATE.format(
    prefix="""
WITH deltas (u, c, first, last, scale, add, cap, add_raw) AS (
    SELECT * FROM unnest(
        %(u)s::varchar[], %(c)s::integer[], %(first)s::timestamp[], %(last)s::timestamp[],
        %(scale)s::float8[], %(add)s::float8[], %(cap)s::float8[], %(add_raw)s::float8[]
    )
)""",
    deltas="deltas",
)
_PG_STAGED_UPSERT = _PG_UPSERT_TEMPLATE.format(prefix="", deltas=_DELTA_STAGING)


# Co-occurrence increments: score = score + increment per (item, neighbour), in key order.
_PG_NEIGHBOURS_UPSERT = """
INSERT INTO penchant_item_neighbours AS n
    (item_type, item_id, neighbour_type, neighbour_id, score, last_updated, networks)
SELECT t, i, nt, ni, s, %(at)s::timestamp, w
FROM unnest(
    %(t)s::varchar[], %(i)s::integer[], %(nt)s::varchar[], %(ni)s::integer[], %(s)s::float8[],
    %(w)s::integer[]
) WITH ORDINALITY AS d (t, i, nt, ni, s, w, k)
ORDER BY k
ON CONFLICT (item_type, item_id, neighbour_type, neighbour_id) DO UPDATE SET
    score = n.score + EXCLUDED.score, last_updated = EXCLUDED.last_updated,
    networks = n.networks + EXCLUDED.networks
"""
_SQLITE_NEIGHBOURS = SQLiteBatch(
    "penchant_item_neighbours",
    (
        "item_type",
        "item_id",
        "neighbour_type",
        "neighbour_id",
        "score",
        "last_updated",
        "networks",
    ),
    "ON CONFLICT (item_type, item_id, neighbour_type, neighbour_id) DO UPDATE SET"
    " score = penchant_item_neighbours.score + excluded.score,"
    " last_updated = excluded.last_updated,"
    " networks = penchant_item_neighbours.networks + excluded.networks",
)

# SQLite, a batch of affinity deltas with distinct keys: the same arithmetic as the
# per-row upsert, set-based like PostgreSQL's. The deltas go into a temporary table
# (one JSON statement); the ON CONFLICT branch finds its delta there by primary key.
# Days are counted from the stored text exactly as days_between() counts them
# (whole seconds, then microseconds), and pow() is SQLite's own, the C library's
# pow like math.pow: no Python function is called per row.
_SQLITE_DELTAS = "penchant_deltas"
_SQLITE_DELTA_TABLE = (
    f"CREATE TEMP TABLE IF NOT EXISTS {_SQLITE_DELTAS} (u TEXT NOT NULL, c INTEGER NOT NULL,"
    " first TEXT NOT NULL, last TEXT NOT NULL, scale REAL, add_ REAL, cap REAL, add_raw REAL,"
    " PRIMARY KEY (u, c))"
)
_SQLITE_DELTA_ROWS = SQLiteBatch(
    f"temp.{_SQLITE_DELTAS}", ("u", "c", "first", "last", "scale", "add_", "cap", "add_raw"), ""
)


def _sqlite_micros(column: str) -> str:
    """A stored timestamp as whole microseconds since the epoch (SQL, exact)."""
    return (
        f"(CAST(strftime('%s', {column}) AS INTEGER) * 1000000"
        f" + CAST(substr({column}, 21, 6) AS INTEGER))"
    )


_SQLITE_FACTOR = (
    "d.scale * pow(:rate, max(0.0, ("
    + _sqlite_micros("d.first")
    + " - "
    + _sqlite_micros("a.last_updated")
    + ") / 1000000.0 / 86400.0))"
)
_SQLITE_SET_UPSERT = f"""
INSERT INTO user_category_affinity AS a
    (user_id, category_id, affinity_score, raw_score, last_updated)
SELECT u, c, min(cap, add_), add_raw, last FROM temp.{_SQLITE_DELTAS} WHERE true
ON CONFLICT (user_id, category_id) DO UPDATE SET
    (affinity_score, raw_score, last_updated) = (
        SELECT
            min(d.cap, {_SQLITE_FACTOR} * a.affinity_score + d.add_),
            {_SQLITE_FACTOR} * a.raw_score + d.add_raw,
            max(d.last, a.last_updated)
        FROM temp.{_SQLITE_DELTAS} AS d
        WHERE d.u = excluded.user_id AND d.c = excluded.category_id
    )
"""


_PG_RECENT_HISTORY = sa.text(
    "SELECT v.user_id, h.interaction_type, h.target_type, h.target_id, h.timestamp"
    " FROM unnest(CAST(:ids AS VARCHAR[])) AS v(user_id) CROSS JOIN LATERAL ("
    " SELECT interaction_type, target_type, target_id, timestamp FROM user_interactions"
    " WHERE user_interactions.user_id = v.user_id AND target_id IS NOT NULL"
    " ORDER BY timestamp DESC LIMIT :limit) AS h"
)
_SQLITE_HISTORY = sa.text(
    "SELECT interaction_type, target_type, target_id, timestamp "
    "FROM user_interactions INDEXED BY idx_user_interactions_user_time "
    "WHERE user_id = :user_id AND likelihood(target_id IS NOT NULL, 0.9) "
    "ORDER BY timestamp DESC LIMIT :limit"
).columns(
    interaction_type=sa.String, target_type=sa.String, target_id=sa.Integer, timestamp=sa.DateTime
)


# ---------------------------------------------------------------- helpers
def _naive_utc(moment: datetime) -> datetime:
    """Stored timestamps are naive UTC, as in the original tables."""
    if moment.tzinfo is not None:
        return moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def sqlite_time(moment: datetime) -> str:
    """A datetime as SQLAlchemy stores a ``DateTime`` in SQLite: naive UTC text
    with six fractional digits (so that text order is time order)."""
    return _naive_utc(moment).isoformat(" ", "microseconds")


def _is_unavailable(exc: BaseException) -> bool:
    if isinstance(
        exc,
        sa_exc.OperationalError
        | sa_exc.InterfaceError
        | sa_exc.TimeoutError
        | sa_exc.DisconnectionError,
    ):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated


def _is_transient(exc: BaseException) -> bool:
    """A deadlock or serialization failure: the same transaction will likely pass now."""
    orig = getattr(exc, "orig", None)
    return getattr(orig, "pgcode", None) in ("40P01", "40001")


def _ids(user_id: str | Sequence[str]) -> tuple[str, ...]:
    """One visitor id, or several (a visitor's ids under each accepted secret), in order."""
    ids = (user_id,) if isinstance(user_id, str) else tuple(dict.fromkeys(user_id))
    if not ids:
        raise ValueError("user_id: at least one id")
    return ids


def describe_error(exc: BaseException) -> str:
    """One line, no SQL parameters (they hold visitor data), safe to store."""
    orig = getattr(exc, "orig", None)
    source = orig if isinstance(orig, BaseException) else exc
    text = f"{source.__class__.__name__}: {source}".strip()
    text = text.splitlines()[0] if text else source.__class__.__name__
    text = text.replace("\x00", "\\0").encode("utf-8", "backslashreplace").decode("utf-8")
    return text[:_MAX_ERROR_CHARS]


# ensure_ascii escapes NUL and lone surrogates, so any string survives a text column
_encode_json = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode
_PATH_JSON: dict[str, str] = {}  # a page view's {"path": ...}, encoded once per path
_PATH_JSON_KEPT = 4096


def _json_text(value: Mapping[str, object] | None) -> str | None:
    if value is None:
        return None
    if len(value) == 1:
        path = value.get("path")
        if type(path) is str:
            text = _PATH_JSON.get(path)
            if text is None:
                text = _encode_json({"path": path})
                if len(_PATH_JSON) < _PATH_JSON_KEPT:
                    _PATH_JSON[path] = text
            return text
    return _encode_json(dict(value))


def _payload(event: Interaction) -> str:
    """The row as JSON for the dead-letter table; never fails."""
    try:
        return _payload_of(event)
    except Exception:
        return json.dumps({"unreadable": repr(event)}, ensure_ascii=True)


def _payload_of(event: Interaction) -> str:
    row = {
        "user_id": event.user_id,
        "session_id": event.session_id,
        "interaction_type": event.interaction_type,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "timestamp": event.timestamp.isoformat()
        if isinstance(event.timestamp, datetime)
        else repr(event.timestamp),
        "event_id": event.event_id,
        "extra_data": event.extra_data,
    }
    return json.dumps(row, ensure_ascii=True, default=repr)


def _iso(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime | date) else str(value)


def _sqlite_power(base: float | None, exponent: float | None) -> float | None:
    if base is None or exponent is None:
        return None
    try:
        return math.pow(base, exponent)
    except (ValueError, OverflowError):
        return None


def _sqlite_days(later: str | None, earlier: str | None) -> float | None:
    """The same day count as the Python arithmetic (julianday() rounds to milliseconds)."""
    if later is None or earlier is None:
        return None
    return days_between(datetime.fromisoformat(earlier), datetime.fromisoformat(later))


@cache  # one SQLite library per process
def _sqlite_has_json() -> bool:
    """Whether this SQLite has the JSON functions (built in since 3.38, optional before)."""
    try:
        with contextlib.closing(sqlite3.connect(":memory:")) as db:
            row = db.execute("SELECT json_extract(value, '$[0]') FROM json_each('[[7]]')")
            return bool(row.fetchone() == (7,))
    except sqlite3.Error:
        return False


@cache
def _sqlite_has_set_upsert() -> bool:
    """Whether this SQLite runs :data:`_SQLITE_SET_UPSERT` (math functions, row values)."""
    try:
        with contextlib.closing(sqlite3.connect(":memory:")) as db:
            db.execute(
                "CREATE TABLE user_category_affinity (user_id TEXT, category_id INTEGER,"
                " affinity_score REAL, raw_score REAL, last_updated TEXT,"
                " UNIQUE (user_id, category_id))"
            )
            db.execute(_SQLITE_DELTA_TABLE)
            row = ("u", 1, "2024-01-01 00:00:00.000000", "2024-01-02 00:00:00.000000")
            db.execute(f"INSERT INTO {_SQLITE_DELTAS} VALUES (?, ?, ?, ?, 1, 0.5, 1, 0.5)", row)
            db.execute(_SQLITE_SET_UPSERT, {"rate": 0.5})
            db.execute(_SQLITE_SET_UPSERT, {"rate": 0.5})  # the update branch
            found = db.execute("SELECT affinity_score FROM user_category_affinity").fetchone()
            return bool(found == (1.0,))
    except sqlite3.Error:
        return False


def _enable_wal(cursor: Any, timeout: float) -> None:
    """Switch a SQLite file to WAL; the switch can report "locked" without waiting."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _chunks(values: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def pg_number_array(values: Iterable[int | float]) -> str:
    """An array literal of ints or floats (``repr`` round-trips a float, inf and nan too).

    One literal parsed by the array's input function: an ARRAY[...] of thousands
    of parameters would cost the server more to plan than to run.
    """
    return "{" + ",".join(map(repr, values)) + "}"


def pg_text_array(values: Iterable[str]) -> str:
    """An array literal of strings, each quoted (backslashes and quotes escaped)."""
    quoted = ('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"' for value in values)
    return "{" + ",".join(quoted) + "}"


# --------------------------------------------------------- COPY text format
# The batch goes to a per-session staging table with COPY, then into the real table
# with one INSERT .. SELECT .. ON CONFLICT DO NOTHING RETURNING (PostgreSQL, psycopg2).
_STAGING = "penchant_staging_interactions"
_COPY_COLUMNS = (
    "user_id",
    "session_id",
    "interaction_type",
    "target_type",
    "event_id",
    "extra_data",
    "target_id",
    "timestamp",
)
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")  # what COPY's text format escapes
_COPY_NULL = "\\N"
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(rows: Sequence[Mapping[str, Any]]) -> bytes | None:
    """The rows in COPY's text format (UTF-8), or None when one needs the INSERT path.

    Only plain values take this path: ``str`` text, ``int`` or no target id, a
    ``datetime`` timestamp. Anything else, a NUL character (which PostgreSQL's
    text cannot hold) or a string that is not valid UTF-8 goes through the
    parameterized INSERT, which stores or rejects it exactly as before.
    """
    lines: list[str] = []
    escaped: list[str] = []  # built only when a value holds a tab, newline or backslash
    nulls = 0
    for row in rows:
        user, session, kind = row["user_id"], row["session_id"], row["interaction_type"]
        target_type, event_id, extra = row["target_type"], row["event_id"], row["extra_data"]
        target, moment = row["target_id"], row["timestamp"]
        if (
            type(user) is not str
            or type(session) is not str
            or type(kind) is not str
            or type(target_type) is not str
            or type(event_id) is not str
            or not (extra is None or type(extra) is str)
            or not (target is None or type(target) is int)
            or type(moment) is not datetime
        ):
            return None
        nulls += (extra is None) + (target is None)
        lines.append(
            f"{user}\t{session}\t{kind}\t{target_type}\t{event_id}"
            f"\t{_COPY_NULL if extra is None else extra}"
            f"\t{_COPY_NULL if target is None else target}\t{moment.isoformat()}\n"
        )
    text = "".join(lines)
    rows_count = len(lines)
    if (
        text.count("\t") != 7 * rows_count
        or text.count("\n") != rows_count
        or text.count("\\") != nulls  # only the NULL markers' backslashes
        or "\r" in text
    ):
        # rare: some value needs escaping; escape every text value of every row
        for row in rows:
            extra, target = row["extra_data"], row["target_id"]
            values = [
                row[name].translate(_COPY_ESCAPES)
                for name in ("user_id", "session_id", "interaction_type", "target_type", "event_id")
            ]
            values.append(_COPY_NULL if extra is None else extra.translate(_COPY_ESCAPES))
            values.append(_COPY_NULL if target is None else str(target))
            values.append(row["timestamp"].isoformat())
            escaped.append("\t".join(values) + "\n")
        text = "".join(escaped)
    if "\x00" in text:
        return None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return None


def _delta_copy_text(deltas: Iterable[AffinityDelta]) -> bytes | None:
    """Affinity deltas in COPY's text format, or None when one needs the array path."""
    lines: list[str] = []
    for d in deltas:
        user, category = d.user_id, d.category_id
        first, last = _naive_utc(d.first), _naive_utc(d.last)
        if (
            type(user) is not str
            or _COPY_SPECIAL.search(user)
            or "\x00" in user
            or type(category) is not int
            or type(first) is not datetime
            or type(last) is not datetime
        ):
            return None
        # repr() round-trips a float exactly; PostgreSQL reads its inf and nan
        lines.append(
            f"{user}\t{category}\t{first.isoformat()}\t{last.isoformat()}\t"
            f"{float(d.scale)!r}\t{float(d.add)!r}\t{float(d.cap)!r}\t{float(d.add_raw)!r}\n"
        )
    try:
        return "".join(lines).encode("utf-8")
    except UnicodeEncodeError:
        return None


# ------------------------------------------------------------------ store
_stores: weakref.WeakSet[Store] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # the parent's pooled connections belong to the parent: forget them, do not close them
    for store in list(_stores):
        store._engine.dispose(close=False)
        store._write_engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Store:
    """All reads and writes of penchant's tables, for one process.

    Thread-safe: the engine's pool hands each call its own connection.
    ``clock`` stamps the rows the store times itself (dead letters).
    ``fast_batches=False`` writes every batch through the driver's executemany,
    without the faster ways (see :attr:`batch_path`), which must store the same rows.
    """

    def __init__(
        self,
        database_url: str,
        *,
        connect_timeout: float = 5.0,
        statement_timeout: float = 10.0,
        pool_timeout: float = 5.0,
        clock: Callable[[], datetime] = _utcnow,
        fast_batches: bool = True,
    ) -> None:
        self._clock = clock
        try:
            url = make_url(database_url)
        except (sa_exc.ArgumentError, ValueError, TypeError):
            scheme = str(database_url).split(":", 1)[0]
            raise StoreError(
                f"cannot parse the database URL (scheme {scheme!r}); "
                "use sqlite:///path/to/file.db or postgresql://user@host/name"
            ) from None
        if url.drivername == "postgresql":
            # psycopg2 (the postgres extra), whatever SQLAlchemy's default driver is
            url = url.set(drivername="postgresql+psycopg2")
        self.url: URL = url
        self.dialect = url.get_backend_name()
        self._memory_lock: threading.RLock | None = None
        try:
            if self.dialect == "sqlite":
                self._engine = self._sqlite_engine(url, statement_timeout, pool_timeout)
                self._write_engine = (
                    self._engine
                    if self._memory_lock is not None
                    else self._sqlite_engine(url, statement_timeout, pool_timeout, writes=True)
                )
            elif self.dialect == "postgresql":
                self._engine = self._postgres_engine(
                    url, connect_timeout, statement_timeout, pool_timeout
                )
                self._write_engine = self._engine
            else:
                raise StoreError(
                    f"unsupported database {self.dialect!r}; use sqlite:/// or postgresql://"
                )
        except ModuleNotFoundError as exc:
            raise StoreError(
                f"the database driver is not installed ({exc.name}); "
                "for PostgreSQL: pip install 'penchant[postgres]'"
            ) from None
        except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError) as exc:
            raise StoreError(f"bad database URL {self.display_url}: {exc}") from None
        if self._memory_lock is None:
            _stores.add(self)
        # compiled once and run with executemany: one statement (one atomic upsert) per row
        compiled = self._build_affinity_upsert().compile(dialect=self._engine.dialect)
        self._upsert_sql = str(compiled)
        self._upsert_positions: Sequence[str] | None = compiled.positiontup
        self._upsert_literals: dict[str, Any] = dict(compiled.params)  # e.g. 86400.0
        self._sqlite_json = fast_batches and self.dialect == "sqlite" and _sqlite_has_json()
        # affinity deltas set-based: JSON, the built-in pow() and upsert row values
        self._sqlite_set_upsert = self._sqlite_json and _sqlite_has_set_upsert()
        # PostgreSQL through psycopg2: batches go in with COPY through a staging table
        self._copy_batches = (
            fast_batches
            and self.dialect == "postgresql"
            and self._engine.dialect.driver == "psycopg2"
        )

    @property
    def batch_path(self) -> str:
        """How a batch goes in: ``"copy"`` (PostgreSQL through psycopg2: COPY into a
        staging table), ``"json"`` (SQLite: one statement a batch, and affinity
        upserts set-based where SQLite has ``pow()`` and row values), or
        ``"executemany"`` (one INSERT, run by the driver for every row)."""
        if self._copy_batches:
            return "copy"
        return "json" if self._sqlite_json else "executemany"

    # ------------------------------------------------------------ engines
    @property
    def display_url(self) -> str:
        """The URL without its password, for messages."""
        return self.url.render_as_string(hide_password=True)

    @property
    def engine(self) -> Engine:
        return self._engine

    def _sqlite_engine(
        self, url: URL, busy_timeout: float, pool_timeout: float, *, writes: bool = False
    ) -> Engine:
        """The engine for reads, or with ``writes`` the one for writes: a single
        connection (SQLite lets one connection write at a time anyway), waited for
        as long as SQLite's lock would be, with 16 MB of cached pages (default 2 MB)
        so that index pages the next batch touches again stay in memory instead of
        being read back from the WAL file."""
        memory = url.database in (None, "", ":memory:")
        kwargs: dict[str, Any] = {
            "connect_args": {"check_same_thread": False, "timeout": busy_timeout}
        }
        if memory:
            # one shared connection, so every thread sees the same in-memory database
            kwargs["poolclass"] = StaticPool
            self._memory_lock = threading.RLock()
        elif writes:
            kwargs.update(pool_size=1, max_overflow=0, pool_timeout=busy_timeout)
        else:
            kwargs["pool_timeout"] = pool_timeout
            kwargs["pool_use_lifo"] = True  # the connection used last, its cache warm
        engine = sa.create_engine(url, **kwargs)
        busy_ms = self._busy_ms = int(busy_timeout * 1000)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # SQLAlchemy emits BEGIN itself (below), so SQLite's driver must not
            dbapi_conn.isolation_level = None
            dbapi_conn.create_function("power", 2, _sqlite_power, deterministic=True)
            dbapi_conn.create_function("penchant_days", 2, _sqlite_days, deterministic=True)
            cursor = dbapi_conn.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            if not memory:
                _enable_wal(cursor, busy_timeout)
                cursor.execute("PRAGMA synchronous = NORMAL")
                # reads through a memory map: a large file costs no read() per page
                cursor.execute("PRAGMA mmap_size = 268435456")
                # checkpoint every ~40 MB of WAL, not every 4 MB: an index page written by
                # many batches is copied back once (about a sixth less CPU per stored event)
                cursor.execute("PRAGMA wal_autocheckpoint = 10000")
                if writes:
                    cursor.execute(f"PRAGMA cache_size = -{_WRITER_CACHE_KIB}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # a writer takes the write lock up front, so the busy timeout applies to it
            write = conn.get_execution_options().get("penchant_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    @staticmethod
    def _postgres_engine(
        url: URL, connect_timeout: float, statement_timeout: float, pool_timeout: float
    ) -> Engine:
        connect_args: dict[str, Any] = {
            "connect_timeout": max(1, math.ceil(connect_timeout)),
            "options": f"-c statement_timeout={int(statement_timeout * 1000)}",
            "application_name": "penchant",
        }
        extra: dict[str, Any] = {}
        if url.get_driver_name() == "psycopg2":
            # affinity upserts go in pages of 100 statements per round trip
            extra = {"executemany_mode": "values_plus_batch", "executemany_batch_page_size": 100}
        return sa.create_engine(
            url,
            connect_args=connect_args,
            pool_timeout=pool_timeout,
            pool_pre_ping=True,  # a restarted server's dead connections are replaced, not used
            **extra,
        )

    def _insert(self, table: sa.Table) -> Any:
        if self.dialect == "postgresql":
            return pg_dialect.insert(table)
        return sqlite_dialect.insert(table)

    # -------------------------------------------------------- transactions
    @contextmanager
    def _begin(
        self, *, write: bool = False, staging: bool = False, timeout: float | None = None
    ) -> Iterator[Connection]:
        """One transaction; unreachable-database errors become :class:`StoreUnavailable`.

        ``staging``: the connection has the COPY staging tables (created once per connection).
        ``timeout``: the longest the transaction waits for a lock or a statement (SQLite's
        busy timeout, PostgreSQL's lock and statement timeouts); past it, it is rolled
        back and :class:`StoreUnavailable` raised. A SQLite write with a timeout takes a
        connection of its own, not the writer's (which may be the one waiting).
        """
        guard: AbstractContextManager[Any] = self._memory_lock or nullcontext()
        try:
            engine = self._write_engine if write and timeout is None else self._engine
            with guard, engine.connect() as conn:
                if write:
                    conn.execution_options(penchant_write=True)
                if staging:
                    self._ensure_staging(conn)
                if timeout is None:
                    with conn.begin():
                        yield conn
                else:
                    with self._waiting_at_most(conn, timeout), conn.begin():
                        if self.dialect == "postgresql":
                            ms = max(1, int(timeout * 1000))
                            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {ms}")
                            conn.exec_driver_sql(f"SET LOCAL statement_timeout = {ms}")
                        yield conn
        except StoreError:
            raise
        except Exception as exc:
            if _is_unavailable(exc):
                raise StoreUnavailable(
                    f"database {self.display_url} unavailable: {describe_error(exc)}"
                ) from exc
            raise

    @contextmanager
    def _waiting_at_most(self, conn: Connection, timeout: float) -> Iterator[None]:
        """SQLite: this connection's busy timeout is ``timeout`` until the block ends."""
        if self.dialect != "sqlite":
            yield
            return
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.execute(f"PRAGMA busy_timeout = {max(1, int(timeout * 1000))}")
        try:
            yield
        finally:
            raw.execute(f"PRAGMA busy_timeout = {self._busy_ms}")

    def transaction(self, *, write: bool = False) -> AbstractContextManager[Connection]:
        """One transaction on a connection of this store's pool.

        ``write``: the writers' connection (SQLite: ``BEGIN IMMEDIATE``, so the
        write lock is taken up front). An unreachable database raises
        :class:`StoreUnavailable`.
        """
        return self._begin(write=write)

    def create_all(self) -> None:
        """Bring the database to the current schema: create it when empty, else
        migrate (idempotent, safe to race); see :mod:`penchant.storage.schema_version`."""
        from penchant.storage.schema_version import upgrade

        upgrade(self)

    def dispose(self) -> None:
        self._engine.dispose()
        if self._write_engine is not self._engine:
            self._write_engine.dispose()

    def ping(self) -> bool:
        try:
            with self._begin() as conn:
                conn.execute(sa.text("SELECT 1"))
        except Exception:
            return False
        return True

    # ---------------------------------------------------------- write path
    def record(
        self, batch: Sequence[Interaction], deltas_for: DeltasFor, rate: float
    ) -> RecordResult:
        """Store a batch and apply its affinity deltas, in one transaction.

        Replayed events (same ``user_id`` and ``event_id``) are ignored and move
        nothing. A data error retries row by row; rows that still fail go to the
        dead-letter table. :class:`StoreUnavailable` means nothing was written.
        """
        if not batch:
            return RecordResult(0, 0, 0)
        unique: list[tuple[Interaction, Any]] = []
        failed: list[tuple[Interaction, str]] = []
        seen: set[tuple[str, str]] = set()
        sqlite = self.dialect == "sqlite"
        make_row = self._sqlite_row if sqlite else self._row
        for event_ in batch:
            key = (event_.user_id, event_.event_id)
            if key in seen:
                continue
            seen.add(key)
            try:
                unique.append((event_, make_row(event_)))
            except Exception as exc:
                failed.append((event_, describe_error(exc)))
        # In (visitor, event id) order: on PostgreSQL one lock order for every process
        # (no deadlock on the unique index); on SQLite, whose indexes mostly lead with
        # the visitor, each visitor's rows go into the same index pages one after
        # another (a quarter less CPU per row in process, at 100k rows).
        unique.sort(key=lambda pair: (str(pair[0].user_id), str(pair[0].event_id)))
        for attempt in range(_TRANSIENT_RETRIES):
            try:
                inserted = self._record_batch(unique, failed, deltas_for, rate)
                break
            except StoreUnavailable as exc:
                if attempt + 1 < _TRANSIENT_RETRIES and _is_transient(exc.__cause__ or exc):
                    continue
                raise
            except Exception as exc:
                logger.warning(
                    "batch of %d interactions failed (%s); retrying row by row",
                    len(unique),
                    describe_error(exc),
                )
                inserted, failed = self._record_rows(unique, failed, deltas_for, rate)
                break
        else:  # pragma: no cover - the loop always breaks or raises
            raise AssertionError("unreachable")
        duplicates = len(batch) - len(inserted) - len(failed)
        logger.debug(
            "recorded %d interactions (%d duplicates, %d dead-lettered)",
            len(inserted),
            duplicates,
            len(failed),
        )
        return RecordResult(
            len(inserted),
            duplicates,
            len(failed),
            tuple(inserted),
            tuple(e for e, _ in failed),
        )

    @staticmethod
    def _row(event_: Interaction) -> dict[str, Any]:
        return {
            "user_id": event_.user_id,
            "session_id": event_.session_id,
            "interaction_type": event_.interaction_type,
            "target_type": event_.target_type,
            "target_id": event_.target_id,
            "extra_data": _json_text(event_.extra_data),
            "timestamp": _naive_utc(event_.timestamp),
            "event_id": event_.event_id,
        }

    @staticmethod
    def _sqlite_row(event_: Interaction) -> tuple[Any, ...]:
        """The row as the driver takes it, in :data:`INTERACTION_COLUMNS` order; the
        timestamp as SQLAlchemy stores a ``DateTime`` in SQLite."""
        moment = event_.timestamp
        if type(moment) is not datetime:
            raise TypeError(f"timestamp must be a datetime, not {type(moment).__name__}")
        target = event_.target_id
        if target is not None and (
            type(target) is not int or not _INT64_MIN <= target <= _INT64_MAX
        ):
            # what the driver would refuse (JSON would turn a huge integer into a float)
            raise OverflowError(f"target_id is not a 64-bit integer: {target!r}")
        return (
            event_.user_id,
            event_.session_id,
            event_.interaction_type,
            event_.target_type,
            target,
            _json_text(event_.extra_data),
            sqlite_time(moment),
            event_.event_id,
        )

    def _sqlite_insert(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> set[Any]:
        """Insert the rows that are new; return their (user_id, event_id) keys."""
        count = _SQLITE_INTERACTIONS.insert(conn, rows, use_json=self._sqlite_json)
        if count == len(rows):
            return {(row[0], row[7]) for row in rows}
        if count <= 0:
            return set()
        return {(r[0], r[1]) for r in conn.exec_driver_sql(_SQLITE_NEWEST, (count,))}

    def _insert_interactions(self) -> Any:
        ui = user_interactions
        return (
            self._insert(ui)
            .on_conflict_do_nothing(index_elements=["user_id", "event_id"])
            .returning(ui.c.user_id, ui.c.event_id)
        )

    def _record_batch(
        self,
        unique: list[tuple[Interaction, Any]],
        failed: list[tuple[Interaction, str]],
        deltas_for: DeltasFor,
        rate: float,
    ) -> list[Interaction]:
        rows = [row for _, row in unique]
        data = copy_text(rows) if self._copy_batches and rows else None
        with self._begin(write=True, staging=self._copy_batches) as conn:
            inserted: list[Interaction] = []
            if rows:
                if self.dialect == "sqlite":
                    new = self._sqlite_insert(conn, rows)
                else:
                    if data is None:
                        result: Iterable[Any] = conn.execute(self._insert_interactions(), rows)
                    else:
                        result = self._copy_interactions(conn, data)
                    new = {(r[0], r[1]) for r in result}
                inserted = [e for e, _ in unique if (e.user_id, e.event_id) in new]
            self._apply_deltas(conn, inserted, deltas_for, rate)
            self._dead_letter(conn, failed)
        return inserted

    def _ensure_staging(self, conn: Connection) -> None:
        """Create this connection's staging tables, in a transaction of their own, once."""
        info = conn.connection.info
        if info.get(_STAGING):
            return
        columns = ", ".join(
            f'"{name}" {user_interactions.c[name].type.compile(dialect=self._engine.dialect)}'
            for name in _COPY_COLUMNS
        )
        with conn.begin():
            # temporary: private to the session; emptied by every commit that filled it
            conn.exec_driver_sql(
                f"CREATE TEMPORARY TABLE {_STAGING} ({columns}) ON COMMIT DELETE ROWS"
            )
            conn.exec_driver_sql(
                f"CREATE TEMPORARY TABLE {_DELTA_STAGING} ("
                "u VARCHAR(32), c INTEGER, first TIMESTAMP WITHOUT TIME ZONE,"
                " last TIMESTAMP WITHOUT TIME ZONE, scale FLOAT8, add FLOAT8, cap FLOAT8,"
                " add_raw FLOAT8, PRIMARY KEY (u, c)) ON COMMIT DELETE ROWS"
            )
        info[_STAGING] = True  # only once the tables are committed

    def _copy_interactions(self, conn: Connection, data: bytes) -> Sequence[Any]:
        """COPY the rows into the staging table, then insert the new ones; return their keys.

        The INSERT takes the rows in (user_id, event_id) order, by code point like
        the sort in :meth:`record`, so every path locks index entries in one order.
        """
        columns = ", ".join(f'"{name}"' for name in _COPY_COLUMNS)
        self._copy_into(conn, f"{_STAGING} ({columns})", data)
        return conn.exec_driver_sql(
            f"INSERT INTO user_interactions ({columns}) SELECT {columns} FROM {_STAGING}"
            ' ORDER BY user_id COLLATE "C", event_id COLLATE "C"'
            " ON CONFLICT (user_id, event_id) DO NOTHING RETURNING user_id, event_id"
        ).all()

    def _copy_into(self, conn: Connection, target: str, data: bytes) -> None:
        """COPY text-format rows into ``target`` (a staging table and its columns)."""
        copy = f"COPY {target} FROM STDIN WITH (ENCODING 'UTF8')"
        dialect = self._engine.dialect
        dbapi_conn: Any = conn.connection.dbapi_connection
        try:
            with dbapi_conn.cursor() as cursor:
                cursor.copy_expert(copy, io.BytesIO(data))
        except dialect.loaded_dbapi.Error as exc:
            # the driver's error, raised the way SQLAlchemy raises its own
            gone = dialect.is_disconnect(exc, dbapi_conn, None)
            if gone:
                conn.invalidate(exc)
            raise sa_exc.DBAPIError.instance(
                copy, None, exc, dialect.loaded_dbapi.Error, connection_invalidated=gone
            ) from exc

    def _record_rows(
        self,
        unique: list[tuple[Interaction, Any]],
        failed: list[tuple[Interaction, str]],
        deltas_for: DeltasFor,
        rate: float,
    ) -> tuple[list[Interaction], list[tuple[Interaction, str]]]:
        failed = list(failed)
        statement = self._insert_interactions()
        sqlite_statement = _SQLITE_INTERACTIONS.per_row if self.dialect == "sqlite" else None
        with self._begin(write=True, staging=self._copy_batches) as conn:
            inserted: list[Interaction] = []
            for event_, row in unique:
                try:
                    with conn.begin_nested():
                        if sqlite_statement is not None:
                            new = conn.exec_driver_sql(sqlite_statement, row).rowcount == 1
                        else:
                            new = conn.execute(statement, row).first() is not None
                        if new:
                            inserted.append(event_)
                except Exception as exc:
                    if _is_unavailable(exc):
                        raise
                    failed.append((event_, describe_error(exc)))
            self._apply_deltas(conn, inserted, deltas_for, rate)
            self._dead_letter(conn, failed)
        if failed:
            logger.warning("dead-lettered %d interactions", len(failed))
        return inserted, failed

    def _dead_letter(self, conn: Connection, failed: Sequence[tuple[Interaction, str]]) -> None:
        if not failed:
            return
        now = _naive_utc(self._clock())
        conn.execute(
            dead_letter.insert(),
            [{"failed_at": now, "error": err, "payload": _payload(e)} for e, err in failed],
        )

    def _build_affinity_upsert(self) -> Any:
        uca = user_category_affinity
        p = {
            name: sa.bindparam(name, type_=kind)
            for name, kind in (
                ("p_user", sa.String()),
                ("p_category", sa.Integer()),
                ("p_score", sa.Float()),
                ("p_raw", sa.Float()),
                ("p_first", sa.DateTime()),
                ("p_last", sa.DateTime()),
                ("p_scale", sa.Float()),
                ("p_add", sa.Float()),
                ("p_cap", sa.Float()),
                ("p_add_raw", sa.Float()),
                ("p_rate", sa.Float()),
            )
        }

        def as_float(value: Any) -> Any:
            return sa.cast(value, sa.Float)

        least: Any
        greatest: Any
        if self.dialect == "postgresql":
            seconds = sa.extract("epoch", p["p_first"] - uca.c.last_updated)
            days: Any = sa.func.greatest(0.0, as_float(seconds) / 86400.0)
            least, greatest = sa.func.least, sa.func.greatest
        else:
            days = sa.func.penchant_days(p["p_first"], uca.c.last_updated)
            # SQLite's multi-argument min() and max() are the scalar LEAST and GREATEST
            least, greatest = sa.func.min, sa.func.max
        factor = as_float(p["p_scale"]) * sa.func.power(as_float(p["p_rate"]), as_float(days))
        statement = self._insert(uca).values(
            user_id=p["p_user"],
            category_id=p["p_category"],
            affinity_score=p["p_score"],
            raw_score=p["p_raw"],
            last_updated=p["p_last"],
        )
        # the decay, the add and the cap happen in SQL, on the row as it is now
        return statement.on_conflict_do_update(
            index_elements=["user_id", "category_id"],
            set_={
                "affinity_score": least(
                    as_float(p["p_cap"]), factor * uca.c.affinity_score + as_float(p["p_add"])
                ),
                "raw_score": factor * uca.c.raw_score + as_float(p["p_add_raw"]),
                "last_updated": greatest(p["p_last"], uca.c.last_updated),
            },
        )

    def _apply_deltas(
        self,
        conn: Connection,
        inserted: Sequence[Interaction],
        deltas_for: DeltasFor,
        rate: float,
    ) -> None:
        if not inserted:
            return
        try:
            deltas = deltas_for(inserted)
        except Exception:
            # the interactions are still worth keeping without their affinity update
            logger.exception("computing affinity deltas failed; interactions stored without them")
            return
        if not deltas:
            return
        keys = {(d.user_id, d.category_id) for d in deltas}
        if self.dialect == "postgresql" and len(keys) == len(deltas):
            self._apply_deltas_set_based(conn, deltas, rate)
            return
        if self._sqlite_set_upsert and len(keys) == len(deltas):
            self._apply_deltas_sqlite(conn, deltas, rate)
            return
        rows: list[Any] = []
        for delta in sorted(deltas, key=lambda d: (d.user_id, d.category_id)):
            first, last = _naive_utc(delta.first), _naive_utc(delta.last)
            params: dict[str, Any] = {
                **self._upsert_literals,
                "p_user": delta.user_id,
                "p_category": delta.category_id,
                "p_score": min(delta.cap, delta.add),
                "p_raw": delta.add_raw,
                "p_first": first,
                "p_last": last,
                "p_scale": delta.scale,
                "p_add": delta.add,
                "p_cap": delta.cap,
                "p_add_raw": delta.add_raw,
                "p_rate": rate,
            }
            if self._upsert_positions is not None:
                # SQLite: the same text format SQLAlchemy stores DateTime columns in
                params["p_first"] = sqlite_time(first)
                params["p_last"] = sqlite_time(last)
                rows.append(tuple(params[name] for name in self._upsert_positions))
            else:
                rows.append(params)
        conn.exec_driver_sql(self._upsert_sql, rows)

    def _apply_deltas_sqlite(
        self, conn: Connection, deltas: Sequence[AffinityDelta], rate: float
    ) -> None:
        """SQLite: the deltas (distinct keys) in one temporary table, then one upsert."""
        rows = [
            (
                d.user_id,
                int(d.category_id),
                sqlite_time(d.first),
                sqlite_time(d.last),
                float(d.scale),
                float(d.add),
                float(d.cap),
                float(d.add_raw),
            )
            for d in deltas
        ]
        conn.exec_driver_sql(_SQLITE_DELTA_TABLE)
        conn.exec_driver_sql(f"DELETE FROM temp.{_SQLITE_DELTAS}")
        _SQLITE_DELTA_ROWS.insert(conn, rows, use_json=True)
        conn.exec_driver_sql(_SQLITE_SET_UPSERT, {"rate": float(rate)})
        conn.exec_driver_sql(f"DELETE FROM temp.{_SQLITE_DELTAS}")

    def _apply_deltas_set_based(
        self, conn: Connection, deltas: Sequence[AffinityDelta], rate: float
    ) -> None:
        """PostgreSQL: every delta of the batch in one INSERT .. ON CONFLICT DO UPDATE.

        Each row is still one atomic upsert (the arithmetic reads the row as it
        is now, under its lock); the batch just costs one statement, not one each.
        """
        ordered = sorted(deltas, key=lambda d: (d.user_id, d.category_id))
        if conn.connection.info.get(_STAGING):
            data = _delta_copy_text(ordered)
            if data is not None:
                self._copy_into(conn, f"{_DELTA_STAGING} ({_DELTA_COLUMNS})", data)
                conn.exec_driver_sql(_PG_STAGED_UPSERT, {"rate": float(rate)})
                return
        conn.exec_driver_sql(
            _PG_SET_UPSERT,
            {
                "u": pg_text_array(d.user_id for d in ordered),
                "c": pg_number_array(int(d.category_id) for d in ordered),
                "first": pg_text_array(_naive_utc(d.first).isoformat() for d in ordered),
                "last": pg_text_array(_naive_utc(d.last).isoformat() for d in ordered),
                "scale": pg_number_array(float(d.scale) for d in ordered),
                "add": pg_number_array(float(d.add) for d in ordered),
                "cap": pg_number_array(float(d.cap) for d in ordered),
                "add_raw": pg_number_array(float(d.add_raw) for d in ordered),
                "rate": float(rate),
            },
        )

    # ----------------------------------------------------------- read path
    def load_profile(self, user_id: str, *, history_limit: int = 50) -> VisitorProfile:
        """Affinities and the most recent catalog interactions (via the visitor-time index)."""
        uca = user_category_affinity
        with self._begin() as conn:
            affinities = conn.execute(
                sa.select(
                    uca.c.category_id, uca.c.affinity_score, uca.c.raw_score, uca.c.last_updated
                ).where(uca.c.user_id == user_id)
            ).all()
            history = conn.execute(
                self._history_query(), {"user_id": user_id, "limit": history_limit}
            ).all()
        return VisitorProfile(
            user_id,
            {
                row.category_id: AffinityState(
                    row.category_id, row.affinity_score, row.raw_score, row.last_updated
                )
                for row in affinities
            },
            tuple(HistoryEntry(*row) for row in history),
        )

    def _history_query(self) -> Any:
        """A visitor's latest catalog interactions, read backwards along (user_id, timestamp).

        SQLite's planner, knowing only the average rows per visitor, may otherwise pick
        the user_id index and sort all of a heavy visitor's rows: INDEXED BY names the
        index, and likelihood() says the filter rarely rejects a row, so the index order
        is used as is. PostgreSQL keeps per-value statistics and decides per visitor.
        """
        ui = user_interactions
        if self.dialect == "sqlite":
            return _SQLITE_HISTORY
        return (
            sa.select(ui.c.interaction_type, ui.c.target_type, ui.c.target_id, ui.c.timestamp)
            .where(ui.c.user_id == sa.bindparam("user_id"), ui.c.target_id.is_not(None))
            .order_by(ui.c.timestamp.desc())
            .limit(sa.bindparam("limit"))
        )

    def recent_history(
        self, user_ids: Sequence[str], *, limit_per_user: int = 20
    ) -> dict[str, list[HistoryEntry]]:
        """Each visitor's latest catalog interactions, most recent first."""
        visitors = sorted(set(user_ids))
        out: dict[str, list[HistoryEntry]] = {u: [] for u in visitors}
        if not visitors or limit_per_user <= 0:
            return out
        with self._begin() as conn:
            if self.dialect == "sqlite":
                # in-process: one indexed query per visitor costs no round trip
                for visitor in visitors:
                    rows = conn.execute(
                        self._history_query(), {"user_id": visitor, "limit": limit_per_user}
                    )
                    out[visitor].extend(HistoryEntry(*row) for row in rows)
                return out
            # One cached statement for any number of visitors: no per-batch SQL compilation.
            for row in conn.execute(_PG_RECENT_HISTORY, {"ids": visitors, "limit": limit_per_user}):
                out[row[0]].append(HistoryEntry(row[1], row[2], row[3], row[4]))
        for entries in out.values():
            entries.sort(key=lambda h: h.timestamp, reverse=True)
        return out

    def popularity(self, since: datetime, *, limit_per_type: int = 500) -> Popularity:
        """Distinct visitors per target since ``since``: one visitor counts once, and
        not on a day they were left out of shared counts (``penchant_unshared``)."""
        ui = user_interactions
        visitors = sa.func.count(sa.distinct(ui.c.user_id))
        left_out = sa.exists().where(
            unshared.c.user_id == ui.c.user_id, unshared.c.day == sa.func.date(ui.c.timestamp)
        )
        with self._begin() as conn:
            rows = conn.execute(
                sa.select(ui.c.target_type, ui.c.target_id, visitors)
                .where(ui.c.timestamp >= _naive_utc(since), ui.c.target_id.is_not(None), ~left_out)
                .group_by(ui.c.target_type, ui.c.target_id)
            ).all()
        return Popularity.from_rows(rows, limit_per_type=limit_per_type)

    # ------------------------------------------------------ co-occurrence
    def add_neighbours(
        self,
        increments: Mapping[tuple[ItemKey, ItemKey], float],
        at: datetime,
        *,
        networks: Mapping[tuple[ItemKey, ItemKey], int] | None = None,
    ) -> None:
        """Add co-occurrence increments to each (item, neighbour) score, atomically.

        ``networks``: how many networks not counted before saw each pair (see
        ``penchant.middleware.networks``); without it, each pair counts one.
        Rows go in sorted by key (one lock order for every process). PostgreSQL gets
        the batch as arrays in one statement, SQLite as one JSON array. Either way
        each row is one atomic ``score = score + add``.
        """
        pairs = [
            (
                item[0],
                item[1],
                other[0],
                other[1],
                float(value),
                1 if networks is None else int(networks.get((item, other), 0)),
            )
            for (item, other), value in sorted(increments.items())
            if item != other and math.isfinite(value) and value != 0
        ]
        if not pairs:
            return
        when = _naive_utc(at)
        with self._begin(write=True) as conn:
            if self.dialect == "postgresql":
                types, ids, other_types, other_ids, scores, seen = zip(*pairs, strict=True)
                conn.exec_driver_sql(
                    _PG_NEIGHBOURS_UPSERT,
                    {
                        "t": pg_text_array(types),
                        "i": pg_number_array(ids),
                        "nt": pg_text_array(other_types),
                        "ni": pg_number_array(other_ids),
                        "s": pg_number_array(scores),
                        "w": pg_number_array(seen),
                        "at": when,
                    },
                )
            else:
                # the text SQLAlchemy stores a SQLite DateTime as
                stamp = sqlite_time(when)
                rows = [(*pair[:5], stamp, pair[5]) for pair in pairs]
                _SQLITE_NEIGHBOURS.insert(conn, rows, use_json=self._sqlite_json)

    def mark_unshared(self, visitors: Iterable[tuple[str, date]]) -> None:
        """Note that these visitors do not count in shared counts on these days
        (popular content; see ``penchant.middleware.networks``); idempotent."""
        rows = [{"user_id": u, "day": d} for u, d in sorted(set(visitors))]
        if not rows:
            return
        statement = self._insert(unshared).on_conflict_do_nothing(index_elements=["user_id", "day"])
        with self._begin(write=True) as conn:
            conn.execute(statement, rows)

    def neighbours(
        self, keys: Iterable[ItemKey], *, limit_per_item: int = 20, min_networks: int = 1
    ) -> dict[ItemKey, list[tuple[ItemKey, float]]]:
        """Each item's best neighbours, best first, of the pairs seen from at least
        ``min_networks`` networks."""
        n = item_neighbours
        wanted = sorted(set(keys))
        out: dict[ItemKey, list[tuple[ItemKey, float]]] = {k: [] for k in wanted}
        if not wanted or limit_per_item <= 0:
            return out
        with self._begin() as conn:
            if self._copy_batches:  # PostgreSQL through psycopg2
                # One statement whatever the items: building and keying a union of
                # a subquery per item cost more than the database's answer to it.
                rows = conn.exec_driver_sql(
                    _PG_NEIGHBOURS,
                    {
                        "types": [item_type for item_type, _ in wanted],
                        "ids": [item_id for _, item_id in wanted],
                        "limit": limit_per_item,
                        "networks": min_networks,
                    },
                )
                for row in rows:
                    out[(row[0], row[1])].append(((row[2], row[3]), float(row[4])))
            else:
                for chunk in _chunks(wanted, _UNION_CHUNK):
                    parts = [
                        sa.select(
                            n.c.item_type,
                            n.c.item_id,
                            n.c.neighbour_type,
                            n.c.neighbour_id,
                            n.c.score,
                        )
                        .where(
                            n.c.item_type == item_type,
                            n.c.item_id == item_id,
                            n.c.networks >= min_networks,
                        )
                        .order_by(n.c.score.desc())
                        .limit(limit_per_item)
                        .subquery()
                        .select()
                        for item_type, item_id in chunk
                    ]
                    for row in conn.execute(sa.union_all(*parts)):
                        out[(row[0], row[1])].append(((row[2], row[3]), float(row[4])))
        for found in out.values():
            found.sort(key=lambda pair: (-pair[1], pair[0]))
        return out

    def trim_neighbours(self, keep: int) -> int:
        """Keep each item's ``keep`` best neighbours; return how many rows were deleted."""
        n = item_neighbours
        rank = (
            sa.func.row_number()
            .over(
                partition_by=(n.c.item_type, n.c.item_id),
                # pairs seen from one network only rank last: they are not read
                order_by=(
                    sa.case((n.c.networks >= 2, 0), else_=1),
                    n.c.score.desc(),
                    n.c.neighbour_type,
                    n.c.neighbour_id,
                ),
            )
            .label("rank")
        )
        ranked = sa.select(
            n.c.item_type, n.c.item_id, n.c.neighbour_type, n.c.neighbour_id, rank
        ).subquery()
        doomed = sa.select(
            ranked.c.item_type, ranked.c.item_id, ranked.c.neighbour_type, ranked.c.neighbour_id
        ).where(ranked.c.rank > max(0, keep))
        key = sa.tuple_(n.c.item_type, n.c.item_id, n.c.neighbour_type, n.c.neighbour_id)
        with self._begin(write=True) as conn:
            return int(conn.execute(sa.delete(n).where(key.in_(doomed))).rowcount or 0)

    # ------------------------------------------------- privacy and retention
    def erase(self, user_id: str | Sequence[str], *, timeout: float | None = None) -> int:
        """Delete a visitor's interactions, affinities, exposures and dead-lettered rows;
        return the rows deleted. ``user_id``: one id, or every id the visitor has (one
        per accepted secret). ``timeout``: see :meth:`transaction`; past it nothing is
        deleted and :class:`StoreUnavailable` is raised."""
        ids = _ids(user_id)
        with self._begin(write=True, timeout=timeout) as conn:
            a = conn.execute(
                sa.delete(user_interactions).where(user_interactions.c.user_id.in_(ids))
            ).rowcount
            b = conn.execute(
                sa.delete(user_category_affinity).where(user_category_affinity.c.user_id.in_(ids))
            ).rowcount
            c = conn.execute(sa.delete(exposures).where(exposures.c.user_id.in_(ids))).rowcount
            # the days the visitor was left out of shared counts (a flag, not counted)
            conn.execute(sa.delete(unshared).where(unshared.c.user_id.in_(ids)))
            # a dead-lettered row keeps its visitor id in its payload (ids are hex: no escaping)
            d = conn.execute(
                sa.delete(dead_letter).where(
                    sa.or_(*(dead_letter.c.payload.contains(f'"{i}"') for i in ids))
                )
            ).rowcount
        logger.debug("erased %d rows", a + b + c + d)
        return int(a + b + c + d)

    def export(
        self, user_id: str | Sequence[str], *, timeout: float | None = None
    ) -> dict[str, object]:
        """Everything stored about one visitor, JSON-ready (data portability).

        ``user_id``: one id, or every id the visitor has (the first is the one shown).
        ``timeout``: as for :meth:`erase`."""
        ids = _ids(user_id)
        ui, uca = user_interactions, user_category_affinity
        with self._begin(timeout=timeout) as conn:
            interactions = conn.execute(
                sa.select(
                    ui.c.event_id,
                    ui.c.session_id,
                    ui.c.interaction_type,
                    ui.c.target_type,
                    ui.c.target_id,
                    ui.c.extra_data,
                    ui.c.timestamp,
                )
                .where(ui.c.user_id.in_(ids))
                .order_by(ui.c.timestamp, ui.c.id)
            ).all()
            affinities = conn.execute(
                sa.select(
                    uca.c.category_id, uca.c.affinity_score, uca.c.raw_score, uca.c.last_updated
                )
                .where(uca.c.user_id.in_(ids))
                .order_by(uca.c.category_id)
            ).all()
            ex = exposures
            shown = conn.execute(
                sa.select(
                    ex.c.page_view_id,
                    ex.c.session_id,
                    ex.c.variant,
                    ex.c.content_type,
                    ex.c["items"],
                    ex.c.timestamp,
                )
                .where(ex.c.user_id.in_(ids))
                .order_by(ex.c.timestamp, ex.c.id)
            ).all()
        return {
            "user_id": ids[0],
            "interactions": [
                {
                    "event_id": row.event_id,
                    "session_id": row.session_id,
                    "interaction_type": row.interaction_type,
                    "target_type": row.target_type,
                    "target_id": row.target_id,
                    "extra_data": _load_json(row.extra_data),
                    "timestamp": _iso(row.timestamp),
                }
                for row in interactions
            ],
            "affinities": [
                {
                    "category_id": row.category_id,
                    "affinity_score": row.affinity_score,
                    "raw_score": row.raw_score,
                    "last_updated": _iso(row.last_updated),
                }
                for row in affinities
            ],
            # the recommendations each page view showed (for the A/B comparison)
            "exposures": [
                {
                    "page_view_id": row.page_view_id,
                    "session_id": row.session_id,
                    "variant": row.variant,
                    "lists": row.content_type.split(","),
                    "items": _load_json(row.items),
                    "timestamp": _iso(row.timestamp),
                }
                for row in shown
            ],
        }

    def _expired(self, before: datetime) -> tuple[Any, Any, Any, Any]:
        cutoff = _naive_utc(before)
        return (
            user_interactions.c.timestamp < cutoff,
            user_category_affinity.c.last_updated < cutoff,
            dead_letter.c.failed_at < cutoff,
            exposures.c.timestamp < cutoff,
        )

    def purge(self, before: datetime) -> PurgeResult:
        """Delete interactions older than ``before`` and affinities not updated since."""
        old_interactions, old_affinities, old_dead, old_exposures = self._expired(before)
        with self._begin(write=True) as conn:
            result = PurgeResult(
                int(conn.execute(sa.delete(user_interactions).where(old_interactions)).rowcount),
                int(conn.execute(sa.delete(user_category_affinity).where(old_affinities)).rowcount),
                int(conn.execute(sa.delete(dead_letter).where(old_dead)).rowcount),
                int(conn.execute(sa.delete(exposures).where(old_exposures)).rowcount),
            )
            conn.execute(sa.delete(unshared).where(unshared.c.day < _naive_utc(before).date()))
        logger.debug("purged %s", result)
        return result

    def purge_counts(self, before: datetime) -> PurgeResult:
        """What :meth:`purge` would delete, without deleting it."""
        old_interactions, old_affinities, old_dead, old_exposures = self._expired(before)
        count = sa.func.count()
        with self._begin() as conn:
            return PurgeResult(
                int(
                    conn.scalar(
                        sa.select(count).select_from(user_interactions).where(old_interactions)
                    )
                    or 0
                ),
                int(
                    conn.scalar(
                        sa.select(count).select_from(user_category_affinity).where(old_affinities)
                    )
                    or 0
                ),
                int(conn.scalar(sa.select(count).select_from(dead_letter).where(old_dead)) or 0),
                int(conn.scalar(sa.select(count).select_from(exposures).where(old_exposures)) or 0),
            )

    # ------------------------------------------------------------ monitoring
    def daily_counts(self, since: datetime) -> list[tuple[str, str, int]]:
        """Interactions per day and type since ``since`` (the original's volume query)."""
        ui = user_interactions
        day = sa.func.date(ui.c.timestamp)
        with self._begin() as conn:
            rows = conn.execute(
                sa.select(day, ui.c.interaction_type, sa.func.count())
                .where(ui.c.timestamp >= _naive_utc(since))
                .group_by(day, ui.c.interaction_type)
                .order_by(day, ui.c.interaction_type)
            ).all()
        return [(_iso(d), str(kind), int(n)) for d, kind, n in rows]

    def engaged_visitors(
        self, since: datetime, *, minimum: int = 5, limit: int = 100
    ) -> list[tuple[str, int]]:
        """Visitors with more than ``minimum`` interactions since ``since``, most active first."""
        ui = user_interactions
        count = sa.func.count()
        with self._begin() as conn:
            rows = conn.execute(
                sa.select(ui.c.user_id, count)
                .where(ui.c.timestamp >= _naive_utc(since))
                .group_by(ui.c.user_id)
                .having(count > minimum)
                .order_by(count.desc(), ui.c.user_id)
                .limit(limit)
            ).all()
        return [(str(user), int(n)) for user, n in rows]

    def top_categories(self, limit: int = 10) -> list[tuple[int, float]]:
        """Categories by summed affinity over all visitors, highest first."""
        uca = user_category_affinity
        total = sa.func.sum(uca.c.affinity_score)
        with self._begin() as conn:
            rows = conn.execute(
                sa.select(uca.c.category_id, total)
                .group_by(uca.c.category_id)
                .order_by(total.desc(), uca.c.category_id)
                .limit(limit)
            ).all()
        return [(int(cid), float(score)) for cid, score in rows]

    def recent_interactions(self, limit: int = 20) -> list[Interaction]:
        """The latest interactions of all visitors, newest first (operator dashboard)."""
        ui = user_interactions
        query = sa.select(ui).order_by(ui.c.timestamp.desc(), ui.c.id.desc()).limit(limit)
        with self._begin() as conn:
            rows = conn.execute(query).all()
        return [
            Interaction(
                user_id=row.user_id,
                session_id=row.session_id,
                interaction_type=row.interaction_type,
                target_type=row.target_type,
                target_id=row.target_id,
                timestamp=row.timestamp,
                event_id=row.event_id or "",
                extra_data=_extra_mapping(row.extra_data),
            )
            for row in rows
        ]

    def dead_letter_count(self) -> int:
        with self._begin() as conn:
            return int(conn.scalar(sa.select(sa.func.count()).select_from(dead_letter)) or 0)

    def count_interactions(self, user_id: str | None = None) -> int:
        ui = user_interactions
        query = sa.select(sa.func.count()).select_from(ui)
        if user_id is not None:
            query = query.where(ui.c.user_id == user_id)
        with self._begin() as conn:
            return int(conn.scalar(query) or 0)

    # ------------------------------------------------------------------ meta
    def get_meta(self, key: str) -> str | None:
        with self._begin() as conn:
            value = conn.scalar(sa.select(meta.c.value).where(meta.c.key == key))
        return None if value is None else str(value)

    def set_meta_if_absent(self, key: str, value: str) -> str:
        """Store ``value`` unless ``key`` has one; return the stored value (race-safe)."""
        statement = self._insert(meta).values(key=key, value=value)
        with self._begin(write=True) as conn:
            conn.execute(statement.on_conflict_do_nothing(index_elements=["key"]))
            stored = conn.scalar(sa.select(meta.c.value).where(meta.c.key == key))
        return str(stored)


def _extra_mapping(text: str | None) -> Mapping[str, object] | None:
    value = _load_json(text)
    return value if isinstance(value, dict) else None


def _load_json(text: str | None) -> object:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text
