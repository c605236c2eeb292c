"""Serving the tracking script: the bundle, its response, and its script tag.

Pure functions over bytes read once at import; the middleware turns their values
into HTTP. The script tag points at ``{prefix}/tracker.js?v=<VERSION>``: a
versioned URL can be cached for a year as immutable, and a new bundle gets a new
URL. A request without the current version (an old page, a hand-written tag) gets
a one-day cache instead, so it never pins a stale bundle for long.
"""

from __future__ import annotations

import gzip
import hashlib
from html import escape
from importlib.resources import files

__all__ = [
    "BUNDLE",
    "BUNDLE_GZIP",
    "ETAG",
    "ETAG_GZIP",
    "VERSION",
    "script_tag",
    "tracker_response",
]

BUNDLE: bytes = files(__package__ or "penchant.tracker_js").joinpath("tracker.min.js").read_bytes()
#: gzip -9 with a zero mtime, so the compressed bytes (and their ETag) are stable.
BUNDLE_GZIP: bytes = gzip.compress(BUNDLE, 9, mtime=0)

_DIGEST = hashlib.sha256(BUNDLE).hexdigest()
#: Changes whenever the bundle does; the script tag's ``?v=``.
VERSION: str = _DIGEST[:12]
#: Strong validators, one per representation (identity and gzip).
ETAG: str = f'"{_DIGEST[:32]}"'
ETAG_GZIP: str = f'"{_DIGEST[:32]}-gz"'

_IMMUTABLE = "public, max-age=31536000, immutable"
_SHORT = "public, max-age=86400, stale-while-revalidate=604800"

Headers = list[tuple[str, str]]


def _matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match uses the weak comparison: ``W/`` prefixes are ignored."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


def _accepts_gzip(accept_encoding: str | None) -> bool:
    """True when gzip (or ``*``) is listed with a non-zero quality."""
    if not accept_encoding:
        return False
    qualities: dict[str, float] = {}
    for part in accept_encoding.split(","):
        name, _, params = part.partition(";")
        quality = 1.0
        params = params.strip().lower()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        qualities[name.strip().lower()] = quality
    return qualities.get("gzip", qualities.get("*", 0.0)) > 0


def tracker_response(
    if_none_match: str | None,
    *,
    version: str | None = None,
    accept_encoding: str | None = None,
) -> tuple[int, Headers, bytes]:
    """``(status, headers, body)`` for ``GET {prefix}/tracker.js``.

    ``version`` is the request's ``v`` query parameter: the response is immutable
    only when it names the current bundle. With ``accept_encoding`` allowing gzip,
    the precompressed bundle is sent. 304 when ``if_none_match`` holds the ETag.
    """
    compressed = _accepts_gzip(accept_encoding)
    etag = ETAG_GZIP if compressed else ETAG
    headers: Headers = [
        ("ETag", etag),
        ("Cache-Control", _IMMUTABLE if version == VERSION else _SHORT),
        ("Vary", "Accept-Encoding"),
    ]
    if _matches(if_none_match, etag):
        return 304, headers, b""
    body = BUNDLE_GZIP if compressed else BUNDLE
    headers.append(("Content-Type", "application/javascript; charset=utf-8"))
    headers.append(("X-Content-Type-Options", "nosniff"))
    if compressed:
        headers.append(("Content-Encoding", "gzip"))
    headers.append(("Content-Length", str(len(body))))
    return 200, headers, body


def script_tag(
    *,
    prefix: str,
    token: str,
    off: bool = False,
    allow_webdriver: bool = False,
    nonce: str | None = None,
) -> str:
    """The ``<script>`` tag that loads the tracker; every attribute value is escaped.

    ``off`` tells the script the visitor must not be tracked (the opt-out cookie
    may be HttpOnly, so the script cannot see it); ``allow_webdriver`` lets
    automated browsers be tracked (tests); ``nonce`` is for a Content-Security-Policy.
    """
    attributes = [
        ("src", f"{prefix}/tracker.js?v={VERSION}"),
        ("data-endpoint", f"{prefix}/track-interaction"),
        ("data-token", token),
    ]
    if off:
        attributes.append(("data-off", "1"))
    if allow_webdriver:
        attributes.append(("data-webdriver", "1"))
    if nonce is not None:
        attributes.append(("nonce", nonce))
    rendered = "".join(f' {name}="{escape(value, quote=True)}"' for name, value in attributes)
    return f"<script defer{rendered}></script>"
