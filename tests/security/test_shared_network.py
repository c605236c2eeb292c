"""Two people behind one clinic's Wi-Fi with the same browser: one must not read the other.

With a fingerprint identity they are one visitor to penchant, so the
self-service export is refused. With consent cookies they are two visitors, and
neither export nor recommendations carry the other's history.
"""

from __future__ import annotations

import json
from typing import Any

from tests.security.helpers import SAME_ORIGIN, OpenSite

PEER = "192.0.2.44"  # the clinic's one public address


def test_a_fingerprint_identity_offers_no_self_service_export(
    adapter: str, tmp_path: Any, open_site: OpenSite
) -> None:
    client, penchant = open_site(adapter, f"sqlite:///{tmp_path / 'fp.db'}", peer=PEER)
    client.get("/procedures/1", headers=SAME_ORIGIN)  # the first person
    assert penchant.flush(10)
    # The second person, same browser, same network: same fingerprint.
    reply = client.get("/personalization/my-data", headers=SAME_ORIGIN)
    assert reply.status == 403
    assert "procedure" not in reply.text
    state = client.get(
        "/personalization/privacy", headers={**SAME_ORIGIN, "Accept": "application/json"}
    ).json()
    assert state["identity"] == "fingerprint" and state["export"] is False


def _consent(client: Any) -> dict[str, str]:
    reply = client.post("/personalization/opt-in", headers=SAME_ORIGIN)
    cookie = next(h for h in reply.all("Set-Cookie") if "penchant_consent=" in h)
    return {**SAME_ORIGIN, "Cookie": cookie.split(";")[0]}


def test_consent_cookies_keep_two_people_on_one_network_apart(
    adapter: str, tmp_path: Any, open_site: OpenSite
) -> None:
    client, penchant = open_site(
        adapter, f"sqlite:///{tmp_path / 'cookie.db'}", peer=PEER, consent="opt-in"
    )
    first, second = _consent(client), _consent(client)
    assert first["Cookie"] != second["Cookie"]
    for pid in (1, 4, 7):  # the first person's history
        client.get(f"/procedures/{pid}", headers=first)
    client.get("/procedures/2", headers=second)
    assert penchant.flush(10)

    mine = client.get("/personalization/my-data", headers=second)
    assert mine.status == 200
    exported = mine.json()
    assert [(i["target_type"], i["target_id"]) for i in exported["interactions"]] == [
        ("procedure", 2)
    ]
    recommended = client.get("/personalization/recommendations/procedures", headers=second)
    reasons = json.dumps([r["reason"] for r in recommended.json()["recommendations"]])
    for name in ("Procedure 1", "Procedure 4", "Procedure 7"):
        assert f'"name": "{name}"' not in reasons
    # And the first person's own export holds exactly their three views.
    theirs = client.get("/personalization/my-data", headers=first).json()
    assert sorted(i["target_id"] for i in theirs["interactions"]) == [1, 4, 7]
