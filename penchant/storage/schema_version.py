"""Where a database's schema stands, and bringing it to the current one.

The schema is versioned with Alembic; the migrations ship inside the package
(``penchant/storage/migrations``) and record their revision in a table of
their own, ``penchant_alembic_version``, so a host app's Alembic is not
disturbed. Three entry points:

- :func:`current`: the database's revision, read only (``penchant db current``).
- :func:`upgrade`: any database, empty or behind, to the current revision, with
  its data (``penchant db upgrade``).
- :func:`ensure`: what a web worker does on first use: creates the tables in a
  database that has none of them, and never migrates one that is behind.

Both writers take one lock first (PostgreSQL: an advisory lock; SQLite: the
write lock of ``BEGIN IMMEDIATE``) and run inside one transaction, so several
workers or hosts may call them at once: one does the work, the others find it
done. A database made before the schema was versioned has no revision table;
its revision is told from its tables (:func:`detect`).

:class:`SchemaGate` is the per-process guard in front of the store: it runs
:func:`ensure` once, says once in the log what is wrong, and keeps writes away
from a database whose schema is not current.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from penchant.storage.schema import metadata
from penchant.storage.store import StoreError, StoreUnavailable

if TYPE_CHECKING:
    from alembic.config import Config

    from penchant.storage.store import Store

__all__ = [
    "VERSION_TABLE",
    "SchemaError",
    "SchemaGate",
    "SchemaNotReady",
    "SchemaState",
    "current",
    "detect",
    "ensure",
    "head",
    "migrate",
    "upgrade",
]

logger = logging.getLogger("personalization")

VERSION_TABLE = "penchant_alembic_version"
# one number for every penchant process on a PostgreSQL server: "the schema is being changed"
_PG_LOCK = 726150001

# The tables of each revision made before the schema was versioned.
_FIRST_TABLES = frozenset(
    {
        "user_interactions",
        "user_category_affinity",
        "penchant_meta",
        "penchant_dead_letter",
        "penchant_item_neighbours",
        "penchant_exposures",
    }
)
_SECOND_TABLES = _FIRST_TABLES | {"penchant_changes", "penchant_popular_days"}
_THIRD_TABLES = _SECOND_TABLES | {"penchant_unshared"}


class SchemaError(StoreError):
    """The database holds tables that are not a schema penchant knows."""


class SchemaNotReady(StoreUnavailable):
    """The schema is missing, behind or ahead: nothing is written until it is current."""


@dataclass(frozen=True, slots=True)
class SchemaState:
    """Where a database stands: ``revision`` None means it has none of penchant's tables."""

    revision: str | None
    head: str
    created: bool = False  # this call created the tables

    @property
    def is_current(self) -> bool:
        return self.revision == self.head

    @property
    def is_empty(self) -> bool:
        return self.revision is None

    @property
    def is_behind(self) -> bool:
        return self.revision is not None and self.revision in _history()[:-1]


@functools.cache
def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "penchant.storage:migrations")
    return config


@functools.cache
def _history() -> tuple[str, ...]:
    """Every revision, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_config())
    return tuple(reversed([rev.revision for rev in script.walk_revisions()]))


def head() -> str:
    """The revision this version of penchant needs."""
    return _history()[-1]


def detect(conn: Connection) -> str | None:
    """The database's revision; None when it has none of penchant's tables.

    A database made before the schema was versioned is told by its tables.
    """
    inspector = sa.inspect(conn)
    tables = set(inspector.get_table_names())
    if (revision := _recorded(conn, tables)) is not None:
        return revision
    ours = tables & (_THIRD_TABLES | {VERSION_TABLE})
    if not ours - {VERSION_TABLE}:
        return None
    if tables >= _FIRST_TABLES:
        columns = {c["name"] for c in inspector.get_columns("penchant_exposures")}
        if "lists" not in columns:
            return "0001"
        if tables >= _THIRD_TABLES:
            return "0003"
        if tables >= _SECOND_TABLES:
            return "0002"
    raise SchemaError(
        f"the database has some of penchant's tables ({', '.join(sorted(ours))}) but not "
        "a schema penchant knows; move them aside or use another database"
    )


def _recorded(conn: Connection, tables: set[str]) -> str | None:
    """The revision in the version table, if the database has one."""
    if VERSION_TABLE not in tables:
        return None
    revision = conn.scalar(sa.text(f"SELECT version_num FROM {VERSION_TABLE}"))
    return None if revision is None else str(revision)


def current(store: Store) -> SchemaState:
    """Where ``store``'s database stands; reads only."""
    with store.transaction() as conn:
        return SchemaState(detect(conn), head())


def _lock(store: Store, conn: Connection) -> None:
    if store.dialect == "postgresql":
        conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({_PG_LOCK})"))


def _run(conn: Connection, command: Callable[..., None], revision: str) -> None:
    config = _config()
    config.attributes["connection"] = conn
    try:
        command(config, revision)
    finally:
        config.attributes.pop("connection", None)


def migrate(conn: Connection, revision: str = "head") -> None:
    """Run the migrations on ``conn`` up to ``revision``, from where its version
    table says (from nothing when it has none). No lock: callers hold one."""
    from alembic import command

    _run(conn, command.upgrade, revision)


def _create(conn: Connection) -> None:
    """An empty database: the current tables at once, stamped with the current revision.

    The same as running every migration from the first (a test compares the two).
    """
    from alembic import command

    metadata.create_all(conn)
    _run(conn, command.stamp, head())


def upgrade(store: Store) -> tuple[SchemaState, SchemaState]:
    """Bring the database to the current revision, with its data; (before, after)."""
    from alembic import command

    with store.transaction(write=True) as conn:
        _lock(store, conn)
        before = SchemaState(detect(conn), head())
        if before.is_empty:
            _create(conn)
        else:
            if before.revision not in _history():
                raise SchemaError(
                    f"the database is at revision {before.revision}, which this version of "
                    f"penchant does not know (it knows up to {head()}): upgrade penchant"
                )
            if _recorded(conn, set(sa.inspect(conn).get_table_names())) is None:
                _run(conn, command.stamp, str(before.revision))  # made before versioning
            if not before.is_current:
                migrate(conn)
        after = SchemaState(detect(conn), head(), created=before.is_empty)
    return before, after


def ensure(store: Store, *, create: bool = True) -> SchemaState:
    """On first use: create the tables of an empty database; change nothing else."""
    state = current(store)
    if not (state.is_empty and create):
        return state
    with store.transaction(write=True) as conn:
        _lock(store, conn)
        revision = detect(conn)  # another worker may have created them meanwhile
        if revision is not None:
            return SchemaState(revision, head())
        _create(conn)
    return SchemaState(head(), head(), created=True)


class SchemaGate:
    """One process's check of the schema, before its first read or write.

    ``check`` is one attribute test once the schema is current. Until then it
    runs :func:`ensure` at most every ``retry`` seconds (sooner after a
    connection failure), logs each kind of problem once, and reports it to
    :meth:`status` for the health endpoint.
    """

    def __init__(
        self,
        *,
        create: bool = True,
        first_run_hint: Callable[[Store], str] | None = None,
        retry: float = 30.0,
        retry_unreachable: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ready = False
        self._create = create
        self._hint = first_run_hint
        self._retry = retry
        self._retry_unreachable = retry_unreachable
        self._clock = clock
        self._next = 0.0
        self._lock = threading.Lock()
        self._problem: str | None = None
        self._logged: str | None = None  # the kind of problem last logged
        self._revision: str | None = None

    def check(self, store: Store) -> bool:
        """Whether the schema is current (creating it in an empty database)."""
        if self.ready:
            return True
        if self._clock() < self._next:
            return False
        with self._lock:
            if self.ready:
                return True
            if self._clock() < self._next:
                return False
            return self._check(store)

    def require(self, store: Store) -> None:
        """Raise :class:`SchemaNotReady` unless the schema is current."""
        if not self.check(store):
            raise SchemaNotReady(self._problem or "the database schema is not ready")

    def status(self) -> dict[str, object]:
        return {
            "ready": self.ready,
            "revision": self._revision,
            "head": head(),
            "problem": self._problem,
        }

    def _check(self, store: Store) -> bool:
        url = store.display_url
        try:
            state = ensure(store, create=self._create)
        except SchemaError as exc:
            return self._fail("unknown", str(exc), self._retry)
        except StoreUnavailable as exc:
            return self._fail(
                "unreachable",
                f"{exc}; visitors get popular content and events wait in memory "
                f"(retried every {self._retry_unreachable:g} s)",
                self._retry_unreachable,
            )
        self._revision = state.revision
        if state.is_current:
            self.ready = True
            self._problem = None
            if self._logged is not None:
                logger.warning("database %s: schema ready (revision %s)", url, state.revision)
            if state.created:
                logger.warning(self._hint(store) if self._hint else f"created tables in {url}")
            return True
        if state.is_empty:
            return self._fail(
                "empty",
                f"database {url} has no penchant tables and table creation is off "
                f"(create_tables=False): run `penchant db upgrade --database-url '{url}'` "
                "or the host's own migrations",
                self._retry,
            )
        if state.is_behind:
            return self._fail(
                "behind",
                f"database {url} is at schema revision {state.revision}; this penchant "
                f"needs {state.head}: run `penchant db upgrade --database-url '{url}'`. "
                "Until then events are not stored and visitors get popular content",
                self._retry,
            )
        return self._fail(
            "ahead",
            f"database {url} is at schema revision {state.revision}, newer than this "
            f"penchant knows ({state.head}): upgrade penchant",
            self._retry,
        )

    def _fail(self, kind: str, message: str, retry: float) -> bool:
        self._problem = message
        self._next = self._clock() + retry
        if self._logged != kind:
            self._logged = kind
            logger.error("%s", message)
        return False
