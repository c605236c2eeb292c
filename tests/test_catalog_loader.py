"""A catalogue given as a loader (``Penchant(catalog=callable)``) is loaded again
every ``catalog_ttl`` seconds; when a reload fails, the last catalogue that loaded
is kept (and the failure logged), and the next reload that works replaces it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from penchant import Catalog, Category, Item, Penchant
from tests.harness import Timer

TTL = 300.0

SPRING = Catalog(
    [Category(1, "Injectables")],
    [
        Item("procedure", 1, "Botox", (1,)),
        Item("procedure", 2, "Fillers", (1,)),
    ],
)
SUMMER = Catalog(
    [Category(2, "Laser")],
    [Item("procedure", 3, "Laser hair removal", (2,))],
)


class Loader:
    """The site's catalogue loader: returns ``current``, or raises ``failure`` when set."""

    def __init__(self, current: Catalog) -> None:
        self.current = current
        self.failure: Exception | None = None
        self.calls = 0

    def __call__(self) -> Catalog:
        self.calls += 1
        if self.failure is not None:
            raise self.failure
        return self.current


@pytest.fixture
def loader() -> Loader:
    return Loader(SPRING)


@pytest.fixture
def penchant(database_url: str, loader: Loader, timer: Timer) -> Iterator[Penchant]:
    service = Penchant(
        database_url=database_url,
        secret_key="catalog-loader-0123456789abcdef",
        catalog=loader,
        catalog_ttl=TTL,
        timer=timer,
        holdout=0.0,
    )
    yield service
    service.close(timeout=5.0)


def names(penchant: Penchant) -> list[str]:
    return [r.item.name for r in penchant.recommend("procedures", None, limit=6)]


def test_a_failed_reload_keeps_the_catalogue_that_loaded_last(
    penchant: Penchant, loader: Loader, timer: Timer, caplog: pytest.LogCaptureFixture
) -> None:
    assert names(penchant) == ["Botox", "Fillers"]
    assert loader.calls == 1

    loader.failure = ConnectionError("the CMS is down")
    timer.seconds += TTL
    with caplog.at_level(logging.ERROR, logger="personalization"):
        assert names(penchant) == ["Botox", "Fillers"]
    assert loader.calls == 2
    assert "catalog loader failed" in caplog.text
    assert "the CMS is down" in caplog.text
    # Not asked again on every request: the next try is one TTL later.
    assert names(penchant) == ["Botox", "Fillers"]
    assert loader.calls == 2

    loader.failure = None
    loader.current = SUMMER
    timer.seconds += TTL
    assert names(penchant) == ["Laser hair removal"]
    assert loader.calls == 3
