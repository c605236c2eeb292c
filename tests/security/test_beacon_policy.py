"""The beacon as an attack surface: cross-site injection, forged tokens, spoofed
addresses, oversized bodies. Refused events are answered like accepted ones and
are never stored."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from typing import Any

import pytest

from penchant import Penchant
from tests.harness import BEACON, all_rows, beacon_event, starlette_site, wsgi_site
from tests.security.helpers import BROWSER, SAME_ORIGIN, OpenSite, page_token


def _beacon(token: str | None, n: int = 2) -> bytes:
    events = [beacon_event(uuid.uuid4().hex, target_id=i + 1) for i in range(n)]
    return json.dumps({"token": token, "events": events}).encode()


def _clicks(database_url: str) -> list[dict[str, Any]]:
    return [
        r for r in all_rows(database_url, "user_interactions") if r["interaction_type"] == "click"
    ]


CROSS_SITE = [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site", "Origin": "https://evil.example"},
    {"Origin": "https://evil.example"},
    {"Origin": "http://testserver.evil.example"},
    {"Origin": "http://evil.example:80"},
]


def test_a_cross_site_beacon_stores_nothing(
    adapter: str, database_url: str, open_site: OpenSite
) -> None:
    client, penchant = open_site(adapter, database_url)
    token = page_token(client)
    for headers in CROSS_SITE:
        base = {"User-Agent": BROWSER, "Accept-Language": "en-GB", "Content-Type": "text/plain"}
        reply = client.post(BEACON, _beacon(token), headers={**base, **headers})
        # The same answer as for stored events: the other site learns nothing.
        assert reply.status == 202, headers
        assert reply.json() == {"accepted": 2, "rejected": []}
    assert penchant.flush(10)
    assert _clicks(database_url) == []
    dropped = penchant.health()["dropped"]
    assert isinstance(dropped, dict) and dropped["cross_site"] == 2 * len(CROSS_SITE)
    # The same beacon from the site's own page is stored: the refusal above was the origin.
    reply = client.post(
        BEACON, _beacon(token), headers={**SAME_ORIGIN, "Content-Type": "text/plain"}
    )
    assert reply.status == 202
    assert penchant.flush(10)
    assert len(_clicks(database_url)) == 2


def test_a_beacon_without_the_visitors_own_token_stores_nothing(
    adapter: str, tmp_path: Any, open_site: OpenSite
) -> None:
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    client, penchant = open_site(adapter, url)
    mine = page_token(client)
    someone_else = page_token(client, {**SAME_ORIGIN, "User-Agent": BROWSER + " Other/1"})
    other_site, _ = open_site(
        adapter, f"sqlite:///{tmp_path / 'other.db'}", secret_key="x-0123456789abcdef"
    )
    foreign = page_token(other_site)
    tampered = mine[:-3] + ("AAA" if not mine.endswith("AAA") else "BBB")
    for token in (None, "", "garbage", someone_else, foreign, tampered):
        reply = client.post(
            BEACON, _beacon(token), headers={**SAME_ORIGIN, "Content-Type": "text/plain"}
        )
        assert reply.status == 202
    assert penchant.flush(10)
    assert _clicks(url) == []
    dropped = penchant.health()["dropped"]
    assert isinstance(dropped, dict) and dropped["forged"] == 12
    client.post(BEACON, _beacon(mine), headers={**SAME_ORIGIN, "Content-Type": "text/plain"})
    assert penchant.flush(10)
    assert len(_clicks(url)) == 2


def _visitor_ids(database_url: str) -> set[str]:
    return {r["user_id"] for r in all_rows(database_url, "user_interactions")}


def test_a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(
    adapter: str, tmp_path: Any, open_site: OpenSite
) -> None:
    url = f"sqlite:///{tmp_path / 'xff.db'}"
    client, penchant = open_site(adapter, url, peer="198.51.100.20")
    for spoofed in ("203.0.113.1", "203.0.113.2", "10.0.0.1, 203.0.113.3", "not an ip"):
        assert client.get("/", headers={**SAME_ORIGIN, "X-Forwarded-For": spoofed}).status == 200
    assert penchant.flush(10)
    assert len(_visitor_ids(url)) == 1


def test_behind_a_trusted_proxy_only_the_rightmost_untrusted_hop_counts(
    adapter: str, tmp_path: Any, open_site: OpenSite
) -> None:
    url = f"sqlite:///{tmp_path / 'proxy.db'}"
    client, penchant = open_site(adapter, url, peer="10.0.0.5", trusted_proxies=["10.0.0.0/8"])
    # One visitor (203.0.113.9) writing anything on the left of the header.
    for forged_left in ("6.6.6.6", "7.7.7.7", "8.8.8.8, 9.9.9.9"):
        header = f"{forged_left}, 203.0.113.9, 10.0.0.7"
        client.get("/", headers={**SAME_ORIGIN, "X-Forwarded-For": header})
    assert penchant.flush(10)
    assert len(_visitor_ids(url)) == 1
    # A different client address behind the proxy is a different visitor (the header is read).
    client.get("/", headers={**SAME_ORIGIN, "X-Forwarded-For": "203.0.113.10"})
    assert penchant.flush(10)
    assert len(_visitor_ids(url)) == 2


# ------------------------------------------------------------ oversized bodies
def _asgi_beacon(app: Any, chunks: int, *, declared: int | None = None) -> tuple[int, int]:
    """POST ``chunks`` chunks of 1 KiB; returns (status, chunks the app consumed)."""
    consumed = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal consumed
        consumed += 1
        return {"type": "http.request", "body": b"x" * 1024, "more_body": consumed < chunks}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"content-type", b"text/plain"), (b"sec-fetch-site", b"same-origin")]
    if declared is not None:
        headers.append((b"content-length", str(declared).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": BEACON,
        "raw_path": BEACON.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("198.51.100.20", 5000),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], consumed


def test_an_oversized_beacon_is_refused_without_reading_the_rest(tmp_path: Any) -> None:
    penchant = Penchant(
        database_url=f"sqlite:///{tmp_path / 'cap.db'}", secret_key="cap-0123456789abcdef"
    )
    app = penchant.asgi(starlette_site())
    cap_chunks = penchant.settings.max_body_bytes // 1024
    status, consumed = _asgi_beacon(app, 1000)
    assert status == 413
    assert consumed <= cap_chunks + 1
    # A declared length over the cap: not one chunk is read.
    status, consumed = _asgi_beacon(app, 1000, declared=1024 * 1000)
    assert (status, consumed) == (413, 0)

    wrapped = penchant.wsgi(wsgi_site())

    class CountingInput(io.BytesIO):
        taken = 0

        def read(self, size: int | None = -1) -> bytes:
            data = super().read(size)
            CountingInput.taken += len(data)
            return data

    def call(environ_extra: dict[str, Any]) -> str:
        statuses: list[str] = []
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": BEACON,
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "80",
            "REMOTE_ADDR": "198.51.100.20",
            "CONTENT_TYPE": "text/plain",
            "HTTP_SEC_FETCH_SITE": "same-origin",
            "wsgi.url_scheme": "http",
            "wsgi.input": CountingInput(b"x" * 1_000_000),
            **environ_extra,
        }
        list(wrapped(environ, lambda status, headers, exc_info=None: statuses.append(status)))
        return statuses[0]

    assert call({"CONTENT_LENGTH": "1000000"}).startswith("413")
    assert CountingInput.taken == 0
    assert call({"wsgi.input_terminated": True}).startswith("413")
    assert CountingInput.taken <= penchant.settings.max_body_bytes + 1
    health = penchant.health()
    penchant.close()
    dropped = health["dropped"]
    assert isinstance(dropped, dict) and dropped["invalid"] == 4


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_the_beacon_takes_only_post(
    adapter: str, method: str, open_site: OpenSite, tmp_path: Any
) -> None:
    client, _ = open_site(adapter, f"sqlite:///{tmp_path / 'm.db'}")
    reply = client.request(method, BEACON, headers=SAME_ORIGIN)
    assert reply.status == 405
