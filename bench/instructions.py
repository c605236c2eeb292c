"""Machine instructions per request that penchant adds, counted, not timed.

    python -m bench.instructions [--quick] [--json] [--calls N]

Each step of a page view's path on the request (the adapters and their parts)
runs ``N`` times in a fresh interpreter under Valgrind's cachegrind, and an
empty statement ``N`` times too; the difference over ``N`` is the instructions
one call costs (the setup's own count varies a little from run to run: a few
hundred per call at ``--quick``'s 5,000 calls, fewer at 20,000).
Unlike a time, the count does not move with the machine's load: it is the
figure to judge a change to the hot path by, on a shared machine whose timings
drift by 30% between runs. It is not a time: a cache miss or a branch
mispredicted costs more than an instruction. Needs ``valgrind``
(``apt-get install valgrind``); it runs the code about 50 times slower.

The requests are those of ``bench.overhead``'s in-process figures: a returning
visitor's GET of ``/`` without penchant's cookies, on SQLite, the writer held
off (its work is counted apart, by ``bench.overhead``). With ``--json`` the last
line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from typing import Any

from bench._common import machine

__all__ = ["main"]

# (name, statement): what one call does; "setup" below makes the names they use.
STEPS: tuple[tuple[str, str], ...] = (
    ("wsgi_bare", "wsgi_bare()"),
    ("wsgi_wrapped", "wsgi_wrapped()"),
    ("from_environ", "from_environ(environ)"),
    ("endpoint", "core.endpoint(wsgi_facts)"),
    ("personalization", "Personalization(core, wsgi_facts)"),
    ("bind_unbind", "unbind(bind(None))"),
    ("on_response_start", "core.on_response_start(Personalization(core, wsgi_facts), 200, HTML)"),
    ("asgi_bare", "asgi_bare()"),
    ("asgi_wrapped", "asgi_wrapped()"),
    ("from_scope", "from_scope(scope)"),
)

SETUP = """
import logging, tempfile
logging.disable(logging.CRITICAL)
from penchant import Penchant
from penchant.middleware.facts import from_environ, from_scope
from penchant.middleware.personalization import Personalization, bind, unbind
from bench.overhead import SECRET, _bare_wsgi, _scope, host_app
from bench._common import visitor_agent

workdir = tempfile.mkdtemp(prefix="penchant-instructions-")
penchant = Penchant(
    database_url=f"sqlite:///{workdir}/i.db", secret_key=SECRET, holdout=0.0,
    queue_size=10**7, batch_size=10**6, flush_interval=3600.0,
)
penchant.init_db()
HTML = "text/html; charset=utf-8"
environ = {
    "REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": "",
    "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "REMOTE_ADDR": "127.0.0.1",
    "HTTP_HOST": "127.0.0.1", "HTTP_USER_AGENT": visitor_agent(1),
    "HTTP_ACCEPT_LANGUAGE": "en", "wsgi.url_scheme": "http",
}
wrapped_wsgi = penchant.wsgi(_bare_wsgi)
core = wrapped_wsgi.core
wsgi_facts = from_environ(environ)

def start_response(status, headers, exc_info=None):
    return None

def wsgi_bare():
    for _ in _bare_wsgi(dict(environ), start_response):
        pass

def wsgi_wrapped():
    for _ in wrapped_wsgi(dict(environ), start_response):
        pass

scope = _scope(1)
asgi_app = host_app()
wrapped_asgi = penchant.asgi(asgi_app)

async def receive():
    return {"type": "http.request", "body": b"", "more_body": False}

async def send(message):
    return None

def _drive(app):
    request = dict(scope)
    request["state"] = {}
    try:
        app(request, receive, send).send(None)  # nothing awaits: one step runs it
    except StopIteration:
        pass

def asgi_bare():
    _drive(asgi_app)

def asgi_wrapped():
    _drive(wrapped_asgi)

for _ in range(200):  # warm: caches filled, writer started
    wsgi_wrapped(); asgi_wrapped()
penchant._deferred.reads.clear(); penchant._deferred.later.clear()
"""

_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def _child(statement: str, calls: int) -> None:
    """Run in the interpreter valgrind watches: the setup, then ``calls`` calls."""
    names: dict[str, Any] = {}
    exec(compile(SETUP, "setup", "exec"), names)
    exec(compile(f"for _ in range({calls}):\n    {statement}\n", "step", "exec"), names)
    names["penchant"]._deferred.reads.clear()
    names["penchant"]._deferred.later.clear()


def _count(statement: str, calls: int) -> int:
    env = dict(os.environ, PYTHONHASHSEED="0")  # the same hashes, the same work
    out = subprocess.run(
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            sys.executable,
            "-m",
            "bench.instructions",
            "--child",
            statement,
            "--calls",
            str(calls),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    found = _REFS.search(out.stderr)
    if out.returncode != 0 or found is None:
        raise RuntimeError(f"valgrind failed for {statement!r}: {out.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def measure(calls: int) -> dict[str, int]:
    """Instructions per call of each step (less the loop's own, counted with ``pass``)."""
    base = _count("pass", calls)
    return {name: round((_count(stmt, calls) - base) / calls) for name, stmt in STEPS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="5,000 calls per step")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument("--calls", type=int, default=None, help="calls per step (20,000)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    calls = args.calls or (5_000 if args.quick else 20_000)
    if args.child is not None:
        _child(args.child, calls)
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind not found: apt-get install valgrind", file=sys.stderr)
        return 2
    per_call = measure(calls)
    summary: dict[str, Any] = {
        "calls": calls,
        "instructions": per_call,
        "wsgi_added": per_call["wsgi_wrapped"] - per_call["wsgi_bare"],
        "asgi_added": per_call["asgi_wrapped"] - per_call["asgi_bare"],
    }
    summary.update(machine(postgres=False))
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"instructions per call ({calls} calls per step, cachegrind):")
    for name, _ in STEPS:
        print(f"  {name:20s} {per_call[name]:8d}")
    print(
        f"added by penchant: WSGI {summary['wsgi_added']}, ASGI {summary['asgi_added']} "
        "instructions per request"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
