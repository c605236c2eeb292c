"""After a full browsing scenario, every column of every table is searched for raw data.

The scenario sends everything a visitor's browser reveals (address, spoofed
forwarding header, User-Agent, languages, query strings, a filled-in form,
a search, cookies, page tokens) through both adapters, in both consent modes.
None of it may appear in the database, in any table or column.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.harness import BEACON, beacon_event, every_value
from tests.security.helpers import OpenSite

PEER = "198.51.100.61"
SPOOFED = "203.0.113.99"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) ScanTestBrowser/9.1 Safari/537.36"
LANGUAGE = "fr-CH,fr;q=0.9,x-scantest;q=0.1"
NAME = "Jane Secretname"
EMAIL = "jane.secret@example.com"
PHONE = "+44 7700 900123"
QUERY_VALUE = "campaign-secret-4711"
IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
EMAIL_LIKE = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def _scenario(client: Any, consent: str) -> list[str]:
    """Browse like a visitor who reveals everything; returns secrets only the browser held."""
    headers = {
        "User-Agent": USER_AGENT,
        "Accept-Language": LANGUAGE,
        "Sec-Fetch-Site": "same-origin",
        "X-Forwarded-For": SPOOFED,
    }
    held: list[str] = []
    if consent == "opt-in":
        reply = client.post("/personalization/opt-in", headers=headers)
        cookie = next(h for h in reply.all("Set-Cookie") if "penchant_consent=" in h)
        value = cookie.split(";")[0].split("=", 1)[1]
        payload = value.split(".")[0]
        held.append(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))
        headers["Cookie"] = f"penchant_consent={value}"
    query = urlencode({"email": EMAIL, "utm_campaign": QUERY_VALUE, "name": NAME})
    token = client.token(f"/?{query}", headers=headers)
    assert token
    held.append(token)
    client.get(f"/procedures/2?ref={QUERY_VALUE}", headers=headers)
    form = urlencode({"name": NAME, "email": EMAIL, "phone": PHONE})
    client.post(
        "/contact",
        form,
        headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    events = [
        beacon_event(
            uuid.uuid4().hex,
            interaction_type="form_submit",
            target_type="page",
            target_id=None,
            path=f"/contact?email={EMAIL}",
        ),
        beacon_event(
            uuid.uuid4().hex,
            interaction_type="search",
            target_type="category",
            target_id=None,
            metadata={"query": f"botox for {NAME} {EMAIL} {PHONE}"},
        ),
        beacon_event(uuid.uuid4().hex, target_id=3, metadata={"source": "rec", "position": 1}),
        # A careless integration sending form values: addresses and numbers are scrubbed.
        beacon_event(uuid.uuid4().hex, target_id=4, metadata={"note": f"{EMAIL} / {PHONE}"}),
        beacon_event(
            uuid.uuid4().hex,
            interaction_type="view",
            target_type="page",
            target_id=None,
            path=f"/procedures/5?q={QUERY_VALUE}",
        ),
    ]
    reply = client.post(
        BEACON,
        json.dumps({"token": token, "events": events}),
        headers={**headers, "Content-Type": "text/plain;charset=UTF-8"},
    )
    assert reply.json() == {"accepted": len(events), "rejected": []}
    assert client.get("/personalization/recommendations/procedures", headers=headers).status == 200
    return held


@pytest.mark.parametrize("consent", ["opt-out", "opt-in"])
def test_no_column_of_any_table_holds_raw_visitor_data(
    adapter: str, consent: str, database_url: str, open_site: OpenSite
) -> None:
    client, penchant = open_site(adapter, database_url, peer=PEER, consent=consent)
    held = _scenario(client, consent)
    assert penchant.flush(10)
    penchant.close()
    values = every_value(database_url)
    tables = {table for table, _, _ in values}
    assert {"user_interactions", "user_category_affinity"} <= tables
    interactions = [v for t, _, v in values if t == "user_interactions"]
    assert len(interactions) > 20  # the scenario was recorded (7 interactions x 8 columns)

    needles = [
        PEER,
        SPOOFED,
        USER_AGENT,
        "ScanTestBrowser",
        "x-scantest",
        NAME,
        "Secretname",
        EMAIL,
        "jane.secret",
        PHONE,
        "7700 900123",
        "900123",
        QUERY_VALUE,
        *held,
    ]
    for table, column, text in values:
        for needle in needles:
            assert needle not in text, (table, column, needle)
        assert not IPV4.search(text), (table, column, text)
        assert not EMAIL_LIKE.search(text), (table, column, text)
        assert "?" not in text or column not in ("extra_data",), (table, column, text)
