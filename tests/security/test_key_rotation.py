"""After ``PENCHANT_SECRET_KEYS=new,old`` a visitor's erasure and export still reach
what was stored under the old key, in both consent modes (the fingerprint is an
HMAC with the key; the consent cookie's id is stored as a keyed hash)."""

from __future__ import annotations

import pytest

from tests.harness import all_rows
from tests.security.helpers import SAME_ORIGIN, OpenSite

P = "/personalization"
JSON = {"Accept": "application/json"}


def _visitor_headers(client: object, consent: str) -> dict[str, str]:
    """The visitor's request headers: their browser, and their consent cookie in opt-in."""
    if consent == "opt-out":
        return dict(SAME_ORIGIN)
    reply = client.post(f"{P}/opt-in", headers=SAME_ORIGIN)  # type: ignore[attr-defined]
    (header,) = [h for h in reply.all("Set-Cookie") if h.startswith("penchant_consent=")]
    return {**SAME_ORIGIN, "Cookie": header.split(";", 1)[0]}


@pytest.mark.parametrize("consent", ["opt-out", "opt-in"])
def test_erase_and_export_reach_rows_stored_under_an_older_key(
    consent: str, adapter: str, database_url: str, open_site: OpenSite
) -> None:
    settings = {"consent": consent, "export_with_fingerprint": True}
    before, old = open_site(
        adapter, database_url, secret_key="old-key-0123456789abcdef", **settings
    )
    headers = _visitor_headers(before, consent)
    for pid in (1, 2):
        before.get(f"/procedures/{pid}", headers=headers)
    assert old.flush(10)
    (old_id,) = {r["user_id"] for r in all_rows(database_url, "user_interactions")}

    # The operator rotates: the new key first, the old one still accepted.
    after, new = open_site(
        adapter,
        database_url,
        secret_key="new-key-0123456789abcdef",
        secret_keys=("old-key-0123456789abcdef",),
        **settings,
    )
    after.get("/procedures/3", headers=headers)
    assert new.flush(10)
    ids = {r["user_id"] for r in all_rows(database_url, "user_interactions")}
    assert len(ids) == 2 and old_id in ids  # the same visitor, a new id since the rotation

    export = after.get(f"{P}/my-data", headers={**headers, **JSON})
    assert export.status == 200
    assert sorted(i["target_id"] for i in export.json()["interactions"]) == [1, 2, 3]

    erased = after.request("DELETE", f"{P}/my-data", headers={**headers, **JSON})
    assert erased.status == 200
    assert erased.json()["erased"] >= 3
    for table in ("user_interactions", "user_category_affinity"):
        assert all_rows(database_url, table) == []
    # The same through the service: Penchant.erase takes every id the visitor has.
    assert new.export(sorted(ids))["interactions"] == []
