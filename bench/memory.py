"""Resident memory while penchant tracks a million page views: it must stay flat.

    python -m bench.memory [--quick] [--hostile] [--json] [--database-url URL]

Page views are driven through the ASGI adapter in this process (no network),
from 200,000 distinct visitors (more than every cache holds, so the caches
must evict), each view recorded through the bounded queue by the background
writer into a fresh SQLite file (or ``--database-url``). Every 50th view also
renders a visitor's recommendations, so the profile cache and read path take
part. With ``--postgres`` the database is a fresh one on the PostgreSQL server:
SQLite reads through a memory map, so on SQLite the pages of the growing
database file count as resident. RSS is read from ``/proc/self/status`` after
10k requests and at the end (``--quick``: 200k requests); the goal is growth
under 20 MB. With ``--hostile`` every request carries about 15 KB of headers
made for it (a distinct 8 KB User-Agent, 3 KB Accept-Language and 4 KB path,
the largest a common server lets through): per-process caches keep only
bounded keys, so the goal is the same 20 MB. Besides the total
(VmRSS), the anonymous part (RssAnon: the heap, where caches and queues live)
is shown apart from mapped files (RssFile: SQLite reads through a memory map,
so its pages of the growing database file count as resident too). With ``--json``
the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import tempfile
import time
from typing import Any

from bench._common import fresh_pg_database, machine, synthetic_catalog, visitor_agent

__all__ = ["main"]

VISITORS = 200_000
RENDER_EVERY = 50
PAGE = b"<!doctype html><html><head><title>Radiant</title></head><body>" + b"x" * 2000 + b"</body>"


def rss_mb(kind: str = "VmRSS") -> float:
    """Resident MB from /proc/self/status: VmRSS, or RssAnon (heap) / RssFile (mapped files)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(kind + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


async def host(scope: Any, receive: Any, send: Any) -> None:
    """A bare ASGI page; every 50th visit renders recommendations like a real view would."""
    if scope.get("penchant.render"):
        p = scope["penchant.personalization"]
        p.categories()
        p.procedures()
        p.doctors()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/html; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": PAGE})


# --hostile: every request's headers are its own, and large.
HOSTILE_AGENT, HOSTILE_LANGUAGE, HOSTILE_PATH = 8000, 3000, 4000


def _hostile_scope(i: int) -> dict[str, Any]:
    scope = _scope(i)
    tag = f"{i:08d}"
    agent = f"Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0 {tag} ".ljust(HOSTILE_AGENT, "a")
    language = f"en-{tag},".ljust(HOSTILE_LANGUAGE, "x")
    scope["path"] = f"/guide/{tag}/".ljust(HOSTILE_PATH, "p")
    scope["headers"] = [
        (b"host", b"127.0.0.1"),
        (b"user-agent", agent.encode()),
        (b"accept-language", language.encode()),
        (b"accept", b"text/html"),
    ]
    return scope


def _scope(i: int) -> dict[str, Any]:
    visitor = (i * 7919) % VISITORS
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": f"/procedures/{1 + visitor % 200}",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"user-agent", visitor_agent(visitor).encode()),
            (b"accept-language", b"en"),
            (b"accept", b"text/html"),
        ],
        "client": (f"10.{visitor >> 16 & 255}.{visitor >> 8 & 255}.{visitor & 255}", 50000),
        "server": ("127.0.0.1", 8000),
        "penchant.render": i % RENDER_EVERY == 0,
    }


async def _drive(app: Any, start: int, stop: int, hostile: bool = False) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    make = _hostile_scope if hostile else _scope
    for i in range(start, stop):
        await app(make(i), receive, send)


def run(database_url: str, total: int, hostile: bool = False) -> dict[str, Any]:
    from penchant import Penchant

    penchant = Penchant(
        database_url=database_url,
        secret_key="bench-0123456789abcdef",
        holdout=0.0,
        catalog=synthetic_catalog(),
        url_patterns=(("/procedures/{id}", "procedure"),),
    )
    penchant.init_db()
    app = penchant.asgi(host)
    first = 10_000
    try:
        start = time.perf_counter()
        asyncio.run(_drive(app, 0, first, hostile))
        gc.collect()
        at_first, anon_first = rss_mb(), rss_mb("RssAnon")
        checkpoints = [(first, round(at_first, 1), round(anon_first, 1))]
        step = max(first, total // 5)
        done = first
        while done < total:
            upto = min(total, done + step)
            asyncio.run(_drive(app, done, upto, hostile))
            done = upto
            gc.collect()
            checkpoints.append((done, round(rss_mb(), 1), round(rss_mb("RssAnon"), 1)))
        elapsed = time.perf_counter() - start
        at_end, anon_end = rss_mb(), rss_mb("RssAnon")
        health = penchant.health()
    finally:
        penchant.close(timeout=60.0)
    return {
        "requests": total,
        "hostile": hostile,
        "visitors": VISITORS,
        "rss_after_10k_mb": round(at_first, 1),
        "rss_at_end_mb": round(at_end, 1),
        "growth_mb": round(at_end - at_first, 1),
        "anon_after_10k_mb": round(anon_first, 1),
        "anon_at_end_mb": round(anon_end, 1),
        "anon_growth_mb": round(anon_end - anon_first, 1),
        "goal_met": at_end - at_first < 20.0,
        "checkpoints": checkpoints,
        "seconds": round(elapsed, 1),
        "stored": health.get("stored"),
        "dropped": {k: v for k, v in dict(health.get("dropped", {})).items() if v},  # type: ignore[call-overload]
        "cached_profiles": health.get("cached_profiles"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="200k requests (under a minute)")
    parser.add_argument(
        "--hostile", action="store_true", help="about 15 KB of distinct headers per request"
    )
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="a fresh database on PENCHANT_BENCH_PG (RSS without SQLite's memory-mapped file)",
    )
    args = parser.parse_args(argv)
    total = 200_000 if args.quick else 1_000_000
    with tempfile.TemporaryDirectory(prefix="penchant-memory-") as tmp:
        if args.postgres:
            with fresh_pg_database("penchant_bench_memory") as url:
                summary = run(url, total, args.hostile)
        else:
            url = args.database_url or f"sqlite:///{tmp}/memory.db"
            summary = run(url, total, args.hostile)
    summary["database"] = url.split(":", 1)[0]
    summary.update(machine(postgres=False))
    if args.json:
        print(json.dumps(summary))
        return 0
    kind = "hostile (about 15 KB of distinct headers each) " if args.hostile else ""
    print(
        f"{total} {kind}page views from {VISITORS} visitors in {summary['seconds']} s, in process"
    )
    for n, mb, anon in summary["checkpoints"]:
        print(f"  after {n:9d} requests: RSS {mb:7.1f} MB, of which heap (RssAnon) {anon:7.1f} MB")
    print(
        f"growth after the first 10k: {summary['growth_mb']} MB, "
        f"heap {summary['anon_growth_mb']} MB (goal < 20 MB); "
        f"stored {summary['stored']}, dropped {summary['dropped']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
