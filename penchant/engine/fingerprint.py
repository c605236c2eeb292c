"""Visitor identity without a login: the fingerprint and the session id."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache, partial
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from functools import _lru_cache_wrapper

__all__ = [
    "FingerprintCache",
    "fingerprint",
    "hash_identifier",
    "legacy_fingerprint",
    "session_id",
    "truncate_ip",
]


def fingerprint(user_agent: str, ip: str, accept_language: str, *, key: bytes) -> str:
    """Keyed HMAC-SHA256 of ``User-Agent|IP|Accept-Language``, 32 hex characters.

    Without the key, the hash of an IPv4 address and a common browser string
    cannot be reversed by trying every address.
    """
    message = f"{user_agent}|{ip}|{accept_language}".encode("utf-8", "surrogatepass")
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def legacy_fingerprint(user_agent: str, ip: str, accept_language: str) -> str:
    """The original unkeyed MD5 of ``User-Agent|IP|Accept-Language`` (compatibility only)."""
    message = f"{user_agent}|{ip}|{accept_language}".encode("utf-8", "surrogatepass")
    return hashlib.md5(message, usedforsecurity=False).hexdigest()


def hash_identifier(value: str, *, key: bytes) -> str:
    """A keyed hash of a random cookie id, so the stored id is not the cookie."""
    return hmac.new(key, b"cookie|" + value.encode(), hashlib.sha256).hexdigest()[:32]


def session_id(user_id: str, started: datetime, *, key: bytes) -> str:
    """A session id derived from the identity and the session's start (64 hex)."""
    message = f"{user_id}|{started.isoformat()}".encode()
    return hmac.new(key, b"session|" + message, hashlib.sha256).hexdigest()


def truncate_ip(ip: str) -> str:
    """Drop the host part: /24 for IPv4, /48 for IPv6. Unparseable input is kept."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


class FingerprintCache:
    """Fingerprints of recently seen ``(User-Agent, IP, Accept-Language)``, bounded.

    Identifying a returning visitor then costs a lookup instead of an HMAC. Held
    in memory only, per process, like the request itself. The cache serves one
    key at a time: asking for another key empties it, so no fingerprint made with
    an old secret is ever returned (or kept). ``truncate`` drops the IP's host
    part (:func:`truncate_ip`) before hashing; ``legacy`` makes the unkeyed MD5 of
    :func:`legacy_fingerprint` (the key is then ignored).
    """

    def __init__(self, maxsize: int, *, truncate: bool = False, legacy: bool = False) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self._truncate = truncate
        self._legacy = legacy
        self._key: bytes | None = None
        self._lookup: _lru_cache_wrapper[str] | None = None

    def _compute(self, user_agent: str, ip: str, accept_language: str, *, key: bytes) -> str:
        if self._truncate:
            ip = truncate_ip(ip)
        if self._legacy:
            return legacy_fingerprint(user_agent, ip, accept_language)
        return fingerprint(user_agent, ip, accept_language, key=key)

    def for_key(self, key: bytes) -> Callable[[str, str, str], str]:
        """``(user_agent, ip, accept_language) -> fingerprint`` with ``key``, cached."""
        lookup = self._lookup
        if lookup is None or key != self._key:
            lookup = lru_cache(maxsize=self.maxsize)(partial(self._compute, key=key))
            self._lookup, self._key = lookup, key
        return lookup

    def __call__(self, user_agent: str, ip: str, accept_language: str, key: bytes) -> str:
        return self.for_key(key)(user_agent, ip, accept_language)

    def clear(self) -> None:
        self._lookup = None

    def __len__(self) -> int:
        return 0 if self._lookup is None else self._lookup.cache_info().currsize
