"""Storage benchmark: batched writes against one row per transaction, and profile reads
at 10k and at 1M stored interactions (the read must not grow with the table).

    python -m bench.engine [--quick] [--json] [--database-url URL]

Without ``--database-url`` it runs on a SQLite file in a temporary folder. With a
PostgreSQL URL it creates a database of its own on that server and drops it at
the end; it never writes into the database named in the URL. ``--quick`` stops
at 200k rows instead of 1M. With ``--json`` the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from penchant.engine.affinity import AffinityDelta, fold
from penchant.engine.catalog import Catalog, Category, Item
from penchant.engine.events import Interaction
from penchant.storage.schema import user_category_affinity, user_interactions
from penchant.storage.store import INTERACTION_COLUMNS, Store

__all__ = ["Result", "main", "run"]

T0 = datetime(2024, 1, 1)
KINDS = ("view", "view", "view", "click", "search", "form_submit")
WEIGHTS = {"view": 0.1, "search": 0.2, "click": 0.3, "form_submit": 0.5}
RATE = 0.95
CATALOG = Catalog(
    [Category(c, f"Category {c}") for c in range(1, 41)],
    [Item("procedure", p, f"Procedure {p}", (1 + p % 40,)) for p in range(1, 401)],
)
PROBES = 100  # visitors whose profile is read
PROBE_HISTORY = 60  # interactions each probe visitor has


@dataclass(frozen=True, slots=True)
class Result:
    database: str
    batch_rows: int
    batch_rows_per_s: float
    single_rows: int
    single_rows_per_s: float
    write_ratio: float
    record_single_rows_per_s: float  # Store.record with one event per transaction
    record_ratio: float
    small_rows: int
    large_rows: int
    profile_small_p50_ms: float
    profile_small_p99_ms: float
    profile_large_p50_ms: float
    profile_large_p99_ms: float
    profile_ratio_p50: float
    profile_ratio_p99: float
    seconds: float


def _deltas(batch: Sequence[Interaction]) -> list[AffinityDelta]:
    return fold(batch, CATALOG, WEIGHTS, RATE)


def _events(count: int, rng: random.Random, visitors: int) -> list[Interaction]:
    return [
        Interaction(
            user_id=f"{rng.randrange(visitors):032x}",
            session_id=f"{i:064x}",
            interaction_type=rng.choice(KINDS),
            target_type="procedure",
            target_id=rng.randint(1, 400),
            timestamp=T0 + timedelta(seconds=i),
            event_id=uuid.UUID(int=rng.getrandbits(128)).hex,
        )
        for i in range(count)
    ]


def _batch_writes(store: Store, count: int, rng: random.Random) -> float:
    events = _events(count, rng, visitors=2_000)
    started = time.perf_counter()
    for start in range(0, count, 500):
        store.record(events[start : start + 500], _deltas, RATE)
    return count / (time.perf_counter() - started)


def _single_writes(store: Store, count: int, rng: random.Random) -> float:
    events = _events(count, rng, visitors=2_000)
    statement = user_interactions.insert()
    started = time.perf_counter()
    for event in events:
        with store.engine.begin() as conn:
            conn.execute(
                statement,
                {
                    "user_id": event.user_id,
                    "session_id": event.session_id,
                    "interaction_type": event.interaction_type,
                    "target_type": event.target_type,
                    "target_id": event.target_id,
                    "extra_data": None,
                    "timestamp": event.timestamp,
                    "event_id": event.event_id,
                },
            )
    return count / (time.perf_counter() - started)


def _record_singly(store: Store, count: int, rng: random.Random) -> float:
    events = _events(count, rng, visitors=2_000)
    started = time.perf_counter()
    for event in events:
        store.record([event], _deltas, RATE)
    return count / (time.perf_counter() - started)


def _rows(start: int, count: int, rng: random.Random) -> Iterator[tuple[object, ...]]:
    """Filler interactions of many other visitors, spread over 90 days."""
    for n in range(start, start + count):
        at = T0 + timedelta(seconds=rng.randrange(90 * 86_400), microseconds=n % 1_000_000)
        yield (
            f"{rng.getrandbits(120):032x}",
            "s",
            KINDS[n % len(KINDS)],
            "procedure",
            1 + n % 400,
            None,
            at.strftime("%Y-%m-%d %H:%M:%S.%f"),
            f"{n:032x}",
        )


def _probe_rows() -> Iterator[tuple[object, ...]]:
    for p in range(PROBES):
        for i in range(PROBE_HISTORY):
            at = T0 + timedelta(days=89, seconds=p * 100 + i, microseconds=1)
            yield (
                _probe(p),
                "s",
                "view",
                "procedure",
                1 + (p + i) % 400,
                None,
                at.strftime("%Y-%m-%d %H:%M:%S.%f"),
                f"{p:016x}{i:016x}",
            )


def _probe(p: int) -> str:
    return f"{0xABCDEF:06x}{p:026x}"


_COLUMNS = INTERACTION_COLUMNS


def _bulk_insert(store: Store, rows: Iterator[tuple[object, ...]]) -> None:
    """As fast as each database allows: COPY on PostgreSQL, executemany on SQLite."""
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if store.dialect == "postgresql":
            buffer = io.StringIO()
            for row in rows:
                buffer.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
            buffer.seek(0)
            cursor.copy_expert(f"COPY user_interactions ({', '.join(_COLUMNS)}) FROM STDIN", buffer)
            raw.commit()
            cursor.execute("ANALYZE user_interactions")
        else:
            cursor.execute("BEGIN")
            placeholders = ", ".join("?" for _ in _COLUMNS)
            cursor.executemany(
                f"INSERT INTO user_interactions ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
                rows,  # type: ignore[arg-type]
            )
            cursor.execute("COMMIT")
            cursor.execute("ANALYZE")
        raw.commit()
        cursor.close()
    finally:
        raw.close()


def _grow(store: Store, already: int, target: int, rng: random.Random) -> None:
    step = 250_000
    while already < target:
        count = min(step, target - already)
        _bulk_insert(store, _rows(already, count, rng))
        already += count


def _profile_latency(store: Store, rng: random.Random, calls: int) -> tuple[float, float]:
    probes = [_probe(rng.randrange(PROBES)) for _ in range(calls)]
    for user in probes[:20]:  # warm the pool and the caches of the database
        store.load_profile(user)
    timings: list[float] = []
    for user in probes:
        started = time.perf_counter()
        profile = store.load_profile(user)
        timings.append((time.perf_counter() - started) * 1000)
        if len(profile.history) != 50:
            raise RuntimeError("the probe visitor's history is missing")
    timings.sort()
    return statistics.median(timings), timings[min(len(timings) - 1, int(len(timings) * 0.99))]


@contextmanager
def _database(url: str | None) -> Iterator[str]:
    """A fresh database: a temporary SQLite file, or a new database on the PostgreSQL server."""
    if url is None or sa.make_url(url).get_backend_name() == "sqlite":
        with tempfile.TemporaryDirectory(prefix="penchant-bench-") as folder:
            yield f"sqlite:///{Path(folder) / 'bench.db'}"
        return
    server = sa.make_url(url)
    if server.drivername == "postgresql":
        server = server.set(drivername="postgresql+psycopg2")
    name = f"penchant_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run(
    database_url: str | None = None,
    *,
    batch_rows: int = 50_000,
    single_rows: int = 2_000,
    small_rows: int = 10_000,
    large_rows: int = 1_000_000,
    calls: int = 500,
    seed: int = 7,
) -> Result:
    """Measure everything in one run on one fresh database."""
    started = time.perf_counter()
    rng = random.Random(seed)
    with _database(database_url) as url:
        store = Store(url, statement_timeout=600.0)
        try:
            store.create_all()
            batch_rate = _batch_writes(store, batch_rows, rng)
            single_rate = _single_writes(store, single_rows, rng)
            record_single_rate = _record_singly(store, single_rows, rng)
            with store.engine.begin() as conn:
                conn.execute(user_interactions.delete())
                conn.execute(user_category_affinity.delete())
            probes = PROBES * PROBE_HISTORY
            _bulk_insert(store, _probe_rows())
            _grow(store, probes, small_rows, rng)
            small = _profile_latency(store, rng, calls)
            _grow(store, max(probes, small_rows), large_rows, rng)
            large = _profile_latency(store, rng, calls)
            dialect = store.dialect
        finally:
            store.dispose()
    return Result(
        database=dialect,
        batch_rows=batch_rows,
        batch_rows_per_s=round(batch_rate, 1),
        single_rows=single_rows,
        single_rows_per_s=round(single_rate, 1),
        write_ratio=round(batch_rate / single_rate, 2),
        record_single_rows_per_s=round(record_single_rate, 1),
        record_ratio=round(batch_rate / record_single_rate, 2),
        small_rows=small_rows,
        large_rows=large_rows,
        profile_small_p50_ms=round(small[0], 3),
        profile_small_p99_ms=round(small[1], 3),
        profile_large_p50_ms=round(large[0], 3),
        profile_large_p99_ms=round(large[1], 3),
        profile_ratio_p50=round(large[0] / small[0], 2),
        profile_ratio_p99=round(large[1] / small[1], 2),
        seconds=round(time.perf_counter() - started, 1),
    )


def _report(result: Result) -> str:
    r = result
    return "\n".join(
        [
            f"penchant storage benchmark on {r.database} ({r.seconds} s)",
            f"  writes, batches of 500 via Store.record: {r.batch_rows_per_s:>10,.0f} rows/s"
            f"  ({r.batch_rows:,} rows, affinity upserts included)",
            f"  writes, one row per transaction:         {r.single_rows_per_s:>10,.0f} rows/s"
            f"  ({r.single_rows:,} rows, plain insert)",
            f"  batch / single:                          {r.write_ratio:>10.1f} x",
            f"  Store.record, one event per transaction: "
            f"{r.record_single_rows_per_s:>10,.0f} rows/s  (batch / this: {r.record_ratio:.1f} x)",
            f"  load_profile at {r.small_rows:>9,} rows: p50 {r.profile_small_p50_ms:.3f} ms,"
            f" p99 {r.profile_small_p99_ms:.3f} ms",
            f"  load_profile at {r.large_rows:>9,} rows: p50 {r.profile_large_p50_ms:.3f} ms,"
            f" p99 {r.profile_large_p99_ms:.3f} ms",
            f"  large / small: p50 {r.profile_ratio_p50:.2f} x, p99 {r.profile_ratio_p99:.2f} x"
            " (near 1: reads do not scan history)",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engine", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="200k rows instead of 1M")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    args = parser.parse_args(argv)
    if args.quick:
        result = run(args.database_url, batch_rows=20_000, single_rows=1_000, large_rows=200_000)
    else:
        result = run(args.database_url)
    print(_report(result))
    if args.json:
        print(json.dumps(asdict(result), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
