from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from penchant.engine.fingerprint import (
    fingerprint,
    hash_identifier,
    legacy_fingerprint,
    session_id,
    truncate_ip,
)

UA = "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0"


def test_legacy_md5_matches_a_hand_computed_value() -> None:
    # md5("a|1.2.3.4|en") computed independently: printf 'a|1.2.3.4|en' | md5sum
    assert legacy_fingerprint("a", "1.2.3.4", "en") == "fd7b1b478342bcab5ada8c5803aa7e0c"
    assert (
        legacy_fingerprint(UA, "10.0.0.1", "de")
        == hashlib.md5(f"{UA}|10.0.0.1|de".encode()).hexdigest()
    )


def test_keyed_fingerprint_is_hmac_sha256_truncated() -> None:
    key = b"secret"
    expected = hmac.new(key, f"{UA}|10.0.0.1|de".encode(), hashlib.sha256).hexdigest()[:32]
    assert fingerprint(UA, "10.0.0.1", "de", key=key) == expected
    assert len(expected) == 32


def test_keyed_fingerprint_depends_on_every_part_and_the_key() -> None:
    base = fingerprint(UA, "10.0.0.1", "de", key=b"k1")
    assert fingerprint(UA, "10.0.0.2", "de", key=b"k1") != base
    assert fingerprint(UA, "10.0.0.1", "en", key=b"k1") != base
    assert fingerprint(UA + "x", "10.0.0.1", "de", key=b"k1") != base
    assert fingerprint(UA, "10.0.0.1", "de", key=b"k2") != base
    assert fingerprint(UA, "10.0.0.1", "de", key=b"k1") == base


def test_cookie_identifier_is_hashed_not_stored() -> None:
    hashed = hash_identifier("cookie-value", key=b"k")
    assert len(hashed) == 32 and "cookie-value" not in hashed
    assert hashed != hash_identifier("cookie-value", key=b"other")


def test_session_id_depends_on_start() -> None:
    a = session_id("v", datetime(2026, 1, 1, 10), key=b"k")
    b = session_id("v", datetime(2026, 1, 1, 11), key=b"k")
    assert a != b and len(a) == 64


def test_truncate_ip() -> None:
    assert truncate_ip("203.0.113.77") == "203.0.113.0"
    assert truncate_ip("2001:db8:abcd:12:1:2:3:4") == "2001:db8:abcd::"
    assert truncate_ip("not-an-ip") == "not-an-ip"
