"""Real uvicorn processes serving ``tests.reliability.served_app`` on loopback ports."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

__all__ = ["UvicornServer", "free_port", "uvicorn_servers"]

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class UvicornServer:
    """One ``uvicorn`` process; ``stop()`` sends SIGTERM, as a process manager would."""

    def __init__(
        self,
        *,
        database_url: str,
        settings: Mapping[str, Any],
        log_path: Path,
        secret_key: str = "served-app-secret",
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "PENCHANT_SECRET_KEY": secret_key,
            "PENCHANT_TEST_SETTINGS": json.dumps(dict(settings)),
            "PYTHONPATH": str(ROOT),
        }
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "tests.reliability.served_app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--lifespan",
                "on",
                "--no-access-log",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/api/ping", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"uvicorn on port {self.port} not ready:\n{self.log()}")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait for the exit; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._log.close()

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def uvicorn_servers(
    count: int,
    *,
    database_url: str,
    settings: Mapping[str, Any],
    log_dir: Path,
    tag: str = "server",
) -> Iterator[list[UvicornServer]]:
    """``count`` servers started together and ready; killed on the way out if still up."""
    servers = [
        UvicornServer(
            database_url=database_url,
            settings=settings,
            log_path=log_dir / f"{tag}-{i}.log",
        )
        for i in range(count)
    ]
    try:
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.kill()
