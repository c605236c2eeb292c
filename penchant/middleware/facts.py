"""Request facts and response values: the only place that reads a protocol's request.

:func:`from_scope` (ASGI) and :func:`from_environ` (WSGI) read the few headers
penchant needs into one :class:`RequestFacts`; everything else works on that
value. Handlers return a plain :class:`Response` that each adapter serializes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "HEADER_KEY_CHARS",
    "RequestFacts",
    "Response",
    "bounded_key",
    "from_environ",
    "from_scope",
    "html_response",
    "json_response",
    "parse_cookies",
    "redirect",
]

#: Longest request-controlled text (User-Agent, Accept-Language) kept as it came
#: in a per-process cache key; longer text is cut and digested by
#: :func:`bounded_key`, so that no entry holds more whatever a client sends. Real
#: browsers' values are a few hundred characters at most.
HEADER_KEY_CHARS = 512
_KEPT_CHARS = 64  # of a longer value, kept before its digest (for a reader of a dump)


def bounded_key(value: str) -> str:
    """``value`` itself when short; else its first 64 characters, ``#`` and a
    digest of the whole (97 characters).

    Never longer than :data:`HEADER_KEY_CHARS`, one key per distinct value, and
    idempotent: cutting a key again changes nothing.
    """
    if len(value) <= HEADER_KEY_CHARS:
        return value
    digest = hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=16)
    return f"{value[:_KEPT_CHARS]}#{digest.hexdigest()}"


@dataclass
class RequestFacts:
    """What penchant reads of a request; headers it does not need are never parsed.

    Treat it as read-only. (Neither frozen nor slotted: :func:`from_scope` and
    :func:`from_environ` fill only the fields a request has, in one step, and the
    class's defaults answer for the rest; it is built for every request.)
    """

    method: str
    path: str
    query: str = ""
    scheme: str = "http"
    host: str = ""
    root: str = ""
    peer: str = ""
    user_agent: str = ""
    accept_language: str = ""
    accept: str = ""
    accept_encoding: str | None = None
    content_type: str = ""
    content_length: str | None = None
    cookie: str = ""
    sec_gpc: str | None = None
    dnt: str | None = None
    sec_fetch_site: str | None = None
    sec_fetch_dest: str | None = None
    sec_fetch_mode: str | None = None
    sec_fetch_user: str | None = None
    origin: str | None = None
    sec_purpose: str | None = None
    purpose: str | None = None
    forwarded_for: str | None = None
    authorization: str | None = None
    if_none_match: str | None = None

    @property
    def secure(self) -> bool:
        return self.scheme in ("https", "wss")

    @property
    def prefetch(self) -> bool:
        """A prefetch or prerender: the visitor has not (yet) seen the page."""
        for value in (self.sec_purpose, self.purpose):
            if value is not None and ("prefetch" in value or "prerender" in value):
                return True
        return False

    @property
    def navigation(self) -> bool:
        """The visitor's own top-level navigation (or a client too old to say).

        Not an image, script or fetch, and not another site's script sending the
        browser from page to page: a navigation from another site (or a sibling
        subdomain) counts only when the visitor's click made it (``Sec-Fetch-User:
        ?1``); from the site itself or a typed address it always does.
        """
        return (
            self.sec_fetch_dest in (None, "document")
            and self.sec_fetch_mode in (None, "navigate")
            and (
                self.sec_fetch_site in (None, "same-origin", "none") or self.sec_fetch_user == "?1"
            )
        )

    def wants_json(self) -> bool:
        accept = self.accept.lower()
        return "application/json" in accept and "text/html" not in accept


@dataclass(frozen=True, slots=True)
class Response:
    """A complete response of one of penchant's own endpoints."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


# ASGI header name -> RequestFacts field; a request's other headers are skipped.
_ASGI_HEADERS: Mapping[bytes, str] = {
    b"user-agent": "user_agent",
    b"accept-language": "accept_language",
    b"accept": "accept",
    b"accept-encoding": "accept_encoding",
    b"content-type": "content_type",
    b"content-length": "content_length",
    b"cookie": "cookie",
    b"sec-gpc": "sec_gpc",
    b"dnt": "dnt",
    b"sec-fetch-site": "sec_fetch_site",
    b"sec-fetch-dest": "sec_fetch_dest",
    b"sec-fetch-mode": "sec_fetch_mode",
    b"sec-fetch-user": "sec_fetch_user",
    b"origin": "origin",
    b"sec-purpose": "sec_purpose",
    b"purpose": "purpose",
    b"x-forwarded-for": "forwarded_for",
    b"authorization": "authorization",
    b"if-none-match": "if_none_match",
    b"host": "host",
}
# Headers that may legally repeat and are then joined.
_JOINED = {"cookie": "; ", "forwarded_for": ", ", "accept": ", "}


_new = object.__new__


def _facts(values: dict[str, Any]) -> RequestFacts:
    """RequestFacts of ``values`` (``method``, ``path``, any other fields) in one step.

    ``__init__`` is skipped: a field the request does not have reads the class default.
    """
    facts: RequestFacts = _new(RequestFacts)
    facts.__dict__ = values
    return facts


def from_scope(scope: Mapping[str, Any]) -> RequestFacts:
    """Facts of an ASGI HTTP scope."""
    client = scope.get("client")
    query = scope.get("query_string", b"")
    if isinstance(query, bytes):
        query = query.decode("latin-1") if query else ""
    values: dict[str, Any] = {
        "method": scope.get("method", "GET"),
        "path": scope.get("path", "/"),
        "query": str(query),
        "scheme": scope.get("scheme", "http"),
        "root": scope.get("root_path", ""),
        "peer": client[0] if client else "",
    }
    for name, raw in scope.get("headers", ()):
        key = _ASGI_HEADERS.get(name)  # ASGI servers send names lowercased
        if key is None:
            continue
        if key not in values:
            values[key] = raw.decode("latin-1")
        elif key in _JOINED:
            values[key] = values[key] + _JOINED[key] + raw.decode("latin-1")
    if "host" not in values:
        server = scope.get("server")
        values["host"] = f"{server[0]}:{server[1]}" if server else ""
    return _facts(values)


_WSGI_HEADERS: Mapping[str, str] = {
    "HTTP_USER_AGENT": "user_agent",
    "HTTP_ACCEPT_LANGUAGE": "accept_language",
    "HTTP_ACCEPT": "accept",
    "HTTP_ACCEPT_ENCODING": "accept_encoding",
    "CONTENT_TYPE": "content_type",
    "CONTENT_LENGTH": "content_length",
    "HTTP_COOKIE": "cookie",
    "HTTP_SEC_GPC": "sec_gpc",
    "HTTP_DNT": "dnt",
    "HTTP_SEC_FETCH_SITE": "sec_fetch_site",
    "HTTP_SEC_FETCH_DEST": "sec_fetch_dest",
    "HTTP_SEC_FETCH_MODE": "sec_fetch_mode",
    "HTTP_SEC_FETCH_USER": "sec_fetch_user",
    "HTTP_ORIGIN": "origin",
    "HTTP_SEC_PURPOSE": "sec_purpose",
    "HTTP_PURPOSE": "purpose",
    "HTTP_X_FORWARDED_FOR": "forwarded_for",
    "HTTP_AUTHORIZATION": "authorization",
    "HTTP_IF_NONE_MATCH": "if_none_match",
}
_WSGI_NAMES = frozenset(_WSGI_HEADERS)


def from_environ(environ: Mapping[str, Any]) -> RequestFacts:
    """Facts of a WSGI environ (PEP 3333: header values are latin-1 strings)."""
    get = environ.get
    values: dict[str, Any] = {
        "method": get("REQUEST_METHOD", "GET"),
        "path": get("PATH_INFO", "") or "/",
        "query": get("QUERY_STRING", ""),
        "scheme": get("wsgi.url_scheme", "http"),
        "root": get("SCRIPT_NAME", ""),
        "peer": get("REMOTE_ADDR", ""),
    }
    for name in _WSGI_NAMES.intersection(environ):
        values[_WSGI_HEADERS[name]] = environ[name]
    if values.get("content_length") == "":
        del values["content_length"]
    host = get("HTTP_HOST")
    if not host:
        host = f"{get('SERVER_NAME', '')}:{get('SERVER_PORT', '')}".rstrip(":")
    values["host"] = host
    return _facts(values)


def parse_cookies(header: str, names: Iterable[str]) -> dict[str, str]:
    """The named cookies of a ``Cookie`` header; the first of a repeated name wins."""
    wanted = set(names)
    found: dict[str, str] = {}
    if not header:
        return found
    for part in header.split(";"):
        name, sep, value = part.partition("=")
        name = name.strip()
        if sep and name in wanted and name not in found:
            found[name] = value.strip().strip('"')
    return found


_NO_STORE = ("Cache-Control", "no-store")


def json_response(
    status: int,
    data: object,
    *,
    headers: Iterable[tuple[str, str]] = (),
) -> Response:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    return Response(
        status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            _NO_STORE,
            ("X-Content-Type-Options", "nosniff"),
            *headers,
        ],
        body,
    )


def html_response(status: int, html: str, *, headers: Iterable[tuple[str, str]] = ()) -> Response:
    body = html.encode("utf-8")
    return Response(
        status,
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
            _NO_STORE,
            ("X-Content-Type-Options", "nosniff"),
            *headers,
        ],
        body,
    )


def redirect(location: str, *, headers: Iterable[tuple[str, str]] = ()) -> Response:
    """303 See Other: after a form POST the browser GETs ``location``."""
    return Response(
        303, [("Location", location), ("Content-Length", "0"), _NO_STORE, *headers], b""
    )
