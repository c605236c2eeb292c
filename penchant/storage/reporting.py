"""Queries of the effectiveness report: exposures, per-session counts, funnels."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from penchant.engine.ranking import CONTENT_TYPES
from penchant.engine.report import (
    Report,
    SessionCounts,
    build_report,
    clicked_lists,
    funnel_paths,
)
from penchant.storage.schema import exposures, unshared, user_interactions
from penchant.storage.store import SQLiteBatch, Store, sqlite_time

__all__ = [
    "CLOCK_SKEW",
    "Exposure",
    "experiment_report",
    "funnel_sessions",
    "record_exposures",
    "session_counts",
]

#: A click stamped up to this many seconds before the list it is credited to still
#: counts: the page view and the click may be timed by two workers' clocks.
CLOCK_SKEW = 60.0


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


def experiment_report(
    store: Store,
    now: datetime,
    *,
    days: int,
    key: str,
    holdout: float,
    minimum: int = 100,
    window: float = 1800.0,
) -> Report:
    """Personalized against holdout over the ``days`` before ``now``: the one copy of
    the report that ``Penchant.report()``, ``penchant report`` and the dashboard show.

    ``window``: seconds after a list was shown during which a click on one of its
    items counts for it (``attribution_window``).
    """
    since = now - timedelta(days=days)
    sessions = session_counts(store, since, window=window)
    funnels = funnel_paths(funnel_sessions(store, since))
    return build_report(
        sessions, key=key, holdout=holdout, days=days, minimum=minimum, funnels=funnels
    )


def session_counts(store: Store, since: datetime, *, window: float = 1800.0) -> list[SessionCounts]:
    """Interactions, form submissions, recommendation clicks and exposures per session.

    A recommendation click is attributed here, from what the server showed: a click
    whose target was in a list shown to the same visitor (``penchant_exposures``)
    at most ``window`` seconds before it (:data:`CLOCK_SKEW` after it). Both rows
    carry the time they happened, so the writer's delay and a replica's lag change
    nothing; the client's own metadata is never read. The lists clicked count in
    the session that showed them.
    """
    ui, ex = user_interactions, exposures
    is_submit = sa.case((ui.c.interaction_type == "form_submit", 1), else_=0)
    activity = (
        sa.select(
            ui.c.user_id,
            ui.c.session_id,
            sa.func.count().label("interactions"),
            sa.func.sum(is_submit).label("form_submits"),
        )
        .where(ui.c.timestamp >= since)
        .group_by(ui.c.user_id, ui.c.session_id)
    )
    shown = (
        sa.select(ex.c.user_id, ex.c.session_id, sa.func.sum(ex.c.lists).label("exposures"))
        .where(ex.c.timestamp >= since)
        .group_by(ex.c.user_id, ex.c.session_id)
    )
    left_out = sa.select(unshared.c.user_id).where(unshared.c.day >= since.date()).distinct()
    with store.transaction() as conn:
        sessions = conn.execute(activity).all()
        exposed = {(r.user_id, r.session_id): int(r.exposures) for r in conn.execute(shown)}
        clicks = _clicks_after_lists(store, conn, since, window)
        clicked = Counter((user, session) for (user, session, _id), _list in clicked_lists(clicks))
        # visitors past their network's identity budget count in no shared figure,
        # the report included: made-up visitors cannot move it either
        uncounted = set(conn.scalars(left_out))
    return [
        SessionCounts(
            r.user_id,
            r.session_id,
            int(r.interactions),
            int(r.form_submits or 0),
            clicked.get((r.user_id, r.session_id), 0),
            exposed.get((r.user_id, r.session_id), 0),
        )
        for r in sessions
        if r.user_id not in uncounted
    ]


def _clicks_after_lists(
    store: Store, conn: sa.Connection, since: datetime, window: float
) -> Iterator[tuple[tuple[str, str, int], Mapping[str, Collection[int]], str, int, int, float]]:
    """Each list-showing page view since ``since`` paired with each click of the same
    visitor on a catalog item within ``window`` seconds after it."""
    ui, ex = user_interactions, exposures
    later = _seconds_between(store, ui.c.timestamp, ex.c.timestamp)
    pairs = (
        sa.select(
            ex.c.id,
            ex.c.user_id,
            ex.c.session_id,
            ex.c["items"],
            ui.c.target_type,
            ui.c.target_id,
            ui.c.id.label("click_id"),
            later.label("later"),
        )
        .select_from(ex.join(ui, ui.c.user_id == ex.c.user_id))
        .where(
            ex.c.timestamp >= since,
            ui.c.timestamp >= since - timedelta(seconds=CLOCK_SKEW),
            ui.c.interaction_type == "click",
            ui.c.target_type.in_(sorted(set(CONTENT_TYPES.values()))),
            ui.c.target_id.is_not(None),
            later >= -CLOCK_SKEW,
            later <= window,
        )
    )
    lists: dict[int, Mapping[str, Collection[int]]] = {}
    for row in conn.execute(pairs):
        shown = lists.get(row.id)
        if shown is None:
            shown = lists[row.id] = _decode_items(row.items)
        yield (
            (row.user_id, row.session_id, row.id),
            shown,
            row.target_type,
            row.target_id,
            row.click_id,
            float(row.later),
        )


def _seconds_between(store: Store, later: Any, earlier: Any) -> Any:
    if store.dialect == "postgresql":
        return sa.extract("epoch", later - earlier)
    return (sa.func.julianday(later) - sa.func.julianday(earlier)) * 86400.0


def _decode_items(text: str) -> Mapping[str, Collection[int]]:
    """An exposure's ``{content type: [ids shown]}``; anything unreadable shows nothing."""
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {
        str(k): frozenset(i for i in v if isinstance(i, int))
        for k, v in value.items()
        if isinstance(v, list)
    }


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
