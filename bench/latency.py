"""Recommendation latency on PostgreSQL as stored data grows from 10k to 10M interactions.

    python -m bench.latency [--quick] [--json]

Two fresh databases, filled in SQL with ``generate_series`` (indexes built after
the rows, then ``ANALYZE``): a small one (10k interactions) and a large one
(10M interactions of 100k visitors; ``--quick``: 1M of 10k). Every visitor has
100 interactions over 60 days, about five category affinities, and the catalog's
items have 50 co-viewed items each. On each, a returning visitor's page asks for
categories (6) + procedures (6) + doctors (9) through ``Penchant.recommend``:

- cold: a visitor this process has not read yet (their profile and the
  co-viewed items of their history come from the database; popular content is
  already cached, as it is on a live site after the first request);
- warm: the same visitor again (profile cache, within its TTL).

It also times the refresh of popular content (the daily summary of distinct
visitors per item): the first, which summarizes every day of the window, and a
later one (today and yesterday), which runs once per ``popular_ttl`` per process
on a thread of its own. Medians over many visitors; the ratio large /
small is the growth. With ``--json`` the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

from bench._common import fresh_pg_database, machine, synthetic_catalog

__all__ = ["main"]

PER_VISITOR = 100
DAYS = 60
SAMPLES = 300


def fill(database_url: str, interactions: int) -> dict[str, float]:
    """Rows in SQL, indexes after, ANALYZE; returns seconds per step."""
    import sqlalchemy as sa

    from penchant.storage.schema import user_interactions
    from penchant.storage.store import Store

    store = Store(database_url)
    store.create_all()
    store.dispose()
    visitors = max(1, interactions // PER_VISITOR)
    engine = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    took: dict[str, float] = {}
    with engine.connect() as conn:
        start = time.perf_counter()
        for index in user_interactions.indexes:
            conn.execute(sa.text(f"DROP INDEX IF EXISTS {index.name}"))
        conn.execute(sa.text("SET synchronous_commit = off"))
        # Visitor v's id is md5(v); targets cycle over the synthetic catalog's items.
        conn.execute(
            sa.text(
                """
                INSERT INTO user_interactions (user_id, session_id, interaction_type,
                    target_type, target_id, extra_data, timestamp, event_id)
                SELECT md5((i % :visitors)::text),
                       md5(((i % :visitors) * 1000 + i / (:visitors * 10))::text),
                       (ARRAY['view','view','click','view'])[1 + i % 4],
                       (ARRAY['procedure','doctor','procedure','page'])[1 + (i / 7) % 4],
                       CASE WHEN (i / 7) % 4 = 3 THEN NULL ELSE 1 + (i * 7919) % 200 END,
                       NULL,
                       now() at time zone 'utc'
                           - make_interval(secs => (i::float8 / :n) * :days * 86400),
                       md5(i::text || 'e')
                FROM generate_series(0::bigint, :n - 1) AS i
                """
            ),
            {"visitors": visitors, "n": interactions, "days": DAYS},
        )
        took["insert_s"] = time.perf_counter() - start
        start = time.perf_counter()
        conn.execute(sa.text("SET maintenance_work_mem = '256MB'"))
        for index in user_interactions.indexes:
            index.create(conn)
        took["index_s"] = time.perf_counter() - start
        start = time.perf_counter()
        conn.execute(
            sa.text(
                """
                INSERT INTO user_category_affinity (user_id, category_id, affinity_score,
                    raw_score, last_updated)
                SELECT md5(v::text), 1 + (v + k * 5) % 12, 0.1 + ((v + k) % 9) / 10.0,
                       0.1 + ((v + k) % 9) / 10.0, now() at time zone 'utc'
                FROM generate_series(0, :visitors - 1) AS v, generate_series(0, 4) AS k
                """
            ),
            {"visitors": visitors},
        )
        conn.execute(
            sa.text(
                """
                INSERT INTO penchant_item_neighbours (item_type, item_id, neighbour_type,
                    neighbour_id, score, last_updated)
                SELECT t, i, (ARRAY['procedure','doctor'])[1 + j % 2], 1 + (i * 31 + j * 17) % 200,
                       1.0 + j, now() at time zone 'utc'
                FROM unnest(ARRAY['procedure','doctor']) AS t, generate_series(1, 200) AS i,
                     generate_series(0, 49) AS j
                ON CONFLICT DO NOTHING
                """
            )
        )
        conn.execute(sa.text("ANALYZE"))
        took["rest_s"] = time.perf_counter() - start
    engine.dispose()
    return took


def _page(penchant: Any, user_id: str) -> float:
    """Seconds for one page's three lists."""
    start = time.perf_counter()
    for content_type in ("categories", "procedures", "doctors"):
        if not penchant.recommend(content_type, user_id):
            raise RuntimeError(f"no {content_type} for {user_id}")
    return time.perf_counter() - start


def measure(database_url: str, interactions: int, samples: int) -> dict[str, float]:
    import hashlib

    from penchant import Penchant

    visitors = max(1, interactions // PER_VISITOR)
    penchant = Penchant(
        database_url=database_url,
        secret_key="bench-0123456789abcdef",
        holdout=0.0,
        catalog=synthetic_catalog(),
    )
    try:
        # popular content: the first refresh summarizes every day of the window, the
        # next ones today and yesterday only (what a running site pays per popular_ttl)
        start = time.perf_counter()
        if not penchant.refresh_popularity(timeout=1800):
            raise RuntimeError("popular content was not summarized")
        popular_first = time.perf_counter() - start
        start = time.perf_counter()
        penchant.refresh_popularity(timeout=600)
        popular_refresh = time.perf_counter() - start
        if not penchant.popularity().counts:
            raise RuntimeError("no popular content: the summary is empty")
        ids = [hashlib.md5(str(v).encode()).hexdigest() for v in range(visitors)]
        _page(penchant, ids[-1])  # connections and statements warmed on someone else
        picks = [ids[(i * 7919) % len(ids)] for i in range(min(samples, len(ids) - 1))]
        cold = [_page(penchant, user_id) for user_id in picks]
        warm = [_page(penchant, user_id) for user_id in picks for _ in range(3)]
        profile = penchant.profile(picks[0])
        if not profile.history or not profile.affinities:
            raise RuntimeError("the visitor has no history: the data is not what it should be")
    finally:
        penchant.close()
    return {
        "cold_ms": statistics.median(cold) * 1e3,
        "warm_ms": statistics.median(warm) * 1e3,
        "cold_p90_ms": statistics.quantiles(cold, n=10)[-1] * 1e3,
        "warm_p90_ms": statistics.quantiles(warm, n=10)[-1] * 1e3,
        "popular_refresh_ms": popular_refresh * 1e3,
        "popular_first_refresh_ms": popular_first * 1e3,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1M interactions (under a minute)")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args(argv)
    small, large = 10_000, (1_000_000 if args.quick else 10_000_000)
    results: dict[int, dict[str, float]] = {}
    fills: dict[int, dict[str, float]] = {}
    for n in (small, large):
        with fresh_pg_database("penchant_bench_latency") as url:
            if not args.json:
                print(f"filling {n} interactions ...", flush=True)
            fills[n] = fill(url, n)
            results[n] = measure(url, n, SAMPLES)
    s, g = results[small], results[large]
    summary: dict[str, Any] = {
        "large_interactions": large,
        "large_visitors": large // PER_VISITOR,
        "small_interactions": small,
        **{f"small_{k}": round(v, 3) for k, v in s.items()},
        **{f"large_{k}": round(v, 3) for k, v in g.items()},
        "cold_ratio_large_vs_small": round(g["cold_ms"] / s["cold_ms"], 3),
        "warm_ratio_large_vs_small": round(g["warm_ms"] / s["warm_ms"], 3),
        "fill_s": round(sum(fills[large].values()), 1),
        "samples": SAMPLES,
    }
    summary["goals_met"] = {
        "warm_under_1ms": g["warm_ms"] < 1.0,
        "cold_under_5ms": g["cold_ms"] < 5.0,
        "ratio_under_1.5": max(
            summary["cold_ratio_large_vs_small"], summary["warm_ratio_large_vs_small"]
        )
        < 1.5,
    }
    summary.update(machine())
    if args.json:
        print(json.dumps(summary))
        return 0
    print(
        f"categories + procedures + doctors for a returning visitor, median of {SAMPLES} visitors"
    )
    print(
        f"{'interactions':>13s} {'warm ms':>8s} {'p90':>6s} {'cold ms':>8s} {'p90':>6s} "
        f"{'popular refresh ms (first)':>27s}"
    )
    for n in (small, large):
        r = results[n]
        print(
            f"{n:13d} {r['warm_ms']:8.3f} {r['warm_p90_ms']:6.2f} {r['cold_ms']:8.3f} "
            f"{r['cold_p90_ms']:6.2f} {r['popular_refresh_ms']:19.1f} "
            f"({r['popular_first_refresh_ms']:.0f})"
        )
    print(
        f"ratio {large} / {small}: warm {summary['warm_ratio_large_vs_small']}, "
        f"cold {summary['cold_ratio_large_vs_small']} (goal < 1.5)"
    )
    print(f"goals (warm < 1 ms, cold < 5 ms, ratio < 1.5): {summary['goals_met']}")
    print(f"filling {large} rows took {summary['fill_s']} s")
    m = machine()
    print(f"{m['date']}, {m['cpus']} CPUs, Python {m['python']}, PostgreSQL {m['postgresql']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
