"""Exposures: one row per page view and batch, its lists counted, a list stored once."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from penchant.storage.reporting import Exposure, record_exposures, session_counts
from penchant.storage.schema import exposures, user_interactions
from penchant.storage.store import Store

NOW = datetime(2026, 11, 30, 12, 0, 0, 123456)
USER = "a" * 32


def _exposure(page_view: str, content_type: str, ids: tuple[int, ...]) -> Exposure:
    return Exposure(USER, "s1", page_view, "personalized", content_type, ids, NOW)


@pytest.mark.parametrize("sqlite_path", ["one statement", "executemany"])
def test_a_page_views_lists_make_one_row_and_count_each_list(
    database_url: str, sqlite_path: str
) -> None:
    store = Store(database_url, fast_batches=sqlite_path != "executemany")
    store.create_all()
    shown = [
        _exposure("pv1", "procedures", (3, 1)),
        _exposure("pv1", "categories", (2,)),
        _exposure("pv1", "procedures", (3, 1)),  # the same list again: once
        _exposure("pv2", "doctors", (7,)),
    ]
    assert record_exposures(store, shown) == 2
    # a later batch of the same page view: a new list is kept, a list already stored is not
    record_exposures(store, [_exposure("pv1", "packages", (9,))])
    record_exposures(store, [_exposure("pv2", "doctors", (7,))])
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(exposures).order_by(exposures.c.id)).all()
        conn.execute(
            sa.insert(user_interactions),
            [
                {
                    "user_id": USER,
                    "session_id": "s1",
                    "interaction_type": "view",
                    "target_type": "page",
                    "timestamp": NOW,
                    "event_id": "e1",
                }
            ],
        )
        conn.commit()
    by_view = {(r.page_view_id, r.content_type): r for r in rows}
    assert set(by_view) == {
        ("pv1", "categories,procedures"),
        ("pv2", "doctors"),
        ("pv1", "packages"),
    }
    first = by_view[("pv1", "categories,procedures")]
    assert first.lists == 2 and first.timestamp == NOW
    # each list's ids in the order shown (position = index + 1)
    assert json.loads(first.items) == {"procedures": [3, 1], "categories": [2]}
    # the report counts lists, not rows
    [counts] = session_counts(store, NOW - timedelta(days=1))
    assert counts.exposures == 4
    # the visitor's export carries what they were shown; another visitor's export does not
    exported = store.export(USER)["exposures"]
    assert isinstance(exported, list) and len(exported) == 3
    assert {(e["page_view_id"], tuple(e["lists"])) for e in exported} == {
        ("pv1", ("categories", "procedures")),
        ("pv2", ("doctors",)),
        ("pv1", ("packages",)),
    }
    assert {"procedures": [3, 1], "categories": [2]} in [e["items"] for e in exported]
    assert store.export("b" * 32)["exposures"] == []
    store.dispose()
