"""Real servers with several worker processes on a fresh PostgreSQL database.

gunicorn (WSGI, Flask, forked workers) and uvicorn (ASGI, Starlette, spawned
workers) serve the same site; visitors browse and send beacons over real HTTP;
after SIGTERM every worker has flushed, and the database holds exactly what was
sent, once.
"""

from __future__ import annotations

import html
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
VISITORS = 12
PAGES_EACH = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(port: int, server: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited with {server.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/pid", timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def _command(kind: str, port: int) -> list[str]:
    if kind == "gunicorn":
        return [
            sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
            "--graceful-timeout", "15", "tests.integration.served:wsgi_app",
        ]  # fmt: skip
    return [
        sys.executable, "-m", "uvicorn", "--workers", "2", "--port", str(port),
        "--host", "127.0.0.1", "--log-level", "warning", "tests.integration.served:asgi_app",
    ]  # fmt: skip


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))


@pytest.mark.parametrize("kind", ["gunicorn", "uvicorn"])
def test_workers_record_everything_once_and_flush_on_sigterm(kind: str, pg_url: str) -> None:
    from penchant.storage.store import Store

    Store(pg_url).create_all()
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": pg_url,
        "PENCHANT_SECRET_KEY": "integration-secret",
        "PYTHONPATH": str(ROOT),
    }
    server = subprocess.Popen(_command(kind, port), cwd=ROOT, env=env)
    sent_views = 0
    sent_clicks = 0
    try:
        _wait(port, server)
        base = f"http://127.0.0.1:{port}"
        for v in range(VISITORS):
            # A new connection per request spreads visitors over the workers.
            headers = {"User-Agent": f"Mozilla/5.0 (X11; Linux) Firefox/{100 + v}.0"}
            for n in range(PAGES_EACH):
                reply = httpx.get(f"{base}/procedures/{n + 1}", headers=headers)
                assert reply.status_code == 200
                sent_views += 1
            token = html.unescape(re.search(r'data-token="([^"]+)"', reply.text).group(1))  # type: ignore[union-attr]
            body = {
                "token": token,
                "events": [
                    {
                        "interaction_type": "click",
                        "target_type": "doctor",
                        "target_id": 1,
                        "event_id": uuid.uuid4().hex,
                    }
                ],
            }
            beacon = httpx.post(
                f"{base}/personalization/track-interaction",
                json=body,
                headers={**headers, "Content-Type": "text/plain"},
            )
            assert beacon.status_code == 202
            sent_clicks += 1
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert server.returncode == 0
    engine = _engine(pg_url)
    try:
        with engine.connect() as conn:
            counts = dict(
                conn.execute(
                    sa.text(
                        "SELECT interaction_type, count(*) FROM user_interactions "
                        "GROUP BY interaction_type"
                    )
                ).all()
            )
            duplicates = conn.execute(
                sa.text(
                    "SELECT count(*) FROM (SELECT user_id, event_id FROM user_interactions "
                    "GROUP BY user_id, event_id HAVING count(*) > 1) d"
                )
            ).scalar()
            visitors = conn.execute(
                sa.text("SELECT count(DISTINCT user_id) FROM user_interactions")
            ).scalar()
    finally:
        engine.dispose()
    assert counts == {"view": sent_views, "click": sent_clicks}
    assert duplicates == 0
    assert visitors == VISITORS
