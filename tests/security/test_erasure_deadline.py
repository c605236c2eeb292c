"""Erasure and export have a deadline: when the database cannot do them in time the
visitor gets 503 with a message, nothing is claimed and nothing is deleted, and a
retry works once the database can. Each privacy endpoint has a per-address limit.

The lock is real: SQLite's write lock taken by another connection with
``BEGIN IMMEDIATE``, PostgreSQL's tables locked by another connection.
"""

from __future__ import annotations

from tests.harness import Client, count_rows, site_client, tables_locked
from tests.security.helpers import SAME_ORIGIN, OpenSite

P = "/personalization"
JSON = {**SAME_ORIGIN, "Accept": "application/json"}


def _browse(client: Client, penchant: object) -> int:
    for pid in (1, 2):
        client.get(f"/procedures/{pid}", headers=SAME_ORIGIN)
    assert penchant.flush(10)  # type: ignore[attr-defined]
    return 2


def test_an_erasure_the_database_cannot_do_in_time_is_a_503_and_can_be_retried(
    adapter: str, database_url: str, open_site: OpenSite
) -> None:
    client, penchant = open_site(
        adapter, database_url, privacy_timeout=0.3, export_with_fingerprint=True
    )
    stored = _browse(client, penchant)
    postgres = database_url.startswith("postgresql")
    with tables_locked(database_url):
        erase = client.request("DELETE", f"{P}/my-data", headers=JSON)
        assert erase.status == 503
        assert "erased" not in erase.json()  # nothing is claimed
        assert "nothing was deleted" in erase.json()["error"]
        assert erase.header("Retry-After")
        # The privacy page's button: a page that says so, not a redirect to "all done".
        form = client.post(f"{P}/my-data/delete", headers=SAME_ORIGIN)
        assert form.status == 503
        assert (form.header("Content-Type") or "").startswith("text/html")
        assert "could not be deleted" in form.text
        assert "<form" in form.text  # the visitor can try again from the same page
        # Opting out still sets the cookie (tracking stops at once), but claims no erasure.
        out = client.post(f"{P}/opt-out", headers=JSON)
        assert out.status == 503
        assert out.json()["tracking"] is False
        assert "erased" not in out.json()
        assert any(h.startswith("penchant_optout=1") for h in out.all("Set-Cookie"))
        # Export: SQLite's readers are not blocked by its write lock; PostgreSQL's table
        # lock blocks them, and the export says so instead of waiting.
        export = client.get(f"{P}/my-data", headers=JSON)
        if postgres:
            assert export.status == 503
            assert "error" in export.json()
        else:
            assert export.status == 200
            assert len(export.json()["interactions"]) == stored
    # Nothing was deleted while it answered 503.
    assert count_rows(database_url) == stored
    retry = client.request("DELETE", f"{P}/my-data", headers=JSON)
    assert retry.status == 200
    assert retry.json()["erased"] >= stored
    assert count_rows(database_url) == 0


def test_the_privacy_endpoints_are_limited_per_address(
    adapter: str, database_url: str, open_site: OpenSite
) -> None:
    client, penchant = open_site(
        adapter, database_url, privacy_rate_limit=3, export_with_fingerprint=True
    )
    answers = [
        client.request("DELETE", f"{P}/my-data", headers=JSON).status,
        client.get(f"{P}/my-data", headers=JSON).status,
        client.post(f"{P}/my-data/delete", headers=JSON).status,
    ]
    assert answers == [200, 200, 200]
    over = client.request("DELETE", f"{P}/my-data", headers=JSON)
    assert over.status == 429
    assert "error" in over.json() and "erased" not in over.json()
    assert over.header("Retry-After")
    assert client.get(f"{P}/my-data", headers=JSON).status == 429
    # An opt-out over the limit still stops tracking; it only claims no erasure.
    out = client.post(f"{P}/opt-out", headers=JSON)
    assert out.status == 429
    assert any(h.startswith("penchant_optout=1") for h in out.all("Set-Cookie"))
    # Another address has its own allowance.
    other = site_client(adapter, penchant, peer="192.0.2.77")
    try:
        assert other.request("DELETE", f"{P}/my-data", headers=JSON).status == 200
    finally:
        other.close()
