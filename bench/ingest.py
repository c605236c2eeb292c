"""How fast events get into PostgreSQL: the beacon path end to end, and the writer against COPY.

    python -m bench.ingest [--quick] [--json]

1. Beacon path. One uvicorn worker on 127.0.0.1 serves penchant's beacon
   endpoint; wrk posts batched beacons (20 events each, 1,000 visitors, each
   with a valid page token) for a fixed time. Events per second are counted in
   the database: rows stored during the run, divided by the time from the start
   of the load until the last of them is committed (so a writer that falls
   behind is not flattered). Rate limits are off: all the load comes from one
   loopback address.
2. Insert path. The same rows (generated interactions of 1,000 visitors)
   written three ways into emptied tables, several rounds, alternating order:
   a raw ``COPY`` of the rows; ``Store.record`` in the writer's batches with no
   affinity work (the insert path alone); and the whole ``Writer`` (interactions,
   affinity upserts, co-viewed items), submitted and flushed.

Each database is created for the run and dropped afterwards. With ``--json``
the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench._common import (
    free_port,
    fresh_pg_database,
    machine,
    run_wrk,
    synthetic_catalog,
    visitor_agent,
    wait_for_port,
)
from penchant.storage.store import INTERACTION_COLUMNS

__all__ = ["main"]

SECRET = "bench-secret-0123456789abcdef"
VISITORS = 1000
EVENTS_PER_BEACON = 20
BEACON = "/personalization/track-interaction"
COLUMNS = INTERACTION_COLUMNS


def _settings(database_url: str) -> dict[str, Any]:
    return {
        "database_url": database_url,
        "secret_key": SECRET,
        "holdout": 0.0,
        "queue_size": 100_000,
        # All load comes from 127.0.0.1: the per-IP and per-visitor limits would refuse it.
        "visitor_rate_limit": 0,
        "ip_rate_limit": 0,
    }


# -------------------------------------------------------------- beacon path
def http_parser() -> str:
    """uvicorn's faster parser when it is installed, else its pure-Python one."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


def serve(port: int, database_url: str, stats_path: str) -> None:
    """Server process: penchant in front of an app that only says 404."""
    import uvicorn

    from penchant import Penchant

    async def host(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    penchant = Penchant(catalog=synthetic_catalog(), **_settings(database_url))
    penchant.init_db()
    uvicorn.run(
        penchant.asgi(host),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        http=http_parser(),
        loop="asyncio",
        lifespan="on",
    )
    penchant.flush(timeout=60.0)
    Path(stats_path).write_text(json.dumps(penchant.health()))
    penchant.close()


def _visitor_tokens(database_url: str) -> list[tuple[str, str]]:
    """(User-Agent, page token) per visitor, as the server will derive them from 127.0.0.1."""
    from penchant import Penchant
    from penchant.middleware.core import Core

    penchant = Penchant(**_settings(database_url))
    core = Core(penchant)
    out = []
    for i in range(VISITORS):
        ua = visitor_agent(i)
        user_id = core._compute_fingerprint(ua, "127.0.0.1", "en")
        out.append((ua, core.signers().page_token(user_id)))
    return out


WRK_BEACON = """
local visitors = {%s}
local tokens = {%s}
local prefix = "%s"
local n = 0
local kinds = {"view", "click", "view", "view"}
local targets = {"procedure", "doctor", "procedure", "category"}
request = function()
  n = n + 1
  local v = (n %% #visitors) + 1
  local events = {}
  for i = 1, %d do
    local k = ((n + i) %% 4) + 1
    events[i] = string.format(
      '{"interaction_type":"%%s","target_type":"%%s","target_id":%%d,"event_id":"%%s%%024d","path":"/"}',
      kinds[k], targets[k], ((n * 7 + i) %% 12) + 1, prefix, n * 100 + i)
  end
  local body = '{"token":"' .. tokens[v] .. '","events":[' .. table.concat(events, ",") .. ']}'
  return wrk.format("POST", "%s", {
    ["User-Agent"] = visitors[v], ["Accept-Language"] = "en",
    ["Content-Type"] = "text/plain;charset=UTF-8", ["Sec-Fetch-Site"] = "same-origin"}, body)
end
"""


def _wrk_script(path: Path, visitors: list[tuple[str, str]]) -> None:
    uas = ",".join(json.dumps(ua) for ua, _ in visitors)
    tokens = ",".join(json.dumps(t) for _, t in visitors)
    prefix = uuid.uuid4().hex[:8]  # a fresh event id space per run: no replays
    path.write_text(WRK_BEACON % (uas, tokens, prefix, EVENTS_PER_BEACON, BEACON))


def _wrk(port: int, seconds: float, connections: int, script: Path) -> dict[str, float]:
    rps, non_2xx = run_wrk(
        port, BEACON, seconds=seconds, connections=connections, script=str(script)
    )
    return {"rps": rps, "non_2xx": non_2xx}


def _count(engine: Any) -> int:
    import sqlalchemy as sa

    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM user_interactions")).scalar_one())


def _settled(engine: Any, timeout: float) -> tuple[int, float]:
    """(rows, when the last of them was committed): polls until the count stops moving."""
    deadline = time.monotonic() + timeout
    last, last_change = _count(engine), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = _count(engine)
        if now != last:
            last, last_change = now, time.monotonic()
        elif time.monotonic() - last_change > 2.5:  # more than two flush intervals quiet
            break
    return last, last_change


def beacon_path(database_url: str, *, seconds: float, connections: int) -> dict[str, Any]:
    import sqlalchemy as sa

    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed for the beacon path: apt-get install wrk")
    port = free_port()
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="penchant-ingest-") as tmp:
        stats_path = Path(tmp) / "stats.json"
        code = f"import bench.ingest as b;b.serve({port}, {database_url!r}, {str(stats_path)!r})"
        server = subprocess.Popen([sys.executable, "-c", code], cwd=root)
        engine = sa.create_engine(database_url)
        try:
            wait_for_port(port)
            script = Path(tmp) / "beacon.lua"
            _wrk_script(script, _visitor_tokens(database_url))
            _wrk(port, 1.0, connections, script)  # warm-up: connections, caches, writer
            before, _ = _settled(engine, 30.0)
            start = time.monotonic()
            load = _wrk(port, seconds, connections, script)
            after, done = _settled(engine, 60.0)
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=90)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            engine.dispose()
        books = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    stored = after - before
    return {
        "beacon_events_per_s": round(stored / (done - start), 1),
        "beacon_offered_events_per_s": round(load["rps"] * EVENTS_PER_BEACON, 1),
        "beacon_requests_per_s": round(load["rps"], 1),
        "beacon_non_2xx": load["non_2xx"],
        "beacon_stored": stored,
        "beacon_dropped": books.get("dropped", {}),
        "events_per_beacon": EVENTS_PER_BEACON,
        "connections": connections,
        "http_parser": http_parser(),
    }


# ------------------------------------------------------------- insert path
def interactions(n: int, seed: int = 7) -> list[Any]:
    """``n`` interactions of ``VISITORS`` visitors over the last hour, in time order."""
    from penchant import Interaction

    rng = random.Random(seed)
    start = datetime(2026, 1, 1, 12, 0, 0)
    kinds = (("view", "procedure"), ("view", "doctor"), ("click", "procedure"), ("view", "page"))
    out = []
    for i in range(n):
        kind, target = kinds[rng.randrange(len(kinds))]
        visitor = f"{rng.randrange(VISITORS):032x}"
        out.append(
            Interaction(
                user_id=visitor,
                session_id=f"{rng.randrange(1 << 64):032x}",
                interaction_type=kind,
                target_type=target,
                target_id=None if target == "page" else rng.randrange(1, 200),
                timestamp=start + timedelta(milliseconds=i * 10),
                event_id=f"{rng.randrange(1 << 128):032x}",
                extra_data={"path": "/"} if target == "page" else None,
            )
        )
    return out


def _empty(engine: Any) -> None:
    import sqlalchemy as sa

    with engine.begin() as conn:
        conn.execute(
            sa.text("TRUNCATE user_interactions, user_category_affinity, penchant_item_neighbours")
        )


def _copy(engine: Any, rows: list[Any]) -> float:
    """Seconds for a raw COPY of the rows (text format built from the same objects)."""
    start = time.perf_counter()
    buffer = io.StringIO()
    for e in rows:
        extra = json.dumps(e.extra_data) if e.extra_data else "\\N"
        target = "\\N" if e.target_id is None else str(e.target_id)
        buffer.write(
            f"{e.user_id}\t{e.session_id}\t{e.interaction_type}\t{e.target_type}\t{target}\t"
            f"{extra}\t{e.timestamp.isoformat()}\t{e.event_id}\n"
        )
    buffer.seek(0)
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            cursor.copy_expert(f"COPY user_interactions ({', '.join(COLUMNS)}) FROM STDIN", buffer)
        raw.commit()
    finally:
        raw.close()
    return time.perf_counter() - start


def _store_record(store: Any, rows: list[Any], batch_size: int) -> float:
    """Seconds for ``Store.record`` in the writer's batches, without affinity work."""
    start = time.perf_counter()
    for i in range(0, len(rows), batch_size):
        store.record(rows[i : i + batch_size], lambda batch: [], 0.95)
    return time.perf_counter() - start


def _writer(database_url: str, rows: list[Any]) -> float:
    """Seconds from the first submit until the whole writer (affinities too) has flushed."""
    from penchant import Penchant

    penchant = Penchant(catalog=synthetic_catalog(), **_settings(database_url))
    penchant.store.ping()  # connect before the clock starts
    try:
        writer = penchant.writer
        start = time.perf_counter()
        for e in rows:
            writer.submit(e)
        if not writer.flush(timeout=300.0):
            raise RuntimeError("the writer did not flush")
        elapsed = time.perf_counter() - start
        stats = writer.stats()
        if stats.stored != len(rows):
            raise RuntimeError(f"stored {stats.stored} of {len(rows)}: {stats.as_dict()}")
        return elapsed
    finally:
        penchant.close()


def insert_path(database_url: str, *, n: int, rounds: int) -> dict[str, Any]:
    import sqlalchemy as sa

    from penchant.storage.store import Store

    rows = interactions(n)
    store = Store(database_url)
    store.create_all()
    engine = sa.create_engine(database_url)
    from penchant.config import Settings

    batch_size = Settings().batch_size  # the writer's batches
    times: dict[str, list[float]] = {"copy": [], "store": [], "writer": []}
    try:
        for round_ in range(rounds):
            order = ("copy", "store", "writer")
            for way in order if round_ % 2 == 0 else tuple(reversed(order)):
                _empty(engine)
                if way == "copy":
                    times[way].append(_copy(engine, rows))
                elif way == "store":
                    times[way].append(_store_record(store, rows, batch_size))
                else:
                    times[way].append(_writer(database_url, rows))
                if _count(engine) != n:
                    raise RuntimeError(f"{way}: {_count(engine)} rows stored, {n} expected")
    finally:
        store.dispose()
        engine.dispose()
    rate = {way: n / statistics.median(values) for way, values in times.items()}
    return {
        "rows": n,
        "copy_rows_per_s": round(rate["copy"], 1),
        "store_insert_rows_per_s": round(rate["store"], 1),
        "writer_rows_per_s": round(rate["writer"], 1),
        "insert_ratio_vs_copy": round(rate["store"] / rate["copy"], 3),
        "writer_ratio_vs_copy": round(rate["writer"] / rate["copy"], 3),
        "insert_rounds": rounds,
    }


# --------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter runs (under a minute)")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args(argv)
    seconds, n, rounds = (5.0, 20_000, 1) if args.quick else (10.0, 50_000, 3)
    summary: dict[str, Any] = {}
    with fresh_pg_database("penchant_bench_beacon") as url:
        summary.update(beacon_path(url, seconds=seconds, connections=8))
    with fresh_pg_database("penchant_bench_insert") as url:
        summary.update(insert_path(url, n=n, rounds=rounds))
    summary["beacon_goal_met"] = summary["beacon_events_per_s"] >= 5000
    summary["insert_goal_met"] = summary["insert_ratio_vs_copy"] >= 0.5
    summary.update(machine())
    if args.json:
        print(json.dumps(summary))
        return 0
    print(
        f"beacon path, one uvicorn worker ({summary['http_parser']}), "
        f"wrk with {summary['connections']} connections, "
        f"{EVENTS_PER_BEACON} events per beacon, {seconds:.0f} s:"
    )
    print(
        f"  {summary['beacon_events_per_s']:9.0f} events/s stored "
        f"(offered {summary['beacon_offered_events_per_s']:.0f} events/s, "
        f"{summary['beacon_requests_per_s']:.0f} beacons/s; goal >= 5000)"
    )
    print(f"  dropped: {summary['beacon_dropped']}; non-2xx replies: {summary['beacon_non_2xx']}")
    print(f"insert path, {n} rows, median of {rounds} round(s):")
    print(f"  raw COPY              {summary['copy_rows_per_s']:9.0f} rows/s")
    print(
        f"  Store.record inserts  {summary['store_insert_rows_per_s']:9.0f} rows/s  "
        f"ratio {summary['insert_ratio_vs_copy']:.3f} (goal >= 0.5)"
    )
    print(
        f"  Writer, with affinities and co-viewed items "
        f"{summary['writer_rows_per_s']:9.0f} rows/s  ratio {summary['writer_ratio_vs_copy']:.3f}"
    )
    m = machine()
    print(f"{m['date']}, {m['cpus']} CPUs, Python {m['python']}, PostgreSQL {m['postgresql']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
