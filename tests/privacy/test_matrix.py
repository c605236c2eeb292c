"""Who is recorded: {signals, cookies} x {page view, beacon, server-side track} x {modes}.

Every cell runs through all four host apps (two per adapter) and checks that rows
are written exactly where they should be, and nowhere else.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest

from penchant.engine.fingerprint import hash_identifier
from penchant.middleware.identity import Signers
from tests.harness import HOSTS, Client, all_rows

SIGNALS = (
    "none",
    "gpc",
    "dnt",
    "opt_out_cookie",
    "consent_valid",
    "consent_tampered",
    "consent_expired",
)
# In opt-out mode the consent cookie is not read; in opt-in mode only a valid one counts.
TRACKED = {
    "opt-out": {"none", "consent_valid", "consent_tampered", "consent_expired"},
    "opt-in": {"consent_valid"},
}
VISITOR_ID = "visitor-in-the-cookie"


def _consent_cookie(site: Client, kind: str) -> str:
    secrets = site.penchant.secrets
    if kind == "consent_expired":
        then = site.penchant.clock() - timedelta(days=400)
        value = Signers(secrets, lambda: then).consent_value(VISITOR_ID)
    elif kind == "consent_tampered":
        # Well formed, signed with a key that is not the site's.
        value = Signers((b"not the site's key",), site.penchant.clock).consent_value(VISITOR_ID)
    else:
        value = Signers(secrets, site.penchant.clock).consent_value(VISITOR_ID)
    return f"penchant_consent={value}"


def _headers(site: Client, signal: str, mode: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    cookies: list[str] = []
    if signal == "gpc":
        headers["Sec-GPC"] = "1"
    elif signal == "dnt":
        headers["DNT"] = "1"
    elif signal == "opt_out_cookie":
        cookies.append("penchant_optout=1")
    elif signal.startswith("consent_"):
        cookies.append(_consent_cookie(site, signal))
    # In opt-in mode, the signals must win over a consent the visitor gave earlier.
    if mode == "opt-in" and signal in ("gpc", "dnt", "opt_out_cookie"):
        cookies.append(_consent_cookie(site, "consent_valid"))
    if cookies:
        headers["Cookie"] = "; ".join(cookies)
    return headers


@pytest.mark.parametrize("mode", ["opt-out", "opt-in"])
@pytest.mark.parametrize("signal", SIGNALS)
@pytest.mark.parametrize("host", HOSTS)
def test_matrix(
    host: str, signal: str, mode: str, sqlite_url: str, open_site: Callable[..., Client]
) -> None:
    site = open_site(host, sqlite_url, consent=mode)
    headers = _headers(site, signal, mode)
    # Page view.
    page = site.get("/procedures/3", headers=headers)
    assert page.status == 200
    # A consent cookie that does not verify is cleared (opt-in mode reads it).
    clears = any(c.startswith("penchant_consent=;") for c in page.set_cookies)
    assert clears is (mode == "opt-in" and signal in ("consent_tampered", "consent_expired"))
    # Beacon: the token comes from the page, as the tracker reads it.
    token = site.token(headers=headers)
    click = {
        "interaction_type": "click",
        "target_type": "procedure",
        "target_id": 5,
        "event_id": uuid.uuid4().hex,
    }
    assert site.beacon(click, token=token, headers=headers).status == 202
    # Server-side track from a view.
    tracked = site.post("/form", body="", headers=headers)
    assert tracked.status == 200

    assert site.penchant.flush(timeout=5.0)
    stored = all_rows(sqlite_url)
    expected = signal in TRACKED[mode]
    assert ("tracked True" in tracked.text) is expected
    if not expected:
        assert stored == []
        assert site.penchant.health()["dropped"]["consent"] == 1  # type: ignore[index]
        return
    kinds = sorted((r["interaction_type"], r["target_type"], r["target_id"]) for r in stored)
    assert kinds == [
        ("click", "procedure", 5),
        ("form_submit", "procedure", 1),
        ("view", "page", None),
        ("view", "procedure", 3),
    ]
    (user_id,) = {r["user_id"] for r in stored}
    cookie_identity = hash_identifier(VISITOR_ID, key=site.penchant.secret)
    # The consent cookie's id is the identity only in opt-in mode, and only as a keyed hash.
    assert (user_id == cookie_identity) is (mode == "opt-in")
    assert VISITOR_ID not in str(stored)
