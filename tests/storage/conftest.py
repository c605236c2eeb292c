"""Fixtures for the storage tests: a fresh Store on each database, events, a catalog.

Test modules are imported in importlib mode and cannot import each other, so the
helpers below reach them as fixtures.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

import pytest

from penchant.engine.affinity import AffinityDelta, fold
from penchant.engine.catalog import Catalog, Category, Item
from penchant.engine.events import Interaction
from penchant.storage.store import Store

T0 = datetime(2024, 3, 1, 12, 0, 0)
WEIGHTS = {"view": 0.1, "search": 0.2, "click": 0.3, "form_submit": 0.5}
RATE = 0.9

CATALOG = Catalog(
    [Category(1, "Injectables"), Category(2, "Laser"), Category(3, "Surgery")],
    [
        Item("procedure", 10, "Botox", (1,)),
        Item("procedure", 11, "Fillers", (1,)),
        Item("procedure", 20, "Laser hair removal", (2,)),
        Item("procedure", 30, "Rhinoplasty", (3,)),
        Item("doctor", 100, "Dr Smith", procedure_ids=(10, 20)),
    ],
)

_counter = itertools.count()


def visitor(n: int) -> str:
    return f"{n:032x}"


def make_event(
    user_id: str,
    target_id: int | None = 10,
    *,
    at: datetime = T0,
    kind: str = "view",
    target_type: str = "procedure",
    session_id: str = "s" * 64,
    extra_data: dict[str, object] | None = None,
    event_id: str | None = None,
) -> Interaction:
    return Interaction(
        user_id=user_id,
        session_id=session_id,
        interaction_type=kind,
        target_type=target_type,
        target_id=target_id,
        timestamp=at,
        event_id=event_id or uuid.uuid4().hex,
        extra_data=extra_data,
    )


def interaction_row(event: Interaction) -> dict[str, object]:
    """The ``user_interactions`` row of ``event`` as SQLAlchemy's own insert takes it:
    extra data as compact ASCII JSON text."""
    extra = event.extra_data
    return {
        "user_id": event.user_id,
        "session_id": event.session_id,
        "interaction_type": event.interaction_type,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "extra_data": None if extra is None else json.dumps(extra, separators=(",", ":")),
        "timestamp": event.timestamp,
        "event_id": event.event_id,
    }


def deltas_for(batch: Sequence[Interaction]) -> list[AffinityDelta]:
    return fold(batch, CATALOG, WEIGHTS, RATE)


DeltasFor = Callable[[Sequence[Interaction]], list[AffinityDelta]]


@pytest.fixture
def ev() -> Callable[..., Interaction]:
    """make_event(user_id, target_id=10, *, at=T0, kind="view", ...) -> Interaction"""
    return make_event


@pytest.fixture
def row_of() -> Callable[[Interaction], dict[str, object]]:
    """interaction_row(event) -> the row SQLAlchemy's insert would store for it."""
    return interaction_row


@pytest.fixture
def deltas() -> DeltasFor:
    """fold() over the test catalog with WEIGHTS and RATE."""
    return deltas_for


@pytest.fixture
def t0() -> datetime:
    return T0


@pytest.fixture
def catalog() -> Catalog:
    return CATALOG


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A Store on a fresh, empty database (SQLite and PostgreSQL), tables created."""
    created = Store(database_url)
    created.create_all()
    try:
        yield created
    finally:
        created.dispose()


@pytest.fixture
def rate() -> float:
    return RATE


@pytest.fixture
def weights() -> dict[str, float]:
    return dict(WEIGHTS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the combinations that cannot exist, rather than reporting them skipped:
    PostgreSQL with SQLite's executemany path, and SQLite for a test marked
    ``postgresql_only``."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        on_sqlite = params.get("database_url") == "sqlite"
        impossible = (on_sqlite and item.get_closest_marker("postgresql_only")) or (
            params.get("database_url") == "postgresql" and "executemany" in params.values()
        )
        (dropped if impossible else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
