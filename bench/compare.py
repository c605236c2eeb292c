"""penchant now against penchant at another commit, side by side under one load.

    python -m bench.compare REF [--page template|recommend|wsgi] [--rounds N] [--json]

Starts three servers of one page at once: the bare app, penchant as checked out,
and penchant at ``REF`` (a git worktree made for the run and removed after it).
They take turns under wrk, a slice of 3 s each, the order turning round each
round, as in ``bench.overhead``; each ratio is the median of the rounds'
side-by-side ratios against the bare server. On a shared machine whose speed
drifts by the minute, only servers measured in the same sitting compare: this is
how a change to the hot path is judged. ``--page wsgi`` runs the minimal page
under gunicorn. Loopback only; about ``rounds`` x 12 s plus start-up.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import overhead
from bench._common import AGENT, free_port, wait_for_port

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
SLICE = 3.0
CONNECTIONS = 16


def _start(page: str, mode: str, root: Path, label: str, workdir: Path) -> overhead.Server:
    """A server of ``page`` in ``mode`` running the code under ``root``."""
    port = free_port()
    url = f"sqlite:///{workdir / label}.db"
    if page == "wsgi":
        command = [
            *(sys.executable, "-m", "gunicorn", "--workers", "1", "--worker-class", "gthread"),
            *("--threads", "4", "--bind", f"127.0.0.1:{port}", "--log-level", "warning"),
            f"bench.overhead:make_wsgi({mode!r}, {url!r})",
        ]
        process = subprocess.Popen(command, cwd=root)
        return overhead.Server(label, process, port, None, signal.SIGTERM)
    stats = workdir / f"{label}.json"
    code = (
        f"import bench.overhead as b; b.serve({mode!r}, {page!r}, {port}, {url!r}, {str(stats)!r})"
    )
    # The working directory comes first on sys.path: the worktree's penchant is imported.
    process = subprocess.Popen([sys.executable, "-c", code], cwd=root)
    return overhead.Server(label, process, port, stats)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    parser.add_argument("ref", help="the commit to compare with (e.g. HEAD~1)")
    parser.add_argument("--page", choices=("template", "recommend", "wsgi"), default="template")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        parser.error("needs wrk (apt-get install wrk)")
    workdir = Path(tempfile.mkdtemp(prefix="penchant-compare-"))
    tree = workdir / "ref"
    subprocess.run(
        ["git", "worktree", "add", "--detach", "-q", str(tree), args.ref], cwd=ROOT, check=True
    )
    servers: list[overhead.Server] = []
    try:
        servers = [
            _start(args.page, "bare", ROOT, "bare", workdir),
            _start(args.page, "penchant", ROOT, "now", workdir),
            _start(args.page, "penchant", tree, "ref", workdir),
        ]
        script = workdir / "visitors.lua"
        script.write_text(overhead.WRK_SCRIPT % (AGENT, overhead.VISITORS))
        for server in servers:
            wait_for_port(server.port)
            overhead._each_visitor_once(server.port)
            overhead.wrk_load(server.port, 2.0, CONNECTIONS, str(script))
        runs: dict[str, list[tuple[float, float]]] = {s.mode: [] for s in servers}
        for round_ in range(args.rounds):
            for server in servers if round_ % 2 == 0 else servers[::-1]:
                os.sync()
                before = server.cpu_seconds()
                rps = overhead.wrk_load(server.port, SLICE, CONNECTIONS, str(script))
                if server.mode != "bare":
                    time.sleep(overhead.SETTLE)  # the writer's last batch counts here
                cpu = (server.cpu_seconds() - before) / max(1.0, rps * SLICE) * 1e6
                runs[server.mode].append((rps, cpu))
                if not args.json:
                    print(f"  round {round_ + 1} {server.mode:4s} {rps:7.0f}/s {cpu:5.0f} us")
    finally:
        for server in servers:
            server.stop()
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
        shutil.rmtree(workdir, ignore_errors=True)
    out: dict[str, Any] = {"page": args.page, "ref": args.ref, "rounds": args.rounds}
    bare = runs["bare"]
    for label in ("now", "ref"):
        mine = runs[label]
        out[f"{label}_ratio_vs_bare"] = round(
            statistics.median(m[0] / b[0] for m, b in zip(mine, bare, strict=True)), 3
        )
        out[f"{label}_cpu_ratio_vs_bare"] = round(
            statistics.median(b[1] / m[1] for m, b in zip(mine, bare, strict=True)), 3
        )
        out[f"{label}_cpu_us"] = round(statistics.median(m[1] for m in mine), 1)
    out["bare_cpu_us"] = round(statistics.median(b[1] for b in bare), 1)
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"{args.page}: now {out['now_ratio_vs_bare']} of bare "
            f"(CPU {out['now_cpu_ratio_vs_bare']}, "
            f"{out['now_cpu_us']} us), {args.ref} {out['ref_ratio_vs_bare']} "
            f"(CPU {out['ref_cpu_ratio_vs_bare']}, {out['ref_cpu_us']} us); "
            f"bare {out['bare_cpu_us']} us of CPU per request"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
