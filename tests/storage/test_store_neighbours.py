"""Co-occurrence upserts in bulk: the same sums as adding each increment on its own."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from penchant.storage.schema import item_neighbours
from penchant.storage.store import ItemKey, Store, pg_number_array, pg_text_array


def test_many_increments_over_many_calls_add_up_exactly(store: Store, t0: datetime) -> None:
    rng = random.Random(3)
    items: list[ItemKey] = [("procedure", i) for i in range(40)] + [("doctor", i) for i in range(9)]
    expected: dict[tuple[ItemKey, ItemKey], float] = {}
    last: dict[tuple[ItemKey, ItemKey], datetime] = {}
    for call in range(6):
        at = t0 + timedelta(minutes=call, microseconds=call * 7)
        increments = {
            (rng.choice(items), rng.choice(items)): rng.choice([1.0, 0.5, 1e-9, 3.25, -0.125])
            for _ in range(800)
        }
        store.add_neighbours(increments, at)
        for pair, value in sorted(increments.items()):
            if pair[0] != pair[1]:
                expected[pair] = expected.get(pair, 0.0) + value  # the same additions, in order
                last[pair] = at
    n = item_neighbours
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                n.c.item_type,
                n.c.item_id,
                n.c.neighbour_type,
                n.c.neighbour_id,
                n.c.score,
                n.c.last_updated,
            )
        ).all()
    stored = {((r[0], r[1]), (r[2], r[3])): (r[4], r[5]) for r in rows}
    assert stored == {pair: (expected[pair], last[pair]) for pair in expected}


def test_last_updated_is_stored_like_any_other_timestamp(store: Store, t0: datetime) -> None:
    at = t0 + timedelta(microseconds=5)
    store.add_neighbours({(("procedure", 1), ("procedure", 2)): 1.0}, at)
    n = item_neighbours
    with store.engine.connect() as conn:
        # compared by the database: on SQLite a text comparison, so the format must match
        matched = conn.scalar(sa.select(sa.func.count()).where(n.c.last_updated == at))
        older = conn.scalar(
            sa.select(sa.func.count()).where(n.c.last_updated < at + timedelta(microseconds=1))
        )
    assert (matched, older) == (1, 1)


def test_nothing_to_add_touches_nothing(store: Store, t0: datetime) -> None:
    a = ("procedure", 1)
    store.add_neighbours({(a, a): 1.0, (a, ("procedure", 2)): float("inf")}, t0)
    store.add_neighbours({}, t0)
    assert store.neighbours([a])[a] == []


@pytest.mark.postgresql_only
def test_array_literals_round_trip_exactly(store: Store) -> None:
    assert store.dialect == "postgresql"
    texts = ['a\\b"c', "procedure", "", " spaced ", "NULL", "{x,y}", "ünï 😀", "it's"]
    floats = [math.inf, -math.inf, 1e-09, 0.1, 1e16, 5e-324, 1.7976931348623157e308, -0.0, 2 / 3]
    ints = [1, -5, 2**31 - 1]
    with store.engine.connect() as conn:
        row = conn.exec_driver_sql(
            "SELECT %(t)s::varchar[], %(f)s::float8[], %(i)s::integer[], (%(n)s::float8[])[1]",
            {
                "t": pg_text_array(texts),
                "f": pg_number_array(floats),
                "i": pg_number_array(ints),
                "n": pg_number_array([math.nan]),
            },
        ).one()
    assert row[0] == texts
    assert row[1] == floats
    assert [math.copysign(1, f) for f in row[1]] == [math.copysign(1, f) for f in floats]
    assert row[2] == ints
    assert math.isnan(row[3])
