"""Popular content from a daily summary, so its cost does not grow with the table.

``penchant_popular_days`` holds, per day and item, how many distinct visitors
interacted with it (no visitor ids). Popular content over a window is the sum of
its days: a visitor counts once per item and day, however often they repeat an
event. :func:`refresh` recomputes today and yesterday (events can arrive late
after an outage) and any earlier day of the window not yet summarized, one
day per transaction, each an indexed range of ``user_interactions``; at 10M
interactions over 30 days that is a fifteenth of what one pass over the window
reads. On PostgreSQL a day that another process is summarizing at the moment
is skipped (advisory try-lock). A visitor noted in ``penchant_unshared`` for a
day (their network was over its identity budget) does not count that day.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import sqlalchemy as sa

from penchant.engine.ranking import Popularity
from penchant.storage.schema import meta, popular_days, unshared, user_interactions
from penchant.storage.store import Store

__all__ = ["read_popularity", "refresh"]

_FINAL_KEY = "popular_days_final"  # the last day summarized for good
_LOCK_KEY = 726150003


def refresh(store: Store, now: datetime, window_days: int) -> int:
    """Summarize the days of the window that need it; returns how many were."""
    today = now.date()
    first = today - timedelta(days=window_days)
    final = _final_day(store)
    if final is None or final < first:
        # nothing summarized yet: begin at the first day with an interaction
        earliest = _earliest_day(store)
        start = first if earliest is None else max(first, earliest)
    else:
        start = final + timedelta(days=1)
    # yesterday and today are always recomputed: late events still land in them
    start = min(start, today - timedelta(days=1))
    done = 0
    day = start
    while day <= today:
        if _summarize(store, day, final_through=day if day < today - timedelta(days=1) else None):
            done += 1
        day += timedelta(days=1)
    with store._begin(write=True) as conn:
        conn.execute(sa.delete(popular_days).where(popular_days.c.day < first))
    return done


def read_popularity(store: Store, since: datetime, *, limit_per_type: int = 500) -> Popularity:
    """Distinct visitors per item and day, summed over the days since ``since``."""
    pd = popular_days
    total = sa.func.sum(pd.c.visitors)
    with store._begin() as conn:
        rows = conn.execute(
            sa.select(pd.c.target_type, pd.c.target_id, total)
            .where(pd.c.day >= since.date())
            .group_by(pd.c.target_type, pd.c.target_id)
        ).all()
    return Popularity.from_rows(rows, limit_per_type=limit_per_type)


def _final_day(store: Store) -> date | None:
    value = store.get_meta(_FINAL_KEY)
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _earliest_day(store: Store) -> date | None:
    with store._begin() as conn:
        value = conn.scalar(sa.select(sa.func.min(user_interactions.c.timestamp)))
    if value is None:
        return None
    if isinstance(value, str):  # SQLite hands back the stored text in an aggregate
        value = datetime.fromisoformat(value)
    return value.date() if isinstance(value, datetime) else None


def _summarize(store: Store, day: date, *, final_through: date | None) -> bool:
    """Recompute one day's rows in one transaction; False if another process is at it."""
    ui = user_interactions
    begin = datetime.combine(day, time())
    end = begin + timedelta(days=1)
    counted = (
        sa.select(
            sa.literal(day, sa.Date()).label("day"),
            ui.c.target_type,
            ui.c.target_id,
            sa.func.count(sa.distinct(ui.c.user_id)).label("visitors"),
        )
        .where(
            ui.c.timestamp >= begin,
            ui.c.timestamp < end,
            ui.c.target_id.is_not(None),
            ~sa.exists().where(unshared.c.user_id == ui.c.user_id, unshared.c.day == day),
        )
        .group_by(ui.c.target_type, ui.c.target_id)
    )
    with store._begin(write=True) as conn:
        if store.dialect == "postgresql":
            key = _LOCK_KEY * 100_000 + day.toordinal() % 100_000
            if not conn.execute(sa.text(f"SELECT pg_try_advisory_xact_lock({key})")).scalar():
                return False
        conn.execute(sa.delete(popular_days).where(popular_days.c.day == day))
        conn.execute(
            popular_days.insert().from_select(
                ["day", "target_type", "target_id", "visitors"], counted
            )
        )
        if final_through is not None:
            statement = store._insert(meta).values(key=_FINAL_KEY, value=final_through.isoformat())
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["key"], set_={"value": statement.excluded.value}
                )
            )
    return True
