"""Shared by the benchmarks: a fresh PostgreSQL database, ports, the machine's description."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

__all__ = [
    "PG_ADMIN_URL",
    "free_port",
    "fresh_pg_database",
    "machine",
    "pg_version",
    "synthetic_catalog",
    "wait_for_port",
]

PG_ADMIN_URL = os.environ.get(
    "PENCHANT_BENCH_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


@contextlib.contextmanager
def fresh_pg_database(prefix: str = "penchant_bench") -> Iterator[str]:
    """A new, empty database on the server, dropped afterwards (never an existing one)."""
    import sqlalchemy as sa

    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def pg_version() -> str:
    import sqlalchemy as sa

    admin = sa.create_engine(PG_ADMIN_URL)
    try:
        with admin.connect() as conn:
            return str(conn.execute(sa.text("SHOW server_version")).scalar()).split()[0]
    except Exception:
        return "?"
    finally:
        admin.dispose()


def machine(*, postgres: bool = True) -> dict[str, Any]:
    """Cores, Python and database version, load: what a figure depends on."""
    out: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average": round(os.getloadavg()[0], 2),
    }
    if postgres:
        out["postgresql"] = pg_version()
    return out


#: Visitor n's User-Agent: a current desktop Chrome's, the build number telling them
#: apart (the load comes from one address). A made-up token instead ("Bench/7") costs
#: crawlerdetect's list as much as any unknown agent; real browsers' agents are what
#: a site sees.
AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.%d.0 Safari/537.36"
)


def visitor_agent(n: int) -> str:
    """The User-Agent of the load's visitor ``n``."""
    return AGENT % n


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start")


def run_wrk(
    port: int, path: str, *, seconds: float, connections: int, script: str
) -> tuple[float, int]:
    """One wrk run on loopback: (requests/s, non-2xx/3xx responses)."""
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "-s",
            script,
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    rps = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if rps is None:
        raise RuntimeError(f"wrk failed:\n{out}")
    return float(rps.group(1)), int(errors.group(1)) if errors else 0


def synthetic_catalog(
    *, categories: int = 12, procedures: int = 200, doctors: int = 300, packages: int = 50
) -> Any:
    """A marketplace-sized catalog: each item in one or two categories."""
    from penchant import Catalog, Category, Item

    cats = [Category(i, f"Category {i}") for i in range(1, categories + 1)]
    items: list[Item] = []
    for target_type, n in (("procedure", procedures), ("doctor", doctors), ("package", packages)):
        for i in range(1, n + 1):
            in_categories = (i % categories + 1, (i * 7) % categories + 1)
            items.append(
                Item(target_type, i, f"{target_type} {i}", tuple(dict.fromkeys(in_categories)))
            )
    return Catalog(cats, items)
