"""Huge, distinct request headers and paths do not grow a process's memory.

Every per-process cache of the page-view path (fingerprints, the crawler check,
stored paths, encoded paths) is bounded by entries; these tests hold that each
entry is small too, whatever a client sends: its keys are cut or digested.
Measured with tracemalloc, through both adapters, the writer flushed.
"""

from __future__ import annotations

import asyncio
import gc
import io
import tracemalloc
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from penchant import Penchant
from penchant.middleware.facts import HEADER_KEY_CHARS, bounded_key
from tests.harness import small_catalog

REQUESTS = 400
# About 40 KB a request, every one different: what an attacker's client can send.
UA_CHARS, LANGUAGE_CHARS, PATH_CHARS = 20_000, 8000, 12_000
# Bytes kept per request: one bounded entry in each cache (the fingerprint's key,
# two headers cut to 97 characters; the crawler check's key and the stored
# path's, at most 512; the path's stored and encoded forms) and the visitor's
# session: 2.5 to 4 KB whatever the headers' size, under 8 KB with room.
# Before the keys were cut, about 45 KB a request was kept: the headers themselves.
BUDGET = REQUESTS * 8 * 1024


def _hostile(i: int) -> tuple[str, str, str]:
    agent = f"Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0 {i:06d} " + "a" * UA_CHARS
    language = f"en-{i:06d}," + "de;q=0.5," * (LANGUAGE_CHARS // 9)
    path = f"/guide/{i:06d}/" + "b" * PATH_CHARS
    return agent, language, path


def _asgi_driver(penchant: Penchant) -> Callable[[int], None]:
    async def page(scope: Any, receive: Any, send: Any) -> None:
        p = scope["penchant.personalization"]
        body = p.script_tag() if scope["path"].endswith("1") else ""
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/html")],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})

    app = penchant.asgi(page)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    def drive(i: int) -> None:
        agent, language, path = _hostile(i)
        scope = {
            "type": "http",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"testserver"),
                (b"user-agent", agent.encode("latin-1")),
                (b"accept-language", language.encode("latin-1")),
                (b"accept", b"text/html"),
            ],
            "client": ("198.51.100.30", 50000),
            "server": ("testserver", 80),
        }
        asyncio.run(app(scope, receive, send))

    return drive


def _wsgi_driver(penchant: Penchant) -> Callable[[int], None]:
    def page(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        p = environ["penchant.personalization"]
        body = p.script_tag() if environ["PATH_INFO"].endswith("1") else ""
        start_response("200 OK", [("Content-Type", "text/html")])
        return [body.encode()]

    app = penchant.wsgi(page)

    def drive(i: int) -> None:
        agent, language, path = _hostile(i)
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "80",
            "REMOTE_ADDR": "198.51.100.30",
            "HTTP_HOST": "testserver",
            "HTTP_USER_AGENT": agent,
            "HTTP_ACCEPT_LANGUAGE": language,
            "HTTP_ACCEPT": "text/html",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""),
        }
        b"".join(app(environ, lambda status, headers, exc_info=None: None))

    return drive


@pytest.mark.parametrize("adapter", ["asgi", "wsgi"])
def test_huge_distinct_headers_leave_only_bounded_keys_in_memory(
    adapter: str, tmp_path: Path
) -> None:
    penchant = Penchant(
        database_url=f"sqlite:///{tmp_path / 'hostile.db'}",
        secret_key="hostile-headers-tests",
        catalog=small_catalog(),
        url_patterns={"/procedures/{id}": "procedure"},
        flush_interval=60.0,
    )
    penchant.init_db()
    drive = (_asgi_driver if adapter == "asgi" else _wsgi_driver)(penchant)
    try:
        for i in range(50):  # warm up: connections, compiled statements, first batch
            drive(1_000_000 + i)
        assert penchant.flush(10)
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for i in range(REQUESTS):
                drive(i)
            assert penchant.flush(30)
            gc.collect()
            kept = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        health = penchant.health()
        assert (
            health["stored"] >= REQUESTS
        )  # every view was written: the memory was not dropped work
        assert kept < BUDGET, f"{kept / 1e6:.1f} MB kept after {REQUESTS} hostile requests"
    finally:
        penchant.close(timeout=10.0)


def test_bounded_key_keeps_short_values_and_digests_long_ones() -> None:
    assert bounded_key("Mozilla/5.0 Firefox/128.0") == "Mozilla/5.0 Firefox/128.0"
    edge = "x" * HEADER_KEY_CHARS
    assert bounded_key(edge) is edge
    long_a, long_b = "y" * 20_000 + "a", "y" * 20_000 + "b"
    cut_a, cut_b = bounded_key(long_a), bounded_key(long_b)
    # The same small length whatever came in, and still one key per distinct value.
    assert len(cut_a) == len(cut_b) == 64 + 1 + 32
    assert cut_a != cut_b
    assert cut_a.startswith("y" * 64 + "#")
    # Cutting again changes nothing: a key is the same wherever it is made.
    assert bounded_key(cut_a) == cut_a


def test_views_waiting_for_the_writer_hold_bounded_values(tmp_path: Path) -> None:
    """Page views wait in the hand-over for the writer's thread; what waits is
    bounded too. Before, each waiting view held its 15 to 40 KB of headers: a
    full hand-over (10,000 views) held 150 MB or more under a flood."""
    waiting = 200
    penchant = Penchant(
        database_url=f"sqlite:///{tmp_path / 'waiting.db'}",
        secret_key="hostile-headers-tests",
        catalog=small_catalog(),
        url_patterns={"/procedures/{id}": "procedure"},
        flush_interval=60.0,  # the writer waits: the views stay handed over
        batch_size=100_000,
        queue_size=100_000,
    )
    penchant.init_db()
    drive = _asgi_driver(penchant)
    try:
        for i in range(20):
            drive(2_000_000 + i)
        assert penchant.flush(10)
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for i in range(waiting):
                drive(i)
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert penchant.health()["stored"] < 20 + waiting  # they are still waiting
        assert held < waiting * 2 * 1024, f"{held / waiting:.0f} bytes held per waiting view"
        assert penchant.flush(30)
        assert penchant.health()["stored"] == 20 + waiting
    finally:
        penchant.close(timeout=10.0)
