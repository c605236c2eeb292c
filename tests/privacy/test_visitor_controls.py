"""What a visitor can do: opt out, opt in, see their state, erase, export (both adapters)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from tests.harness import Client, flushed_rows

P = "/personalization"
JSON = {"Accept": "application/json"}


def _click(site: Client, target_id: int = 5) -> None:
    site.beacon(
        {
            "interaction_type": "click",
            "target_type": "procedure",
            "target_id": target_id,
            "event_id": uuid.uuid4().hex,
        }
    )


def _cookie(reply_cookies: list[str], name: str) -> str:
    (found,) = [c for c in reply_cookies if c.split("=", 1)[0] == name]
    return found


def test_opt_out_erases_and_stops_everything(site: Client, sqlite_url: str) -> None:
    site.get("/procedures/1")
    _click(site)
    assert flushed_rows(site, sqlite_url) != []
    reply = site.post(f"{P}/opt-out", headers={**JSON, "Origin": site.origin})
    assert reply.status == 200
    assert reply.json()["tracking"] is False
    assert reply.json()["erased"] >= 3
    cookie = _cookie(reply.set_cookies, "penchant_optout")
    for part in ("penchant_optout=1", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert part in cookie
    max_age = int(re.search(r"Max-Age=(\d+)", cookie).group(1))  # type: ignore[union-attr]
    assert 0 < max_age <= 396 * 86400
    assert flushed_rows(site, sqlite_url) == []
    # The client keeps the cookie: nothing more is recorded, content is not personalized.
    page = site.get("/procedures/2")
    assert 'data-off="1"' in page.text
    _click(site, 6)
    assert "tracked False" in site.post("/form", body="").text
    recs = site.get(f"{P}/recommendations/procedures").json()
    assert recs["personalized"] is False
    assert flushed_rows(site, sqlite_url) == []
    state = site.get(f"{P}/privacy", headers=JSON).json()
    assert state["opted_out"] is True
    assert state["reason"] == "opted_out"
    # Opting back in reverses it.
    back = site.post(f"{P}/opt-in", headers={**JSON, "Origin": site.origin})
    assert back.status == 200
    assert _cookie(back.set_cookies, "penchant_optout").startswith("penchant_optout=;")
    site.get("/procedures/2")
    assert len(flushed_rows(site, sqlite_url)) == 1


def test_the_privacy_page_works_without_javascript(site: Client, sqlite_url: str) -> None:
    page = site.get(f"{P}/privacy")
    assert page.status == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "<script" not in page.text
    actions = re.findall(r'<form method="post" action="([^"]+)"', page.text)
    assert f"{P}/opt-out?next={P}/privacy" in [a.replace("&amp;", "&") for a in actions]
    site.get("/procedures/1")
    # A plain form post: 303 back to the privacy page, which now says opted out.
    reply = site.post(f"{P}/opt-out?next={P}/privacy", headers={"Accept": "text/html"})
    assert reply.status == 303
    assert reply.headers["location"] == f"{P}/privacy"
    assert "you opted out" in site.get(f"{P}/privacy").text
    assert flushed_rows(site, sqlite_url) == []


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example", "/\\evil"])
def test_form_redirects_stay_on_the_site(site: Client, target: str) -> None:
    reply = site.post(f"{P}/opt-out?next={target}", headers={"Accept": "text/html"})
    assert reply.status == 303
    assert reply.headers["location"] == f"{P}/privacy"


@pytest.mark.parametrize("target", ["/%C4%81", "/%E2%80%A8", "/%00", "/%0B", "/%09/evil.example"])
def test_form_redirects_are_valid_headers(site: Client, target: str) -> None:
    reply = site.post(f"{P}/opt-out?next={target}", headers={"Accept": "text/html"})
    assert reply.status == 303
    location = reply.headers["location"]
    assert location.startswith("/") and not location.startswith("//")
    assert location.isascii() and location.isprintable()


def test_cross_site_posts_are_refused(site: Client) -> None:
    for path in ("/opt-out", "/opt-in", "/my-data/delete"):
        reply = site.post(f"{P}{path}", headers={"Sec-Fetch-Site": "cross-site"})
        assert reply.status == 403
        assert reply.set_cookies == []
    refused = site.delete(f"{P}/my-data", headers={"Origin": "https://evil.example"})
    assert refused.status == 403


def test_erase_keeps_tracking_on(site: Client, sqlite_url: str) -> None:
    site.get("/procedures/1")
    _click(site)
    reply = site.delete(f"{P}/my-data")
    assert reply.status == 200
    assert reply.json()["erased"] >= 3
    assert flushed_rows(site, sqlite_url) == []
    form = site.post(f"{P}/my-data/delete", headers={"Accept": "text/html"})
    assert form.status == 303
    site.get("/procedures/2")
    assert len(flushed_rows(site, sqlite_url)) == 1


def test_export_is_off_for_a_fingerprint_identity(site: Client) -> None:
    site.get("/procedures/1")
    reply = site.get(f"{P}/my-data")
    assert reply.status == 403
    assert "operator" in reply.json()["error"]
    assert site.get(f"{P}/privacy", headers=JSON).json()["export"] is False


def test_export_with_fingerprint_when_the_site_allows_it(
    host: str, sqlite_url: str, open_site: Callable[..., Client]
) -> None:
    site = open_site(host, sqlite_url, export_with_fingerprint=True)
    site.get("/procedures/1")
    reply = site.get(f"{P}/my-data")
    assert reply.status == 200
    assert "attachment" in reply.headers["content-disposition"]
    (entry,) = reply.json()["interactions"]
    assert (entry["target_type"], entry["target_id"]) == ("procedure", 1)


def test_opt_in_mode_consent_flow(
    host: str, sqlite_url: str, open_site: Callable[..., Client]
) -> None:
    site = open_site(host, sqlite_url, consent="opt-in")
    site.get("/procedures/1")
    assert flushed_rows(site, sqlite_url) == []
    assert site.get(f"{P}/my-data").status == 404
    state = site.get(f"{P}/privacy", headers=JSON).json()
    assert (state["tracking"], state["reason"]) == (False, "no_consent")
    assert "Allow personalization" in site.get(f"{P}/privacy").text
    # Before consent, recommendations are contextual/popular, never tied to the visitor.
    assert site.get(f"{P}/recommendations/procedures").json()["personalized"] is False

    consent = site.post(f"{P}/opt-in", headers={**JSON, "Origin": site.origin})
    cookie = _cookie(consent.set_cookies, "penchant_consent")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    site.get("/procedures/2")
    _click(site)
    stored = flushed_rows(site, sqlite_url)
    assert len(stored) == 3
    exported = site.get(f"{P}/my-data").json()
    assert {e["event_id"] for e in exported["interactions"]} == {r["event_id"] for r in stored}
    assert site.get(f"{P}/privacy", headers=JSON).json()["identity"] == "cookie"

    # Consenting again keeps the same identity.
    site.post(f"{P}/opt-in", headers={**JSON, "Origin": site.origin})
    site.get("/procedures/3")
    assert len({r["user_id"] for r in flushed_rows(site, sqlite_url)}) == 1

    # Withdrawing is one click and erases the profile.
    withdrawn = site.post(f"{P}/opt-out", headers={**JSON, "Origin": site.origin})
    assert withdrawn.json()["erased"] >= 4
    assert _cookie(withdrawn.set_cookies, "penchant_consent").startswith("penchant_consent=;")
    site.get("/procedures/4")
    assert flushed_rows(site, sqlite_url) == []


def test_consent_cookie_over_https_uses_the_host_prefix(
    host: str, sqlite_url: str, open_site: Callable[..., Client]
) -> None:
    site = open_site(host, sqlite_url, consent="opt-in", secure=True)
    reply = site.post(f"{P}/opt-in", headers={**JSON, "Origin": site.origin})
    assert reply.status == 200
    cookie = _cookie(reply.set_cookies, "__Host-penchant_consent")
    for part in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert part in cookie
    assert "Domain=" not in cookie
    max_age = int(re.search(r"Max-Age=(\d+)", cookie).group(1))  # type: ignore[union-attr]
    assert max_age <= 13 * 31 * 86400


def test_consent_expires_with_the_clock(
    host: str, sqlite_url: str, open_site: Callable[..., Client]
) -> None:
    moments = [datetime(2026, 3, 1, 12, 0)]
    site = open_site(host, sqlite_url, consent="opt-in", clock=lambda: moments[-1])
    site.post(f"{P}/opt-in", headers={**JSON, "Origin": site.origin})
    assert site.get("/whoami").json()["tracking_allowed"] is True
    moments.append(moments[0] + timedelta(days=389))
    assert site.get("/whoami").json()["tracking_allowed"] is True
    moments.append(moments[0] + timedelta(days=391))
    assert site.get("/whoami").json()["reason"] == "no_consent"


def test_before_consent_content_is_contextual(
    host: str, sqlite_url: str, open_site: Callable[..., Client]
) -> None:
    site = open_site(host, sqlite_url, consent="opt-in")
    page = site.get("/procedures/5").text  # Liposuction, in Body
    assert "Tummy tuck (Related to Body)" in page
    assert page.index("Tummy tuck") < page.index("Botox")
    assert flushed_rows(site, sqlite_url) == []


@pytest.mark.parametrize("truncate", [False, True])
def test_ip_truncation_before_hashing(
    truncate: bool, sqlite_url: str, open_site: Callable[..., Client]
) -> None:
    one = open_site("wsgi", sqlite_url, peer="198.51.100.10", truncate_ip=truncate)
    two = open_site("wsgi", sqlite_url, peer="198.51.100.20", truncate_ip=truncate)
    other = open_site("wsgi", sqlite_url, peer="198.51.101.10", truncate_ip=truncate)
    first = one.get("/whoami").json()["fingerprint"]
    # With truncation, addresses in one /24 hash alike; another /24 never does.
    assert (two.get("/whoami").json()["fingerprint"] == first) is truncate
    assert other.get("/whoami").json()["fingerprint"] != first
