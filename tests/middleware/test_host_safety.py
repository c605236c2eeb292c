"""Never hurt the host: a database that is down, laziness, proxies, real-time reads."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from tests.harness import HOSTS, PLAIN, STATIC, Client, all_rows


@pytest.mark.parametrize("host", HOSTS)
def test_a_database_that_is_down_leaves_every_host_response_intact(
    host: str, open_site: Callable[..., Client], caplog: pytest.LogCaptureFixture
) -> None:
    site = open_site(host, database_down=True, shutdown_timeout=0.2)
    home = site.get("/")
    assert home.status == 200
    assert "Botox" in home.text  # popular content from the catalog, no database needed
    assert site.get("/procedures/2").status == 200
    assert site.get("/plain").text == PLAIN
    assert site.get("/static/app.css").text == STATIC
    assert site.get("/api/data").json() == {"ok": True}
    assert site.get("/moved").status == 302
    assert site.get("/missing").status == 404
    assert "tracked True" in site.post("/form", body="").text
    assert site.get("/personalization/recommendations/doctors").status == 200
    beacon = site.beacon({"interaction_type": "click", "target_type": "procedure", "target_id": 1})
    assert beacon.status == 202
    stats = site.penchant.health()
    # Events are kept for later (or counted), never lost silently.
    assert stats["accepted"] == stats["in_flight"] + stats["dropped_total"] + stats["stored"]  # type: ignore[operator]


def _select_counter(site: Client) -> list[str]:
    """SELECT statements run by anyone but the writer thread, on the store's engine."""
    seen: list[str] = []

    def listener(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if threading.current_thread().name != "penchant-writer":
            seen.append(statement)

    sa.event.listen(site.penchant.store.engine, "before_cursor_execute", listener)
    return seen


def test_no_query_when_the_view_does_not_touch_personalization(site: Client) -> None:
    site.get("/")  # warm: popular content and the visitor's profile cached
    assert site.penchant.flush(timeout=5.0)
    statements = _select_counter(site)
    site.get("/plain")
    site.get("/api/data")
    site.get("/static/app.css")
    assert statements == []
    # The counter does see the queries of a view that asks (a new visitor's profile).
    site.get("/", headers={"User-Agent": "Mozilla/5.0 (Windows NT 10.0) Firefox/125.0"})
    assert statements != []


def _fingerprint(site: Client, headers: dict[str, str] | None = None) -> str:
    return str(site.get("/whoami", headers=headers).json()["fingerprint"])


def test_forged_forwarded_for_from_an_untrusted_peer_changes_nothing(site: Client) -> None:
    plain = _fingerprint(site)
    assert plain == _fingerprint(site, {"X-Forwarded-For": "198.51.100.1"})
    assert plain == _fingerprint(site, {"X-Forwarded-For": "198.51.100.2, 10.0.0.1"})


@pytest.mark.parametrize("host", HOSTS)
def test_forwarded_for_is_read_only_from_a_trusted_proxy(
    host: str, sqlite_url: str, open_site: Callable[..., Client]
) -> None:
    site = open_site(host, sqlite_url, peer="10.0.0.5", trusted_proxies="10.0.0.0/8")
    one = _fingerprint(site, {"X-Forwarded-For": "198.51.100.1"})
    two = _fingerprint(site, {"X-Forwarded-For": "198.51.100.2"})
    assert one != two
    # Right to left: a client-written left part cannot choose the address.
    spoofed = _fingerprint(site, {"X-Forwarded-For": "1.2.3.4, 198.51.100.1, 10.0.0.9"})
    assert spoofed == one


def test_read_your_writes(host: str, sqlite_url: str, open_site: Callable[..., Client]) -> None:
    # A long flush interval: the click is still queued when the next page is rendered.
    site = open_site(host, sqlite_url, flush_interval=60.0, batch_size=1000, strategy="original")
    before = site.get("/").text
    assert before.index("Botox") < before.index("Tummy tuck")
    site.beacon(
        {
            "interaction_type": "click",
            "target_type": "procedure",
            "target_id": 5,
            "event_id": uuid.uuid4().hex,
        }
    )
    assert all_rows(sqlite_url) == []
    after = site.get("/").text
    # The visitor's click on Liposuction (Body) now leads with the other Body procedure.
    assert after.index("Tummy tuck") < after.index("Botox")
    assert "Because you like Body" in after


def test_personalization_is_reachable_where_each_framework_puts_it(site: Client) -> None:
    me = site.get("/whoami").json()
    assert me["tracking_allowed"] is True
    assert me["reason"] == "allowed"
    assert me["variant"] == "personalized"
    assert len(me["fingerprint"]) == 32
    assert len(me["session_id"]) == 64
    if site.kind == "fastapi":
        depends = site.get("/depends").json()
        assert depends["fingerprint"] == me["fingerprint"]
        assert len(depends["names"]) == 3


def test_kill_switch_runs_the_app_unchanged_with_popular_content(
    host: str, sqlite_url: str, open_site: Callable[..., Client]
) -> None:
    site = open_site(host, sqlite_url, enabled=False)
    home = site.get("/")
    assert home.status == 200
    assert 'data-off="1"' in home.text
    assert site.get("/whoami").json()["reason"] == "disabled"
    assert "tracked False" in site.post("/form", body="").text
    site.beacon({"interaction_type": "click", "target_type": "procedure", "target_id": 1})
    recs = site.get("/personalization/recommendations/procedures").json()
    assert recs["personalized"] is False
    assert len(recs["recommendations"]) == 6
    site.penchant.flush(timeout=5.0)
    assert all_rows(sqlite_url) == []


def test_without_a_secret_a_database_outage_is_not_retried_on_every_request(
    open_site: Callable[..., Client],
) -> None:
    # No configured secret: it would be read from the database, which is down.
    site = open_site("starlette", database_down=True, secret_key=None, shutdown_timeout=0.2)
    attempts: list[int] = []

    def counting(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        if str(cparams.get("port")) == "1":  # this site's database, not another test's
            attempts.append(1)

    sa.event.listen(sa.Engine, "do_connect", counting)
    try:
        # The first visitor asks: once for the tables, once for the secret.
        assert site.get("/whoami").json()["reason"] == "error"
        assert len(attempts) == 2
        for _ in range(4):
            assert site.get("/whoami").json()["reason"] == "error"
        for _ in range(5):
            assert site.get("/plain").text == PLAIN
        site.penchant.settle()  # the page views handed over want the secret too
    finally:
        sa.event.remove(sa.Engine, "do_connect", counting)
    # Then a pause: the next pages did not each wait for the database.
    assert len(attempts) == 2
    assert site.beacon({"interaction_type": "view", "target_type": "page"}).status == 202


def test_without_a_configured_secret_one_is_generated_and_shared(
    host: str, sqlite_url: str, open_site: Callable[..., Client]
) -> None:
    first = open_site(host, sqlite_url, secret_key=None)
    second = open_site(host, sqlite_url, secret_key=None)
    one = first.get("/whoami").json()
    # Two processes (here: two instances) on one database agree on the visitor.
    assert one["tracking_allowed"] is True
    assert second.get("/whoami").json()["fingerprint"] == one["fingerprint"]
    first.get("/procedures/2")
    assert first.penchant.flush(timeout=5.0)
    assert [r["target_id"] for r in all_rows(sqlite_url)] == [2]
