"""Fingerprints, cookie and session hashes as exact values, and the cache's bounds."""

from __future__ import annotations

from datetime import datetime

import pytest

from penchant.engine.fingerprint import (
    FingerprintCache,
    fingerprint,
    hash_identifier,
    legacy_fingerprint,
    session_id,
    truncate_ip,
)

KEY = b"k" * 32
# A User-Agent with a lone surrogate: a header decoded with "surrogateescape" can hold one.
LONE_SURROGATE_UA = "Agent\ud800"


@pytest.mark.parametrize(
    ("user_agent", "ip", "language", "expected"),
    [
        # hmac.new(b"k" * 32, b"Mozilla/5.0|203.0.113.7|en-GB", sha256).hexdigest()[:32]
        ("Mozilla/5.0", "203.0.113.7", "en-GB", "65c5ed3a294fb20c52a8955576d6ad57"),
        # the message's UTF-8 bytes keep the surrogate as b"\xed\xa0\x80"
        (LONE_SURROGATE_UA, "203.0.113.7", "fr", "101f622274cce1307698c2c54e442422"),
    ],
)
def test_keyed_fingerprint_exact_value(
    user_agent: str, ip: str, language: str, expected: str
) -> None:
    """The keyed fingerprint is a fixed value, a lone surrogate included, never an error."""
    assert fingerprint(user_agent, ip, language, key=KEY) == expected


@pytest.mark.parametrize(
    ("user_agent", "ip", "language", "expected"),
    [
        # md5(b"Mozilla/5.0|203.0.113.7|en-GB")
        ("Mozilla/5.0", "203.0.113.7", "en-GB", "afe1bb9424187160fa711cab28a8347e"),
        # md5(b"Agent\xed\xa0\x80|203.0.113.7|fr")
        (LONE_SURROGATE_UA, "203.0.113.7", "fr", "7340b2e21538aa06fd392558496b8670"),
    ],
)
def test_legacy_fingerprint_exact_value(
    user_agent: str, ip: str, language: str, expected: str
) -> None:
    """The legacy MD5 fingerprint is a fixed value, a lone surrogate included."""
    assert legacy_fingerprint(user_agent, ip, language) == expected


def test_cookie_identifier_exact_value() -> None:
    """A cookie id hashes as HMAC-SHA256 of ``cookie|<id>``, 32 hex characters."""
    # hmac.new(b"k" * 32, b"cookie|abc123", sha256).hexdigest()[:32]
    assert hash_identifier("abc123", key=KEY) == "9491c7c2796a75d665db41273941f9d6"


def test_session_id_exact_value() -> None:
    """A session id is HMAC-SHA256 of ``session|<user>|<start isoformat>``, 64 hex."""
    # hmac.new(b"k" * 32, b"session|u1|2026-01-02T03:04:05", sha256).hexdigest()
    assert session_id("u1", datetime(2026, 1, 2, 3, 4, 5), key=KEY) == (
        "f8c53f3f146a573e72c9e90fcd9ff2a72c0bad515cd76aa4475e0af299a4018a"
    )


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("203.0.113.255", "203.0.113.0"),
        ("10.1.2.3", "10.1.2.0"),
        # bit 49 set: a /48 drops it, a /49 would keep it
        ("2001:db8:1:8000::1", "2001:db8:1::"),
        ("2001:db8:1:ffff:ffff::", "2001:db8:1::"),
        ("::1", "::"),
        ("", ""),
        ("300.1.1.1", "300.1.1.1"),
    ],
)
def test_truncate_ip_keeps_the_network_part(ip: str, expected: str) -> None:
    """IPv4 keeps its /24 and IPv6 its /48; what is not an address is kept as given."""
    assert truncate_ip(ip) == expected


@pytest.mark.parametrize("maxsize", [0, -1])
def test_cache_refuses_a_size_below_one(maxsize: int) -> None:
    """A cache that could hold nothing is a configuration error, said exactly."""
    with pytest.raises(ValueError) as info:
        FingerprintCache(maxsize)
    assert str(info.value) == "maxsize must be at least 1"


def test_cache_of_one_holds_the_latest_fingerprint() -> None:
    """A cache of size 1 works: it holds one fingerprint, the value unchanged."""
    cache = FingerprintCache(1)
    assert cache.maxsize == 1
    assert cache("Mozilla/5.0", "203.0.113.7", "en-GB", KEY) == "65c5ed3a294fb20c52a8955576d6ad57"
    assert len(cache) == 1
    cache("Mozilla/5.0", "203.0.113.8", "en-GB", KEY)
    assert len(cache) == 1


def test_cache_length_is_zero_when_new_and_after_clear() -> None:
    """An unused or cleared cache holds nothing, and serves again after clearing."""
    cache = FingerprintCache(4)
    assert len(cache) == 0
    cache("Mozilla/5.0", "203.0.113.7", "en-GB", KEY)
    cache("Mozilla/5.0", "203.0.113.7", "en-GB", KEY)
    assert len(cache) == 1
    cache.clear()
    assert len(cache) == 0
    assert cache("Mozilla/5.0", "203.0.113.7", "en-GB", KEY) == "65c5ed3a294fb20c52a8955576d6ad57"
    assert len(cache) == 1


def test_cache_empties_when_the_key_changes() -> None:
    """Asking with another key drops every fingerprint made with the old one."""
    cache = FingerprintCache(4)
    cache("a", "203.0.113.7", "en", KEY)
    cache("b", "203.0.113.7", "en", KEY)
    assert len(cache) == 2
    assert cache("Mozilla/5.0", "203.0.113.7", "en-GB", b"") != cache(
        "Mozilla/5.0", "203.0.113.7", "en-GB", KEY
    )
    assert len(cache) == 1
