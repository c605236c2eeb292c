"""Queries of the effectiveness report: exposures, per-session counts, funnels."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from penchant.engine.report import SessionCounts
from penchant.storage.schema import exposures, user_interactions
from penchant.storage.store import SQLiteBatch, Store, sqlite_time

__all__ = ["Exposure", "funnel_sessions", "record_exposures", "session_counts"]

# extra_data is JSON written with compact separators by the Store
_REC_CLICK = '%"source":"rec"%'


@dataclass(frozen=True, slots=True)
class Exposure:
    """One list of recommendations shown on one page view."""

    user_id: str
    session_id: str
    page_view_id: str
    variant: str
    content_type: str
    items: tuple[int, ...]  # the ids shown, in order; their type is the list's
    timestamp: datetime


def record_exposures(store: Store, batch: Sequence[Exposure]) -> int:
    """Insert exposures, one row per page view: its lists are merged, in the order shown.

    A list already stored for the same page view is not stored again (the rows
    of one page view written in two batches differ by their lists).
    """
    if not batch:
        return 0
    # page view -> its lists by content type, in the order shown; a repeat keeps the first
    merged: dict[tuple[str, str], dict[str, Exposure]] = {}
    for e in batch:
        merged.setdefault((e.user_id, e.page_view_id), {}).setdefault(e.content_type, e)
    rows = []
    for shown in merged.values():
        first = next(iter(shown.values()))
        rows.append(
            (
                first.user_id,
                first.session_id,
                first.page_view_id,
                first.variant,
                ",".join(sorted(shown)),
                len(shown),
                _encode_items({content_type: e.items for content_type, e in shown.items()}),
                first.timestamp,
            )
        )
    with store._begin(write=True) as conn:
        if store.dialect == "sqlite":
            # one statement for the batch: exposures come with every recommending page view
            ready = [(*r[:-1], sqlite_time(r[-1])) for r in rows]
            inserted = _SQLITE_EXPOSURES.insert(conn, ready, use_json=store._sqlite_json)
        else:
            statement = (
                store._insert(exposures)
                .on_conflict_do_nothing(index_elements=["user_id", "page_view_id", "content_type"])
                .returning(exposures.c.id)
            )
            params = [dict(zip(_COLUMNS, r, strict=True)) for r in rows]
            inserted = len(conn.execute(statement, params).all())
    return max(0, inserted or 0)


_COLUMNS = (
    "user_id",
    "session_id",
    "page_view_id",
    "variant",
    "content_type",
    "lists",
    "items",
    "timestamp",
)
_SQLITE_EXPOSURES = SQLiteBatch(
    exposures.name, _COLUMNS, "ON CONFLICT (user_id, page_view_id, content_type) DO NOTHING"
)
_encode_items = json.JSONEncoder(separators=(",", ":")).encode


def session_counts(store: Store, since: datetime) -> list[SessionCounts]:
    """Interactions, form submissions, recommendation clicks and exposures per session."""
    ui, ex = user_interactions, exposures
    is_submit = sa.case((ui.c.interaction_type == "form_submit", 1), else_=0)
    is_rec_click = sa.case(
        (sa.and_(ui.c.interaction_type == "click", ui.c.extra_data.like(_REC_CLICK)), 1),
        else_=0,
    )
    activity = (
        sa.select(
            ui.c.user_id,
            ui.c.session_id,
            sa.func.count().label("interactions"),
            sa.func.sum(is_submit).label("form_submits"),
            sa.func.sum(is_rec_click).label("rec_clicks"),
        )
        .where(ui.c.timestamp >= since)
        .group_by(ui.c.user_id, ui.c.session_id)
    )
    shown = (
        sa.select(ex.c.user_id, ex.c.session_id, sa.func.sum(ex.c.lists).label("exposures"))
        .where(ex.c.timestamp >= since)
        .group_by(ex.c.user_id, ex.c.session_id)
    )
    with store._begin() as conn:
        sessions = conn.execute(activity).all()
        exposed = {(r.user_id, r.session_id): int(r.exposures) for r in conn.execute(shown)}
    return [
        SessionCounts(
            r.user_id,
            r.session_id,
            int(r.interactions),
            int(r.form_submits or 0),
            int(r.rec_clicks or 0),
            exposed.get((r.user_id, r.session_id), 0),
        )
        for r in sessions
    ]


def funnel_sessions(store: Store, since: datetime, *, limit: int = 5000) -> list[list[str]]:
    """Steps (``"view:procedure"``) of the latest sessions that reached a form submission."""
    ui = user_interactions
    converting = (
        sa.select(ui.c.session_id, sa.func.max(ui.c.timestamp).label("last"))
        .where(ui.c.timestamp >= since, ui.c.interaction_type == "form_submit")
        .group_by(ui.c.session_id)
        .order_by(sa.desc("last"))
        .limit(limit)
        .subquery()
    )
    steps = (
        sa.select(ui.c.session_id, ui.c.interaction_type, ui.c.target_type)
        .join(converting, converting.c.session_id == ui.c.session_id)
        .where(ui.c.timestamp >= since)
        .order_by(ui.c.session_id, ui.c.timestamp, ui.c.id)
    )
    out: dict[str, list[str]] = {}
    with store._begin() as conn:
        for session, kind, target in conn.execute(steps):
            out.setdefault(session, []).append(f"{kind}:{target}")
    return list(out.values())
