"""Protocol details of each adapter: lifespan, websockets, streaming bodies, the body cap."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from penchant import Penchant
from penchant.middleware.personalization import current_personalization
from tests.harness import BEACON, BROWSER, all_rows, make_penchant


@pytest.fixture
def penchant(sqlite_url: str) -> Iterator[Penchant]:
    instance = make_penchant(sqlite_url, flush_interval=60.0, batch_size=1000)
    yield instance
    instance.close(timeout=5.0)


def test_websockets_pass_through(penchant: Penchant) -> None:
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        text = await websocket.receive_text()
        await websocket.send_text(text.upper())
        await websocket.close()

    app = penchant.asgi(Starlette(routes=[WebSocketRoute("/ws", echo)]))
    with TestClient(app) as client, client.websocket_connect("/ws") as ws:
        ws.send_text("hello")
        assert ws.receive_text() == "HELLO"


def test_lifespan_shutdown_flushes_the_writer(penchant: Penchant, sqlite_url: str) -> None:
    seen: list[object] = []

    async def page(request: Any) -> HTMLResponse:
        seen.append(current_personalization())
        return HTMLResponse("<p>hi</p>")

    app = penchant.asgi(Starlette(routes=[Route("/", page)]))
    with TestClient(app, headers={"User-Agent": BROWSER}) as client:
        client.get("/")
        client.get("/")
        # The flush interval is a minute: nothing is written yet.
        assert all_rows(sqlite_url) == []
    assert len(all_rows(sqlite_url)) == 2
    assert all(p is not None for p in seen)
    assert current_personalization() is None


def _run(app: Any, scope: dict[str, Any], messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drive an ASGI app by hand; returns what it sent. Counts what it received."""
    sent: list[dict[str, Any]] = []
    queue = messages  # consumed in place: the caller sees what was never read

    async def receive() -> dict[str, Any]:
        if queue:
            return queue.pop(0)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def _scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"shop.example"), (b"user-agent", BROWSER.encode()), *headers],
        "client": ("203.0.113.7", 1234),
        "server": ("shop.example", 80),
    }


def _never(scope: Any, receive: Any, send: Any) -> Any:
    raise AssertionError("the host app must not see penchant's own routes")


def test_asgi_stops_reading_a_body_over_the_cap(penchant: Penchant) -> None:
    app = penchant.asgi(_never)
    chunk = b"x" * 4096
    messages = [{"type": "http.request", "body": chunk, "more_body": True} for _ in range(10)]
    sent = _run(app, _scope(BEACON, [(b"content-type", b"text/plain")]), messages)
    assert sent[0]["status"] == 413
    # 8 KB cap: the third chunk crosses it; the seven after it are never read.
    assert len(messages) == 7


def test_asgi_refuses_a_declared_length_over_the_cap_without_reading(penchant: Penchant) -> None:
    app = penchant.asgi(_never)
    messages = [{"type": "http.request", "body": b"{}", "more_body": False}]
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"100000")]
    sent = _run(app, _scope(BEACON, headers), messages)
    assert sent[0]["status"] == 413
    assert len(messages) == 1


def test_asgi_reads_a_body_in_chunks(penchant: Penchant) -> None:
    app = penchant.asgi(_never)
    body = json.dumps({"interaction_type": "view", "target_type": "page"}).encode()
    messages = [
        {"type": "http.request", "body": body[:10], "more_body": True},
        {"type": "http.request", "body": body[10:], "more_body": False},
    ]
    sent = _run(app, _scope(BEACON, [(b"content-type", b"text/plain")]), messages)
    assert sent[0]["status"] == 202


class CountingInput(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.asked = 0

    def read(self, size: int | None = -1) -> bytes:
        self.asked += size if size and size > 0 else 0
        return super().read(size)


def _wsgi(app: Any, environ: dict[str, Any]) -> tuple[str, bytes]:
    status: list[str] = []

    def start_response(s: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        status.append(s)

    body = b"".join(app(environ, start_response))
    return status[0], body


def _environ(body: CountingInput, length: str | None) -> dict[str, Any]:
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": BEACON,
        "QUERY_STRING": "",
        "SERVER_NAME": "shop.example",
        "SERVER_PORT": "80",
        "REMOTE_ADDR": "203.0.113.7",
        "HTTP_USER_AGENT": BROWSER,
        "CONTENT_TYPE": "text/plain",
        "wsgi.input": body,
        "wsgi.url_scheme": "http",
    }
    if length is not None:
        environ["CONTENT_LENGTH"] = length
    return environ


def test_wsgi_refuses_a_declared_length_over_the_cap_without_reading(penchant: Penchant) -> None:
    body = CountingInput(b"x" * 100_000)
    status, _ = _wsgi(penchant.wsgi(_never), _environ(body, "100000"))
    assert status.startswith("413")
    assert body.asked == 0


def test_wsgi_reads_at_most_cap_plus_one_without_a_length(penchant: Penchant) -> None:
    body = CountingInput(b"x" * 100_000)
    environ = {**_environ(body, None), "wsgi.input_terminated": True}
    status, _ = _wsgi(penchant.wsgi(_never), environ)
    assert status.startswith("413")
    assert body.asked == penchant.settings.max_body_bytes + 1


def test_wsgi_lying_length_reads_only_what_was_declared(penchant: Penchant) -> None:
    data = json.dumps({"interaction_type": "view", "target_type": "page"}).encode()
    body = CountingInput(data + b"x" * 50_000)
    status, reply = _wsgi(penchant.wsgi(_never), _environ(body, str(len(data))))
    assert status.startswith("202"), reply
    assert body.asked == len(data)
