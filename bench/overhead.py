"""What penchant costs the host: throughput under load, and microseconds per request.

    python -m bench.overhead [--quick] [--json] [--database-url URL]

The same HTML page (a Starlette app) is served by uvicorn on 127.0.0.1 three
ways: bare; wrapped by penchant, which records every page view; and wrapped by
a naive middleware that inserts one row per request, synchronously, as a
hand-written tracker would. One load tool drives all three (wrk when installed,
else a bounded Python load generator in another process, keep-alive
connections), with 1,000 distinct visitors (User-Agents). Then each adapter is
called directly in a loop, wrapped and bare, for the microseconds penchant adds
per request. With ``--json`` the last line is one JSON object.

Bounded: about 90 s in full, under 30 s with ``--quick``. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["main"]

PAGE = (
    "<!doctype html><html><head><title>Procedures</title></head><body><h1>Botox</h1>"
    + "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>" * 30
    + "</body></html>"
)
VISITORS = 1000
SECRET = "bench-secret"
MODES = ("bare", "penchant", "naive")


# --------------------------------------------------------------------- apps
def host_app() -> Any:
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    async def page(request: Any) -> HTMLResponse:
        return HTMLResponse(PAGE)

    return Starlette(routes=[Route("/", page)])


class NaiveTracker:
    """The tracker penchant replaces: one INSERT and COMMIT per request, in the request."""

    def __init__(self, app: Any, database_url: str) -> None:
        import sqlalchemy as sa

        from penchant.storage.schema import metadata, user_interactions

        self.app = app
        self.engine = sa.create_engine(database_url)
        metadata.create_all(self.engine)
        self.insert = user_interactions.insert()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            raw = b"|".join((headers.get(b"user-agent", b""), scope["client"][0].encode(), b"en"))
            user_id = hashlib.md5(raw, usedforsecurity=False).hexdigest()
            with self.engine.begin() as conn:
                conn.execute(
                    self.insert,
                    {
                        "user_id": user_id,
                        "session_id": user_id,
                        "interaction_type": "view",
                        "target_type": "page",
                        "target_id": None,
                        "extra_data": json.dumps({"path": scope["path"]}),
                        "timestamp": _now(),
                    },
                )
        await self.app(scope, receive, send)


def _now() -> Any:
    from penchant.service import utcnow

    return utcnow()


def build(mode: str, database_url: str) -> tuple[Any, Any]:
    """(ASGI app, the Penchant instance or None) for one mode."""
    app = host_app()
    if mode == "bare":
        return app, None
    if mode == "naive":
        return NaiveTracker(app, database_url), None
    from penchant import Penchant

    penchant = Penchant(database_url=database_url, secret_key=SECRET, holdout=0.0)
    penchant.init_db()
    return penchant.asgi(app), penchant


def serve(mode: str, port: int, database_url: str, stats_path: str) -> None:
    """Server process: uvicorn on loopback; writes the writer's books at exit."""
    import uvicorn

    app, penchant = build(mode, database_url)
    try:
        import httptools  # noqa: F401

        http = "httptools"
    except ImportError:
        http = "h11"
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        http=http,
        loop="asyncio",
        lifespan="on",
    )
    out: dict[str, Any] = {"http": http}
    if penchant is not None:
        penchant.flush(timeout=20.0)
        out.update(penchant.health())
        penchant.close()
    Path(stats_path).write_text(json.dumps(out))


# --------------------------------------------------------------------- load
WRK_SCRIPT = """
local n = 0
request = function()
  n = n + 1
  local ua = "Mozilla/5.0 (X11; Linux x86_64) BenchBrowser/" .. (n %% %d)
  return wrk.format("GET", "/", {["User-Agent"] = ua, ["Accept-Language"] = "en"})
end
"""


def wrk_load(port: int, seconds: float, connections: int, script: str) -> float:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "-s",
            script,
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    found = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if found is None or errors is not None:
        raise RuntimeError(f"wrk run failed:\n{out}")
    return float(found.group(1))


def _python_worker(port: int, deadline: float, offset: int, counts: list[int]) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    n = 0
    while time.monotonic() < deadline:
        ua = f"Mozilla/5.0 (X11; Linux x86_64) BenchBrowser/{(offset + n) % VISITORS}"
        conn.request("GET", "/", headers={"User-Agent": ua, "Accept-Language": "en"})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"status {response.status}")
        n += 1
    conn.close()
    counts.append(n)


def python_load(port: int, seconds: float, connections: int) -> float:
    """A bounded keep-alive load generator (threads over http.client), for when wrk is absent."""
    counts: list[int] = []
    start = time.monotonic()
    deadline = start + seconds
    threads = [
        threading.Thread(target=_python_worker, args=(port, deadline, i * 997, counts))
        for i in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 30)
    return sum(counts) / (time.monotonic() - start)


def _load_in_process(port: int, seconds: float, connections: int) -> float:
    """Run the Python load generator in another process, so it does not share our GIL."""
    code = f"import sys, bench.overhead as b;print(b.python_load({port}, {seconds}, {connections}))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return float(out.stdout.strip().splitlines()[-1])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start")


def measure_server(
    mode: str,
    database_url: str,
    *,
    seconds: float,
    warmup: float,
    connections: int,
    load: Callable[[int, float, int], float],
    workdir: Path,
) -> tuple[float, dict[str, Any]]:
    port = _free_port()
    stats_path = workdir / f"stats-{mode}-{port}.json"
    root = Path(__file__).resolve().parent.parent
    code = (
        "import bench.overhead as b;"
        f"b.serve({mode!r}, {port}, {database_url!r}, {str(stats_path)!r})"
    )
    server = subprocess.Popen([sys.executable, "-c", code], cwd=root)
    try:
        _wait_for(port)
        load(port, warmup, connections)
        rps = load(port, seconds, connections)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    return rps, stats


# --------------------------------------------------------------- in-process
def _scope(n: int) -> dict[str, Any]:
    ua = f"Mozilla/5.0 (X11; Linux x86_64) BenchBrowser/{n % VISITORS}".encode()
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"user-agent", ua),
            (b"accept-language", b"en"),
            (b"accept", b"text/html"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def _drive_asgi(app: Any, n: int) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    scopes = [_scope(i) for i in range(VISITORS)]
    start = time.perf_counter()
    for i in range(n):
        await app(dict(scopes[i % VISITORS]), receive, send)
    return (time.perf_counter() - start) / n


def _bare_wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = PAGE.encode()
    start_response(
        "200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))]
    )
    return [body]


def _drive_wsgi(app: Any, n: int) -> float:
    environs = [
        {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_USER_AGENT": f"Mozilla/5.0 (X11; Linux x86_64) BenchBrowser/{i}",
            "HTTP_ACCEPT_LANGUAGE": "en",
            "wsgi.url_scheme": "http",
        }
        for i in range(VISITORS)
    ]

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        return None

    start = time.perf_counter()
    for i in range(n):
        for _ in app(dict(environs[i % VISITORS]), start_response):
            pass
    return (time.perf_counter() - start) / n


def added_microseconds(database_url: str, n: int, rounds: int) -> dict[str, float]:
    """Microseconds penchant adds to one request when its adapter is called directly."""
    from penchant import Penchant

    penchant = Penchant(
        database_url=database_url, secret_key=SECRET, holdout=0.0, queue_size=1_000_000
    )
    penchant.init_db()
    try:
        asgi_bare = host_app()
        asgi_wrapped = penchant.asgi(asgi_bare)
        wsgi_wrapped = penchant.wsgi(_bare_wsgi)
        asgi: list[float] = []
        wsgi: list[float] = []
        # Warm: every visitor seen once (crawler check and fingerprint caches), writer started.
        asyncio.run(_drive_asgi(asgi_wrapped, VISITORS))
        _drive_wsgi(wsgi_wrapped, VISITORS)
        penchant.flush(timeout=30.0)
        for _ in range(rounds):
            bare = asyncio.run(_drive_asgi(asgi_bare, n))
            wrapped = asyncio.run(_drive_asgi(asgi_wrapped, n))
            asgi.append((wrapped - bare) * 1e6)
            bare = _drive_wsgi(_bare_wsgi, n)
            wrapped = _drive_wsgi(wsgi_wrapped, n)
            wsgi.append((wrapped - bare) * 1e6)
            penchant.flush(timeout=30.0)
        # The least disturbed round: other processes on the machine only ever add time.
        return {
            "asgi_added_us": round(min(asgi), 1),
            "wsgi_added_us": round(min(wsgi), 1),
        }
    finally:
        penchant.close()


# --------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.overhead", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter runs (under 30 s)")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument(
        "--database-url",
        default=None,
        help="database for penchant and the naive tracker (default: a fresh SQLite file)",
    )
    args = parser.parse_args(argv)
    seconds, warmup, rounds, loops = (5.0, 1.0, 1, 2000) if args.quick else (10.0, 2.0, 2, 5000)
    connections = 16
    use_wrk = shutil.which("wrk") is not None
    with tempfile.TemporaryDirectory(prefix="penchant-bench-") as tmp:
        workdir = Path(tmp)
        script = workdir / "visitors.lua"
        script.write_text(WRK_SCRIPT % VISITORS)

        def load(port: int, secs: float, conns: int) -> float:
            if use_wrk:
                return wrk_load(port, secs, conns, str(script))
            return _load_in_process(port, secs, conns)

        results: dict[str, list[float]] = {mode: [] for mode in MODES}
        books: dict[str, dict[str, Any]] = {}
        for round_ in range(rounds):
            # Alternate the order so that drift (heat, other load) does not favour one mode.
            order = MODES if round_ % 2 == 0 else tuple(reversed(MODES))
            for mode in order:
                url = args.database_url or f"sqlite:///{workdir / f'{mode}-{round_}.db'}"
                rps, stats = measure_server(
                    mode,
                    url,
                    seconds=seconds,
                    warmup=warmup,
                    connections=connections,
                    load=load,
                    workdir=workdir,
                )
                results[mode].append(rps)
                books[mode] = stats
                if not args.json:
                    print(f"  {mode:9s} round {round_ + 1}: {rps:9.0f} requests/s", flush=True)
        micro_url = args.database_url or f"sqlite:///{workdir / 'micro.db'}"
        micro = added_microseconds(micro_url, loops, 3)

    rps = {mode: statistics.median(values) for mode, values in results.items()}
    pbooks = books.get("penchant", {})
    dropped = pbooks.get("dropped_total", 0)
    summary: dict[str, Any] = {
        "bare_rps": round(rps["bare"], 1),
        "penchant_rps": round(rps["penchant"], 1),
        "naive_rps": round(rps["naive"], 1),
        "ratio_vs_bare": round(rps["penchant"] / rps["bare"], 3),
        "naive_ratio_vs_bare": round(rps["naive"] / rps["bare"], 3),
        **micro,
        "penchant_stored": pbooks.get("stored", 0),
        "penchant_dropped": dropped,
        "load_tool": "wrk" if use_wrk else "python",
        "http": pbooks.get("http", "?"),
        "connections": connections,
        "seconds": seconds,
        "database": (args.database_url or "sqlite").split(":", 1)[0],
        "cpus": os.cpu_count(),
    }
    if not args.json:
        print()
        print(f"load tool: {summary['load_tool']}, {connections} connections, {seconds:.0f} s")
        print(f"server: uvicorn ({summary['http']}), database: {summary['database']}")
        print(f"bare app              {summary['bare_rps']:9.0f} requests/s")
        print(
            f"with penchant         {summary['penchant_rps']:9.0f} requests/s"
            f"   ratio {summary['ratio_vs_bare']:.3f}"
        )
        print(
            f"with a naive tracker  {summary['naive_rps']:9.0f} requests/s"
            f"   ratio {summary['naive_ratio_vs_bare']:.3f}"
        )
        print(f"penchant: {summary['penchant_stored']} views stored, {dropped} dropped")
        print(
            f"added per request: ASGI {micro['asgi_added_us']} us, WSGI {micro['wsgi_added_us']} us"
        )
    else:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
