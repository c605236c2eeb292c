"""Over HTTPS only ``__Host-`` cookies carry consent: a planted unprefixed one is no consent.

A sibling subdomain (``Domain=`` of the parent) or any plain-HTTP response can set
an unprefixed cookie in a visitor's browser, but never a ``__Host-`` one. If the
attacker plants their own signed consent cookie, an HTTPS site that still read the
unprefixed name would track the victim under the attacker's id, and the attacker
could download that history with the same cookie.
"""

from __future__ import annotations

from typing import Any

from tests.security.helpers import SAME_ORIGIN, OpenSite, page_views

P = "/personalization"
JSON = {**SAME_ORIGIN, "Accept": "application/json"}


def _attackers_consent(client: Any, scheme: str) -> tuple[str, str]:
    """(cookie name, signed value) the site hands to the attacker's own browser."""
    reply = client.post(f"{P}/opt-in", headers=SAME_ORIGIN, scheme=scheme)
    (header,) = [h for h in reply.all("Set-Cookie") if "penchant_consent=" in h]
    name, _, value = header.split(";", 1)[0].partition("=")
    return name, value


def test_over_https_an_unprefixed_consent_cookie_is_not_consent(
    adapter: str, database_url: str, open_site: OpenSite
) -> None:
    client, penchant = open_site(adapter, database_url, consent="opt-in")
    name, value = _attackers_consent(client, "http")
    assert name == "penchant_consent"  # what a plain-HTTP response or a sibling can set
    planted = {"Cookie": f"penchant_consent={value}"}
    # The victim's browser sends the planted cookie to the HTTPS site.
    page = client.get("/procedures/1", headers={**SAME_ORIGIN, **planted}, scheme="https")
    assert page.status == 200
    assert 'data-off="1"' in page.text  # the tracker is told to send nothing
    state = client.get(f"{P}/privacy", headers={**JSON, **planted}, scheme="https").json()
    assert state["tracking"] is False
    assert state["consent"] == "absent"
    assert penchant.flush(10)
    assert page_views(database_url) == 0
    # Nothing can be downloaded with it over HTTPS either.
    export = client.get(f"{P}/my-data", headers={**JSON, **planted}, scheme="https")
    assert export.status == 404
    # Over plain HTTP the same cookie is still the consent it was issued as.
    client.get("/procedures/1", headers={**SAME_ORIGIN, **planted}, scheme="http")
    assert penchant.flush(10)
    assert page_views(database_url) == 1


def test_over_https_the_host_prefixed_consent_cookie_is_consent(
    adapter: str, database_url: str, open_site: OpenSite
) -> None:
    client, penchant = open_site(adapter, database_url, consent="opt-in")
    name, value = _attackers_consent(client, "https")
    assert name == "__Host-penchant_consent"
    cookie = {"Cookie": f"__Host-penchant_consent={value}"}
    client.get("/procedures/1", headers={**SAME_ORIGIN, **cookie}, scheme="https")
    state = client.get(f"{P}/privacy", headers={**JSON, **cookie}, scheme="https").json()
    assert state["tracking"] is True
    assert penchant.flush(10)
    assert page_views(database_url) == 1
    export = client.get(f"{P}/my-data", headers={**JSON, **cookie}, scheme="https")
    assert export.status == 200
    assert len(export.json()["interactions"]) == 1


def test_over_https_an_unprefixed_opt_out_cookie_still_stops_tracking(
    adapter: str, database_url: str, open_site: OpenSite
) -> None:
    """The opt-out cookie is read under both names on purpose: a planted one can only
    stop tracking (it fails safe), and a choice made over HTTP is kept after a move to HTTPS."""
    client, penchant = open_site(adapter, database_url)
    planted = {"Cookie": "penchant_optout=1"}
    page = client.get("/procedures/1", headers={**SAME_ORIGIN, **planted}, scheme="https")
    assert 'data-off="1"' in page.text
    state = client.get(f"{P}/privacy", headers={**JSON, **planted}, scheme="https").json()
    assert state["opted_out"] is True
    assert penchant.flush(10)
    assert page_views(database_url) == 0
    # A planted "0" cannot undo the visitor's own __Host- opt-out.
    both = {"Cookie": "__Host-penchant_optout=1; penchant_optout=0"}
    client.get("/procedures/2", headers={**SAME_ORIGIN, **both}, scheme="https")
    assert penchant.flush(10)
    assert page_views(database_url) == 0
