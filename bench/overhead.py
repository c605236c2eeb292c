"""What penchant costs the host: throughput under load, and microseconds per request.

    python -m bench.overhead [--quick] [--json] [--database-url URL]

The same HTML page (a Starlette app) is served by uvicorn on 127.0.0.1 three
ways: bare; wrapped by penchant, which records every page view; and wrapped by a
naive middleware that inserts one row per request, synchronously, as a
hand-written tracker would. Three pages: a marketplace page rendered from a
Jinja2 template (what a site serves; the headline ``ratio_vs_bare``); the same
page whose 6 + 6 + 9 cards the view builds from penchant's lists for a returning
visitor (``recommend_ratio_vs_bare``; bare and naive run the same view code on
fixed lists, so the ratio is what asking penchant costs); and a minimal constant
page (the worst case for any middleware, ``minimal_ratio_vs_bare``).
One load tool drives all of them (wrk when installed, else a bounded Python load
generator in another process; keep-alive connections, 1,000 distinct visitors).
The servers of one page run at the same time and take turns under the load, a
slice of a few seconds each, for several rounds (the order turning round each
round): on a shared machine whose speed drifts from minute to minute, only
slices run side by side compare, so each ratio is the median of the rounds'
ratios. Every visitor's first page is served before the load, in every mode
(what a new visitor costs is printed on its own). Besides requests per second,
the server's CPU time per request is measured (``cpu_ratio_vs_bare``). Then each
adapter is called directly in a loop, wrapped and bare, for the microseconds
penchant adds per request. With ``--json`` the last line is one JSON object.

Bounded: about 3 minutes in full, about a minute with ``--quick`` (no minimal
page, two rounds of 2 s slices). Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench._common import AGENT, free_port, run_wrk, visitor_agent, wait_for_port

__all__ = ["main"]

MINIMAL_PAGE = (
    "<!doctype html><html><head><title>Procedures</title></head><body><h1>Botox</h1>"
    + "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>" * 30
    + "</body></html>"
)
# A marketplace home page as a site renders it: a Jinja2 template with 21 cards.
TEMPLATE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<link rel="stylesheet" href="/static/site.css"></head><body><header><nav>
{% for c in categories %}<a href="/categories/{{ c.id }}">{{ c.name }}</a>{% endfor %}</nav>
<form data-penchant-search action="/search"><input type="search" name="q"></form></header>
<main><h1>{{ title }}</h1>{% for section in sections %}<section><h2>{{ section.title }}</h2>
<div class="grid">{% for card in section.cards %}
<article class="card" data-penchant-type="{{ card.type }}" data-penchant-id="{{ card.id }}">
<a href="{{ card.url }}"><h3>{{ card.name }}</h3></a><p>{{ card.description }}</p>
<p class="meta">{{ card.price }} &middot; {{ card.recovery }} &middot; {{ card.reason }}</p>
</article>{% endfor %}</div></section>{% endfor %}</main><footer>Radiant</footer></body></html>"""
PAGES = ("template", "recommend", "minimal")
VISITORS = 1000
SECRET = "bench-secret-0123456789abcdef"
MODES = ("bare", "penchant", "naive")
#: Seconds after a slice of load on penchant: its writer's last batch lands before
#: the next slice starts (flush_interval is 0.75 s).
SETTLE = 1.0
#: Requests per chunk when an adapter is called directly: about what a server at
#: 1,300 requests/s hands its writer in one flush interval (0.75 s).
CHUNK = 1000


# --------------------------------------------------------------------- apps
def host_app(page: str = "minimal") -> Any:
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    if page == "minimal":

        async def minimal(request: Any) -> HTMLResponse:
            return HTMLResponse(MINIMAL_PAGE)

        return Starlette(routes=[Route("/", minimal)])

    import jinja2

    template = jinja2.Environment(autoescape=True).from_string(TEMPLATE)
    context = {
        "title": "Radiant",
        "categories": [{"id": i, "name": f"Category {i}"} for i in range(12)],
        "sections": [
            {
                "title": title,
                "cards": [
                    {
                        "type": "procedure",
                        "id": i,
                        "url": f"/procedures/{i}",
                        "name": f"Procedure {i}",
                        "description": "What the procedure does, in one sentence or two.",
                        "price": "$300-$900",
                        "recovery": "2-3 days",
                        "reason": "Popular in Injectables",
                    }
                    for i in range(n)
                ],
            }
            for title, n in (("Categories", 6), ("Procedures", 6), ("Doctors", 9))
        ],
    }

    async def rendered(request: Any) -> HTMLResponse:
        return HTMLResponse(template.render(context))

    def with_lists(lists: Sequence[Sequence[Any]]) -> HTMLResponse:
        """The host's view code: the page's 6 + 6 + 9 cards from three lists."""
        sections = [
            {
                "title": section["title"],
                "cards": [
                    {
                        **card,
                        "type": r.item.target_type,
                        "id": r.item.id,
                        "name": r.item.name,
                        "reason": str(r.reason),
                    }
                    for card, r in zip(section["cards"], recs, strict=False)
                ],
            }
            for recs, section in zip(lists, context["sections"], strict=True)
        ]
        return HTMLResponse(template.render({**context, "sections": sections}))

    async def personalized(request: Any) -> HTMLResponse:
        # The lists come from penchant for this (returning) visitor.
        p = request.scope["penchant.personalization"]
        return with_lists((p.categories(), p.procedures(), p.doctors()))

    fixed_lists = _fixed_lists()

    async def fixed(request: Any) -> HTMLResponse:
        # The same view without penchant: the site's own fixed lists.
        return with_lists(fixed_lists)

    view = {"recommend": personalized, "recommend-fixed": fixed}.get(page, rendered)
    return Starlette(routes=[Route("/", view)])


def _fixed_lists() -> tuple[list[Any], ...]:
    """Lists shaped like penchant's recommendations (``.item``, ``.reason``), built once."""
    from types import SimpleNamespace

    def shown(target_type: str, n: int) -> list[Any]:
        return [
            SimpleNamespace(
                item=SimpleNamespace(target_type=target_type, id=i, name=f"{target_type} {i}"),
                reason="Popular in Category 1",
            )
            for i in range(1, n + 1)
        ]

    return (shown("category", 6), shown("procedure", 6), shown("doctor", 9))


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


def build(mode: str, database_url: str, page: str = "minimal") -> tuple[Any, Any]:
    """(ASGI app, the Penchant instance or None) for one mode."""
    app = host_app(page)
    if mode in ("bare", "naive") and page == "recommend":
        # Without penchant the same view renders its cards from fixed lists.
        app = host_app("recommend-fixed")
    if mode == "bare":
        return app, None
    if mode == "naive":
        return NaiveTracker(app, database_url), None
    from bench._common import synthetic_catalog
    from penchant import Penchant

    penchant = Penchant(
        database_url=database_url, secret_key=SECRET, holdout=0.0, catalog=synthetic_catalog()
    )
    penchant.init_db()
    return penchant.asgi(app), penchant


def serve(mode: str, page: str, port: int, database_url: str, stats_path: str) -> None:
    """Server process: uvicorn on loopback; writes the writer's books at exit."""
    import uvicorn

    app, penchant = build(mode, database_url, page)
    if penchant is not None and page == "recommend":
        _returning_visitors(penchant)
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


def _returning_visitors(penchant: Any) -> None:
    """Give each of the load's visitors a history: 5 procedure and doctor views."""
    from penchant.middleware.core import Core

    core = Core(penchant)
    for n in range(VISITORS):
        ua = visitor_agent(n)
        user_id = core._compute_fingerprint(ua, "127.0.0.1", "en")
        for k in range(5):
            target = "procedure" if k % 2 == 0 else "doctor"
            penchant.track("view", target, 1 + (n * 31 + k * 7) % 200, user_id=user_id)
    penchant.flush(timeout=60.0)


def make_wsgi(mode: str, database_url: str) -> Any:
    """The WSGI app gunicorn serves: the minimal page, bare or wrapped by penchant."""
    if mode == "bare":
        return _bare_wsgi
    from penchant import Penchant

    penchant = Penchant(database_url=database_url, secret_key=SECRET, holdout=0.0)
    penchant.init_db()
    return penchant.wsgi(_bare_wsgi)


def start_gunicorn(mode: str, database_url: str) -> Server:
    """One gunicorn worker (gthread, 4 threads: keep-alive like uvicorn), started."""
    port = free_port()
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "gunicorn", "--workers", "1", "--worker-class", "gthread"),
            *("--threads", "4", "--bind", f"127.0.0.1:{port}", "--log-level", "warning"),
            f"bench.overhead:make_wsgi({mode!r}, {database_url!r})",
        ],
        cwd=root,
    )
    return Server(mode, process, port, None, signal.SIGTERM)


# --------------------------------------------------------------------- load
WRK_SCRIPT = """
local n = 0
request = function()
  n = n + 1
  local ua = string.format("%s", n %% %d)
  return wrk.format("GET", "/", {["User-Agent"] = ua, ["Accept-Language"] = "en"})
end
"""


def wrk_load(port: int, seconds: float, connections: int, script: str) -> float:
    rps, non_2xx = run_wrk(port, "/", seconds=seconds, connections=connections, script=script)
    if non_2xx:
        raise RuntimeError(f"wrk saw {non_2xx} responses that were not 2xx or 3xx")
    return rps


def _page_view(conn: Any, visitor: int) -> None:
    """GET / as visitor ``visitor`` of the load on a keep-alive connection; 200 or raise."""
    ua = visitor_agent(visitor % VISITORS)
    conn.request("GET", "/", headers={"User-Agent": ua, "Accept-Language": "en"})
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"status {response.status}")


def _python_worker(port: int, deadline: float, offset: int, counts: list[int]) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    n = 0
    while time.monotonic() < deadline:
        _page_view(conn, offset + n)
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


class Server:
    """A server process under test: its mode, port, and how it is stopped."""

    def __init__(
        self,
        mode: str,
        process: subprocess.Popen[bytes],
        port: int,
        stats_path: Path | None,
        stop_signal: int = signal.SIGINT,
    ) -> None:
        self.mode, self.process, self.port = mode, process, port
        self.stats_path, self.stop_signal = stats_path, stop_signal

    def cpu_seconds(self) -> float:
        """CPU time of the server and its children (gunicorn's worker) so far."""
        pids = [self.process.pid]
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
            pids += [int(p) for p in children.read_text().split()]
        except (OSError, ValueError):
            pass
        return sum(_cpu_seconds(pid) for pid in pids)

    def stop(self) -> dict[str, Any]:
        """Stop it; the books it wrote at exit (penchant's), else {}."""
        self.process.send_signal(self.stop_signal)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        path = self.stats_path
        return json.loads(path.read_text()) if path is not None and path.exists() else {}


def start_server(mode: str, page: str, database_url: str, workdir: Path) -> Server:
    """uvicorn serving ``page`` in ``mode``, started (not yet listening, maybe)."""
    port = free_port()
    stats_path = workdir / f"stats-{mode}-{port}.json"
    root = Path(__file__).resolve().parent.parent
    code = (
        "import bench.overhead as b;"
        f"b.serve({mode!r}, {page!r}, {port}, {database_url!r}, {str(stats_path)!r})"
    )
    process = subprocess.Popen([sys.executable, "-c", code], cwd=root)
    return Server(mode, process, port, stats_path)


def measure_interleaved(
    servers: Sequence[Server],
    *,
    seconds: float,
    warmup: float,
    rounds: int,
    connections: int,
    load: Callable[[int, float, int], float],
) -> dict[str, list[tuple[float, float]]]:
    """(requests/s, CPU us per request) per round for each server, the servers taking
    turns: on a shared machine whose speed drifts by the minute, only slices run
    side by side compare. The order turns round each round."""
    for server in servers:
        wait_for_port(server.port)
    for server in servers:
        # Returning visitors: each one's first page comes before the load, in every
        # mode alike (what a visitor costs the first time it is seen, the crawler
        # check and fingerprint and ranking its lists, is printed on its own).
        _each_visitor_once(server.port)
        load(server.port, warmup, connections)
    out: dict[str, list[tuple[float, float]]] = {server.mode: [] for server in servers}
    for round_ in range(rounds):
        order = servers if round_ % 2 == 0 else list(reversed(servers))
        for server in order:
            if hasattr(os, "sync"):
                # The naive tracker's commits reach the disk before the next slice,
                # not during it.
                os.sync()
            before = server.cpu_seconds()
            rps = load(server.port, seconds, connections)
            if server.mode == "penchant":
                # The writer's last batch lands (and is counted) before the next slice.
                time.sleep(SETTLE)
            cpu = server.cpu_seconds() - before
            # CPU per request: the server's own, whichever other load the machine has.
            out[server.mode].append((rps, cpu / max(1.0, rps * seconds) * 1e6))
    return out


def _each_visitor_once(port: int) -> None:
    """One page view per visitor of the load, one after another."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for n in range(VISITORS):
            _page_view(conn, n)
    finally:
        conn.close()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its threads (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------- in-process
def _scope(n: int) -> dict[str, Any]:
    ua = visitor_agent(n).encode()
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


async def _drive_asgi(app: Any, n: int, first: int | None = None) -> float:
    """Seconds per request over ``n`` requests of the load's visitors, or (``first``)
    of ``n`` visitors never seen before, numbered from ``first``."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    if first is None:
        scopes = [_scope(i) for i in range(VISITORS)]
    else:
        scopes = [_scope(first + i) for i in range(n)]
    start = time.perf_counter()
    for i in range(n):
        scope = dict(scopes[i % len(scopes)])
        scope["state"] = {}  # uvicorn gives each request a copy of the lifespan state
        await app(scope, receive, send)
    return (time.perf_counter() - start) / n


def _bare_wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = MINIMAL_PAGE.encode()
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
            "HTTP_USER_AGENT": visitor_agent(i),
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
    """Microseconds penchant adds to one request when its adapter is called directly,
    and what each page view then costs off the request: turning it into an event
    (``*_deferred_us``: crawler check, visitor, session; the writer's thread does it)
    and storing it (``write_us``). The writer waits (a long flush interval) until
    each loop is over, so the three are timed apart."""
    from penchant import Penchant

    penchant = Penchant(
        database_url=database_url,
        secret_key=SECRET,
        holdout=0.0,
        queue_size=1_000_000,
        batch_size=1_000_000,
        flush_interval=3600.0,
    )
    penchant.init_db()

    settling = [0.0]

    def in_chunks(
        bare: Callable[[int], float], wrapped: Callable[[int], float], requests: int
    ) -> float:
        """Seconds penchant adds per request: bare and wrapped take turns, in chunks
        of about what a server hands its writer each flush interval; the hand-over
        is emptied after each wrapped chunk (timed apart), as the writer's thread
        does, rather than piling up. The median of the chunks' differences: a
        chunk the machine slowed down moves it no more than any other chunk."""
        added: list[float] = []
        chunks = max(1, requests // CHUNK)
        for _ in range(chunks):
            bare_s = bare(CHUNK)
            added.append(wrapped(CHUNK) - bare_s)
            start = time.perf_counter()
            penchant.settle()
            settling[0] += time.perf_counter() - start
        return statistics.median(added)

    def after(requests: int) -> tuple[float, float]:
        """(us per request to make the waiting page views events, us per request to store them)."""
        start = time.perf_counter()
        penchant.settle()
        settled = time.perf_counter()
        penchant.flush(timeout=120.0)
        done = time.perf_counter()
        made, settling[0] = settling[0] + settled - start, 0.0
        return made / requests * 1e6, (done - settled) / requests * 1e6

    try:
        asgi_bare = host_app()
        asgi_wrapped = penchant.asgi(asgi_bare)
        wsgi_wrapped = penchant.wsgi(_bare_wsgi)
        asgi: list[float] = []
        wsgi: list[float] = []
        first: list[float] = []
        asgi_later: list[float] = []
        wsgi_later: list[float] = []
        writes: list[float] = []
        # Warm: every visitor seen once (crawler check and fingerprint caches), writer started.
        asyncio.run(_drive_asgi(asgi_wrapped, VISITORS))
        _drive_wsgi(wsgi_wrapped, VISITORS)
        penchant.flush(timeout=30.0)
        for round_ in range(rounds):
            settling[0] = 0.0
            added = in_chunks(
                lambda k: asyncio.run(_drive_asgi(asgi_bare, k)),
                lambda k: asyncio.run(_drive_asgi(asgi_wrapped, k)),
                n,
            )
            asgi.append(added * 1e6)
            later, write = after(n)
            asgi_later.append(later)
            writes.append(write)
            added = in_chunks(
                lambda k: _drive_wsgi(_bare_wsgi, k), lambda k: _drive_wsgi(wsgi_wrapped, k), n
            )
            wsgi.append(added * 1e6)
            later, write = after(n)
            wsgi_later.append(later)
            writes.append(write)
            # Visitors seen for the first time: crawler check and fingerprint from cold.
            fresh = VISITORS * (2 + round_)
            bare = asyncio.run(_drive_asgi(asgi_bare, VISITORS, first=fresh))
            wrapped = asyncio.run(_drive_asgi(asgi_wrapped, VISITORS, first=fresh))
            later, _ = after(VISITORS)
            first.append((wrapped - bare) * 1e6 + later)
        # The least disturbed round: other processes on the machine only ever add time.
        return {
            "asgi_added_us": round(min(asgi), 1),
            "wsgi_added_us": round(min(wsgi), 1),
            "asgi_deferred_us": round(min(asgi_later), 1),
            "wsgi_deferred_us": round(min(wsgi_later), 1),
            "write_us": round(min(writes), 1),
            "asgi_first_visit_added_us": round(min(first), 1),
        }
    finally:
        penchant.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.overhead", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="no minimal page, one round of shorter runs (under a minute)",
    )
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument(
        "--database-url",
        default=None,
        help="database for penchant and the naive tracker (default: a fresh SQLite file)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        pages, seconds, warmup, rounds, loops = ("template", "recommend"), 2.0, 0.5, 2, 2000
    else:
        pages, seconds, warmup, rounds, loops = PAGES, 3.0, 1.0, 4, 5000
    connections = 16
    use_wrk = shutil.which("wrk") is not None
    measured: dict[str, dict[str, list[tuple[float, float]]]] = {}
    books: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="penchant-bench-") as tmp:
        workdir = Path(tmp)
        script = workdir / "visitors.lua"
        script.write_text(WRK_SCRIPT % (AGENT, VISITORS))

        def load(port: int, secs: float, conns: int) -> float:
            if use_wrk:
                return wrk_load(port, secs, conns, str(script))
            return _load_in_process(port, secs, conns)

        def url(name: str) -> str:
            return args.database_url or f"sqlite:///{workdir / name}.db"

        runs = [
            (page, [start_server(mode, page, url(f"{page}-{mode}"), workdir) for mode in MODES])
            for page in pages
        ]
        runs.append(("wsgi", [start_gunicorn(mode, url(f"wsgi-{mode}")) for mode in MODES[:2]]))
        for page, servers in runs:
            try:
                measured[page] = measure_interleaved(
                    servers,
                    seconds=seconds,
                    warmup=warmup,
                    rounds=rounds,
                    connections=connections,
                    load=load,
                )
            finally:
                stats = {server.mode: server.stop() for server in servers}
            if page != "wsgi":
                books = stats.get("penchant", books)
            if not args.json:
                for mode, values in measured[page].items():
                    figures = ", ".join(f"{r:.0f}/s {c:.0f} us" for r, c in values)
                    print(f"  {page:9s} {mode:9s} {figures}", flush=True)
        micro_url = args.database_url or f"sqlite:///{workdir / 'micro.db'}"
        micro = added_microseconds(micro_url, loops, 3)

    summary: dict[str, Any] = {}
    for page in [*pages, "wsgi"]:
        key = "" if page == "template" else f"{page}_"
        runs_of = measured[page]
        for mode, values in runs_of.items():
            summary[f"{key}{mode}_rps"] = round(statistics.median(r for r, _ in values), 1)
            summary[f"{key}{mode}_cpu_us"] = round(statistics.median(c for _, c in values), 1)
        bare = runs_of["bare"]
        for mode in runs_of:
            if mode == "bare":
                continue
            name = "" if mode == "penchant" else f"{mode}_"
            # Each round's slices ran side by side: the median of the rounds' ratios.
            summary[f"{key}{name}ratio_vs_bare"] = round(
                statistics.median(m[0] / b[0] for m, b in zip(runs_of[mode], bare, strict=True)),
                3,
            )
            # The throughput a CPU-bound server keeps: bare CPU per request over this mode's.
            summary[f"{key}{name}cpu_ratio_vs_bare"] = round(
                statistics.median(b[1] / m[1] for m, b in zip(runs_of[mode], bare, strict=True)),
                3,
            )
    summary.update(micro)
    summary.update(
        {
            "penchant_stored": books.get("stored", 0),
            "penchant_dropped": books.get("dropped_total", 0),
            "load_tool": "wrk" if use_wrk else "python",
            "http": books.get("http", "?"),
            "connections": connections,
            "seconds": seconds,
            "rounds": rounds,
            "visitors": VISITORS,
            "database": (args.database_url or "sqlite").split(":", 1)[0],
            "cpus": os.cpu_count(),
            "load_average": round(os.getloadavg()[0], 2),
        }
    )
    if args.json:
        print(json.dumps(summary))
        return 0
    print()
    print(
        f"uvicorn ({summary['http']}) on loopback, {summary['load_tool']} with {connections} "
        f"connections and {VISITORS} visitors, database {summary['database']}, "
        f"{summary['cpus']} CPUs; the modes' servers take turns, {seconds:.0f} s each, "
        f"{rounds} rounds; ratios are the median of the rounds' side-by-side ratios"
    )
    print(
        f"{'page':10s} {'requests/s: bare':>17s} {'penchant':>9s} {'ratio':>6s} {'naive':>7s} "
        f"{'ratio':>6s} | {'CPU us/request: bare':>20s} {'penchant':>9s} {'ratio':>6s}"
    )
    for page in pages:
        k = "" if page == "template" else f"{page}_"
        print(
            f"{page:10s} {summary[k + 'bare_rps']:17.0f} {summary[k + 'penchant_rps']:9.0f} "
            f"{summary[k + 'ratio_vs_bare']:6.3f} {summary[k + 'naive_rps']:7.0f} "
            f"{summary[k + 'naive_ratio_vs_bare']:6.3f} | {summary[k + 'bare_cpu_us']:20.0f} "
            f"{summary[k + 'penchant_cpu_us']:9.0f} {summary[k + 'cpu_ratio_vs_bare']:6.3f}"
        )
    print(
        f"WSGI (gunicorn, 1 gthread worker, minimal page): bare {summary['wsgi_bare_rps']:.0f}, "
        f"penchant {summary['wsgi_penchant_rps']:.0f} requests/s, "
        f"ratio {summary['wsgi_ratio_vs_bare']:.3f}; CPU per request "
        f"{summary['wsgi_bare_cpu_us']:.0f} against {summary['wsgi_penchant_cpu_us']:.0f} us, "
        f"ratio {summary['wsgi_cpu_ratio_vs_bare']:.3f}"
    )
    print(
        f"penchant's last run: {summary['penchant_stored']} views stored, "
        f"{summary['penchant_dropped']} dropped"
    )
    print(
        f"added per request, adapter called directly: ASGI {micro['asgi_added_us']} us, "
        f"WSGI {micro['wsgi_added_us']} us on the request; then, off it, "
        f"{micro['asgi_deferred_us']} (ASGI) and {micro['wsgi_deferred_us']} us (WSGI) "
        f"to make the view an event and {micro['write_us']} us to store it; a visitor's "
        f"first request (ASGI) {micro['asgi_first_visit_added_us']} us in all"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
