"""Cookie attributes, and consent that cannot be forged, tampered with or outlive its term."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from http.cookies import SimpleCookie
from typing import Any

import pytest

from tests.harness import all_rows
from tests.security.helpers import SAME_ORIGIN, OpenSite, page_views

#: Thirteen months, the longest a consent or identity cookie may live.
THIRTEEN_MONTHS = int(13 * 30.44 * 86_400)


def _attributes(header: str) -> tuple[str, str, dict[str, str]]:
    """(name, value, attributes by lowercase name) of one Set-Cookie header."""
    first, *rest = [part.strip() for part in header.split(";")]
    name, _, value = first.partition("=")
    attributes: dict[str, str] = {}
    for part in rest:
        key, _, val = part.partition("=")
        attributes[key.strip().lower()] = val.strip()
    return name, value, attributes


def _set_cookies(reply: Any, name: str) -> list[tuple[str, str, dict[str, str]]]:
    return [a for a in map(_attributes, reply.all("Set-Cookie")) if a[0].endswith(name)]


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize(
    ("consent", "route", "cookie"),
    [("opt-out", "opt-out", "penchant_optout"), ("opt-in", "opt-in", "penchant_consent")],
)
def test_cookie_attributes(
    adapter: str,
    scheme: str,
    consent: str,
    route: str,
    cookie: str,
    tmp_path: Any,
    open_site: OpenSite,
) -> None:
    client, _ = open_site(adapter, f"sqlite:///{tmp_path / 'c.db'}", consent=consent)
    reply = client.post(f"/personalization/{route}", headers=SAME_ORIGIN, scheme=scheme)
    assert reply.status == 303
    (found,) = _set_cookies(reply, cookie)
    name, value, attributes = found
    assert value
    assert "httponly" in attributes
    assert attributes["samesite"].lower() == "lax"
    assert attributes["path"] == "/"
    assert "domain" not in attributes  # host-only: a sibling subdomain never sees it
    assert 0 < int(attributes["max-age"]) <= THIRTEEN_MONTHS
    if scheme == "https":
        assert name == f"__Host-{cookie}"
        assert "secure" in attributes
    else:
        assert name == cookie
    # A standard parser reads the same thing.
    parsed = SimpleCookie()
    parsed.load(reply.all("Set-Cookie")[0])
    assert any(morsel["httponly"] for morsel in parsed.values())


def _consent_cookie(client: Any) -> str:
    reply = client.post("/personalization/opt-in", headers=SAME_ORIGIN)
    ((_, value, _),) = _set_cookies(reply, "penchant_consent")
    return value


def _tampered(value: str) -> list[str]:
    """The same cookie with its payload or its signature changed."""
    payload, _, rest = value.partition(".")
    flipped = "A" if payload[0] != "A" else "B"
    return [
        flipped + payload[1:] + "." + rest,
        value[:-1] + ("A" if value[-1] != "A" else "B"),
        value + "x",
        value.replace(".", "", 1),
    ]


def test_a_tampered_or_foreign_consent_cookie_means_no_consent(
    adapter: str, tmp_path: Any, open_site: OpenSite
) -> None:
    url = f"sqlite:///{tmp_path / 'consent.db'}"
    client, penchant = open_site(adapter, url, consent="opt-in")
    valid = _consent_cookie(client)
    other_client, _ = open_site(
        adapter,
        f"sqlite:///{tmp_path / 'other.db'}",
        consent="opt-in",
        secret_key="another site-0123456789abcdef",
    )
    foreign = _consent_cookie(other_client)
    for value in [*_tampered(valid), foreign, "", "null", '"1"']:
        reply = client.get("/", headers={**SAME_ORIGIN, "Cookie": f"penchant_consent={value}"})
        assert reply.status == 200
        assert 'data-off="1"' in reply.text  # the tracker is told not to send anything
        state = client.get(
            "/personalization/privacy",
            headers={
                **SAME_ORIGIN,
                "Cookie": f"penchant_consent={value}",
                "Accept": "application/json",
            },
        ).json()
        assert state["tracking"] is False
    assert penchant.flush(10)
    assert page_views(url) == 0
    # The genuine cookie is consent: the same page view is recorded.
    client.get("/", headers={**SAME_ORIGIN, "Cookie": f"penchant_consent={valid}"})
    assert penchant.flush(10)
    assert page_views(url) == 1


def test_an_expired_consent_cookie_means_no_consent_and_is_cleared(
    adapter: str, tmp_path: Any, open_site: OpenSite
) -> None:
    now = [datetime(2024, 1, 10, 12, 0)]
    url = f"sqlite:///{tmp_path / 'expiry.db'}"
    client, penchant = open_site(adapter, url, consent="opt-in", clock=lambda: now[0])
    cookie = _consent_cookie(client)
    headers = {**SAME_ORIGIN, "Cookie": f"penchant_consent={cookie}"}
    now[0] += timedelta(days=390 - 1)
    client.get("/", headers=headers)
    assert penchant.flush(10)
    assert page_views(url) == 1
    now[0] += timedelta(days=2)  # 13 months after consent
    reply = client.get("/", headers=headers)
    assert penchant.flush(10)
    assert page_views(url) == 1
    cleared = _set_cookies(reply, "penchant_consent")
    assert cleared and all(int(a["max-age"]) <= 0 for _, _, a in cleared)


def test_the_consent_cookie_holds_no_visitor_data_and_is_stored_only_hashed(
    adapter: str, tmp_path: Any, open_site: OpenSite
) -> None:
    import base64

    url = f"sqlite:///{tmp_path / 'hash.db'}"
    client, penchant = open_site(adapter, url, consent="opt-in")
    cookie = _consent_cookie(client)
    payload = cookie.split(".")[0]
    visitor_id = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert isinstance(visitor_id, str) and len(visitor_id) >= 16
    client.get("/procedures/3", headers={**SAME_ORIGIN, "Cookie": f"penchant_consent={cookie}"})
    assert penchant.flush(10)
    rows = all_rows(url, "user_interactions")
    assert len(rows) == 1
    assert visitor_id not in json.dumps(rows, default=str)
    assert rows[0]["user_id"] != visitor_id
