"""Odd values a client controls get a 4xx with a reason, never a 500 or an exception
into the server: a Content-Length that is not a number, a ``?limit=`` that only
looks like one. Both adapters."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest

from tests.harness import BEACON
from tests.security.helpers import SAME_ORIGIN, OpenSite

# Digits to str.isdigit() that int() refuses, or reads as another number.
ODD_NUMBERS = ["²", "1²", "٣", " 12x", "-1", "0x10", "1e3", "", " "]


async def _asgi_page(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _asgi_post(penchant: Any, length: str) -> tuple[int, bytes]:
    app = penchant.asgi(_asgi_page)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "scheme": "http",
        "path": BEACON,
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"text/plain"),
            (b"content-length", length.encode("latin-1")),  # b"\xb2" reads as "²"
        ],
        "client": ("198.51.100.20", 50000),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    return int(sent[0]["status"]), b"".join(m.get("body", b"") for m in sent[1:])


def _wsgi_post(penchant: Any, length: str) -> tuple[int, bytes]:
    def page(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b""]

    app = penchant.wsgi(page)
    started: list[str] = []
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": BEACON,
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "REMOTE_ADDR": "198.51.100.20",
        "CONTENT_TYPE": "text/plain",
        "CONTENT_LENGTH": length,  # PEP 3333: the header's latin-1 bytes as a string
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b"{}"),
    }
    body = b"".join(app(environ, lambda status, headers, exc_info=None: started.append(status)))
    return int(started[0][:3]), body


@pytest.mark.parametrize("length", ["²", "1²", " 12x", "-1", "0x10", "1e3", " "])
def test_a_content_length_that_is_not_a_number_is_a_400(
    adapter: str, length: str, tmp_path: Any, open_site: OpenSite
) -> None:
    _, penchant = open_site(adapter, f"sqlite:///{tmp_path / 'length.db'}")
    status, body = (_asgi_post if adapter == "asgi" else _wsgi_post)(penchant, length)
    assert status == 400
    assert json.loads(body) == {"error": "content-length: not a number"}


@pytest.mark.parametrize("limit", ODD_NUMBERS)
def test_a_limit_that_only_looks_like_a_number_is_a_400(
    adapter: str, limit: str, tmp_path: Any, open_site: OpenSite
) -> None:
    client, _ = open_site(adapter, f"sqlite:///{tmp_path / 'limit.db'}")
    from urllib.parse import quote

    reply = client.get(
        f"/personalization/recommendations/procedures?limit={quote(limit)}", headers=SAME_ORIGIN
    )
    assert reply.status == 400
    assert reply.json() == {"error": "limit: an integer from 1 to 100"}
    assert (
        client.get(
            "/personalization/recommendations/procedures?limit=3", headers=SAME_ORIGIN
        ).status
        == 200
    )
