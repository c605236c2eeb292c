"""Visitor identity without a login: the fingerprint and the session id."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from datetime import datetime

__all__ = ["fingerprint", "hash_identifier", "legacy_fingerprint", "session_id", "truncate_ip"]


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
