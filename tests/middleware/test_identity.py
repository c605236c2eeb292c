"""Identity pieces: proxies, origin checks, URL patterns, signatures with a frozen clock."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from penchant.engine.consent import CONSENT_MAX_AGE
from penchant.middleware.facts import RequestFacts, from_environ, from_scope, parse_cookies
from penchant.middleware.identity import (
    PAGE_TOKEN_MAX_AGE,
    ClientAddress,
    Signers,
    UrlPatterns,
    cookie_header,
    is_bot,
    same_origin,
)
from tests.harness import Clock

START = datetime(2026, 1, 1, 12, 0, 0)


def test_client_address_without_trusted_proxies_is_the_peer() -> None:
    address = ClientAddress(())
    assert address("203.0.113.9", "1.1.1.1") == "203.0.113.9"


def test_client_address_through_trusted_proxies() -> None:
    address = ClientAddress(("10.0.0.0/8", "192.168.1.1"))
    assert address("10.1.2.3", "198.51.100.4") == "198.51.100.4"
    assert address("10.1.2.3", "6.6.6.6, 198.51.100.4, 192.168.1.1") == "198.51.100.4"
    assert address("203.0.113.9", "198.51.100.4") == "203.0.113.9"  # untrusted peer
    assert address("10.1.2.3", "10.0.0.2, 10.0.0.3") == "10.0.0.2"  # all trusted: leftmost
    assert address("10.1.2.3", "junk, 10.0.0.3") == "10.0.0.3"
    assert address("10.1.2.3", "junk") == "10.1.2.3"
    assert address("10.1.2.3", None) == "10.1.2.3"
    assert address("10.1.2.3", "2001:db8::1") == "2001:db8::1"


@pytest.mark.parametrize(
    ("site", "origin", "host", "allowed", "expected"),
    [
        ("same-origin", None, "shop.example", (), True),
        ("none", None, "shop.example", (), True),
        ("cross-site", None, "shop.example", (), False),
        ("same-site", None, "shop.example", (), False),
        (None, "https://shop.example", "shop.example", (), True),
        (None, "https://shop.example", "shop.example:443", (), True),
        (None, "http://shop.example:8000", "shop.example:8000", (), True),
        (None, "https://evil.example", "shop.example", (), False),
        ("same-site", "https://www.shop.example", "shop.example", ("www.shop.example",), True),
        (None, "null", "shop.example", (), False),
        (None, None, "shop.example", (), True),
    ],
)
def test_same_origin(
    site: str | None, origin: str | None, host: str, allowed: tuple[str, ...], expected: bool
) -> None:
    assert same_origin(site, origin, host, allowed) is expected


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("https://shop.example", True),
        ("http://shop.example", False),  # the same host over plain HTTP: another origin
        ("http://shop.example:443", False),
        ("ws://shop.example", False),
        ("https://www.shop.example", True),  # allowed_hosts
        ("http://www.shop.example", False),
    ],
)
def test_same_origin_on_a_secure_request_wants_an_https_origin(origin: str, expected: bool) -> None:
    allowed = ("www.shop.example",)
    assert same_origin(None, origin, "shop.example", allowed, secure=True) is expected


def test_url_patterns() -> None:
    patterns = UrlPatterns((("/procedures/{id}", "procedure"), ("/d/{id}/profile", "doctor")))
    assert patterns.match("/procedures/12") == ("procedure", 12)
    assert patterns.match("/procedures/12/") == ("procedure", 12)
    assert patterns.match("/d/7/profile") == ("doctor", 7)
    assert patterns.match("/procedures/x") is None
    assert patterns.match("/procedures/12/reviews") is None
    assert patterns.match("/procedures/99999999999") is None
    assert UrlPatterns(()).match("/procedures/1") is None
    with pytest.raises(ValueError, match="url_patterns"):
        UrlPatterns((("/procedures", "procedure"),))


def test_page_tokens_bind_the_visitor_and_expire() -> None:
    clock = Clock(START)
    signers = Signers((b"new", b"old"), clock)
    token = signers.page_token("a" * 32)
    assert signers.check_page_token(token, "a" * 32)
    assert not signers.check_page_token(token, "b" * 32)
    assert not signers.check_page_token(token, None)
    assert not signers.check_page_token(token[:-2] + "xx", "a" * 32)
    assert not signers.check_page_token("", "a" * 32)
    clock.now += timedelta(seconds=PAGE_TOKEN_MAX_AGE + 1)
    assert not signers.check_page_token(token, "a" * 32)


def test_secret_rotation_keeps_old_signatures_valid() -> None:
    clock = Clock(START)
    old = Signers((b"old",), clock)
    rotated = Signers((b"new", b"old"), clock)
    token = old.page_token("v" * 32)
    consent = old.consent_value("visitor-1")
    assert rotated.check_page_token(token, "v" * 32)
    assert rotated.read_consent(consent, CONSENT_MAX_AGE) == ("valid", "visitor-1")
    # New signatures use the newest key: a server knowing only the old one rejects them.
    assert not old.check_page_token(rotated.page_token("v" * 32), "v" * 32)


def test_consent_cookie_valid_tampered_expired() -> None:
    clock = Clock(START)
    signers = Signers((b"k",), clock)
    value = signers.consent_value("visitor-1")
    assert signers.read_consent(value, CONSENT_MAX_AGE) == ("valid", "visitor-1")
    assert signers.read_consent(None, CONSENT_MAX_AGE) == ("absent", None)
    assert signers.read_consent(value[:-1] + ("A" if value[-1] != "A" else "B"), 60)[0] == (
        "invalid"
    )
    assert signers.read_consent("garbage", 60) == ("invalid", None)
    clock.now += timedelta(seconds=CONSENT_MAX_AGE + 1)
    assert signers.read_consent(value, CONSENT_MAX_AGE) == ("invalid", None)


def test_cookie_headers() -> None:
    secure = cookie_header("penchant_consent", "v", secure=True, max_age=100)
    assert secure.startswith("__Host-penchant_consent=v;")
    for part in ("Path=/", "Max-Age=100", "SameSite=Lax", "HttpOnly", "Secure"):
        assert part in secure
    assert "Domain" not in secure
    plain = cookie_header("penchant_optout", "1", secure=False, max_age=100)
    assert plain.startswith("penchant_optout=1;")
    assert "Secure" not in plain
    cleared = cookie_header("penchant_optout", "", secure=False, max_age=0)
    assert "Max-Age=0" in cleared
    assert "Expires=Thu, 01 Jan 1970" in cleared


def test_parse_cookies() -> None:
    header = 'a=1; penchant_optout=1; penchant_optout=0; junk; x="q"'
    assert parse_cookies(header, ("penchant_optout", "x", "missing")) == {
        "penchant_optout": "1",
        "x": "q",
    }
    assert parse_cookies("", ("a",)) == {}


def test_bots() -> None:
    assert is_bot("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
    assert is_bot("python-requests/2.31")
    assert not is_bot("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0")
    assert not is_bot("")


def test_facts_from_both_protocols_agree() -> None:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/p",
        "query_string": b"a=1",
        "scheme": "https",
        "root_path": "",
        "client": ("198.51.100.3", 5000),
        "server": ("shop.example", 443),
        "headers": [
            (b"host", b"shop.example"),
            (b"user-agent", b"UA"),
            (b"accept-language", b"fr"),
            (b"cookie", b"a=1"),
            (b"cookie", b"b=2"),
            (b"sec-gpc", b"1"),
            (b"content-length", b"12"),
            (b"x-unrelated", b"skip"),
        ],
    }
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/p",
        "QUERY_STRING": "a=1",
        "wsgi.url_scheme": "https",
        "SCRIPT_NAME": "",
        "REMOTE_ADDR": "198.51.100.3",
        "HTTP_HOST": "shop.example",
        "HTTP_USER_AGENT": "UA",
        "HTTP_ACCEPT_LANGUAGE": "fr",
        "HTTP_COOKIE": "a=1; b=2",
        "HTTP_SEC_GPC": "1",
        "CONTENT_LENGTH": "12",
        "HTTP_X_UNRELATED": "skip",
    }
    assert from_scope(scope) == from_environ(environ)
    facts = from_scope(scope)
    assert facts.secure
    assert facts.cookie == "a=1; b=2"
    assert RequestFacts("GET", "/", sec_purpose="prefetch").prefetch
    assert not RequestFacts("GET", "/").prefetch


def test_any_changed_character_breaks_a_signature() -> None:
    signers = Signers((b"k",), Clock(START))
    for n in range(64):
        value = signers.consent_value(f"visitor-{n}")
        token = signers.page_token(f"{n:032x}")
        # Unpadded base64 ends with unused bits: changing only those must not pass either.
        for last in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef":
            if last != value[-1]:
                assert signers.read_consent(value[:-1] + last, 60)[0] == "invalid"
            if last != token[-1]:
                assert not signers.check_page_token(token[:-1] + last, f"{n:032x}")
