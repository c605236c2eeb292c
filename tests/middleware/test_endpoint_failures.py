"""When the database cannot do what a visitor asked, the privacy endpoints say so.

An erasure that cannot happen (the tables are locked past ``privacy_timeout``, or
the database is gone) is a 503 that claims nothing erased and deletes nothing. An
opt-in whose consent cannot be signed (no configured secret, and the database
that keeps the generated one is gone) is a 503 that sets no consent cookie. The
locks are real, taken by another connection; a database that is gone is a SQLite
path that is a directory, or a PostgreSQL database dropped from the server.

The answers are the core's and the adapters only translate them: the locked
database is asked through the ASGI adapter, the missing one through the WSGI
adapter, the opt-in through both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from penchant import Penchant
from tests.conftest import drop_pg_database
from tests.harness import Client, count_rows, site_client, small_catalog, tables_locked
from tests.security.helpers import SAME_ORIGIN, OpenSite

P = "/personalization"
JSON = {**SAME_ORIGIN, "Accept": "application/json"}
SECRET = "endpoint-failures-0123456789abcdef"
NOT_DELETED = "your data could not be deleted right now; nothing was deleted: try again shortly"


@pytest.fixture
def open_site() -> Iterator[OpenSite]:
    """``open_site(adapter, database_url, **settings)`` -> (client, penchant)."""
    opened: list[tuple[Client, Penchant]] = []

    def open_(adapter: str, database_url: str, **settings: Any) -> tuple[Client, Penchant]:
        options: dict[str, Any] = {
            "catalog": small_catalog(),
            "url_patterns": {"/procedures/{id}": "procedure"},
            "flush_interval": 0.05,
            "holdout": 0.0,
        }
        options.update(settings)
        penchant = Penchant(database_url=database_url, **options)
        client = site_client(adapter, penchant)
        opened.append((client, penchant))
        return client, penchant

    yield open_
    for client, penchant in opened:
        client.close()
        penchant.close(timeout=1.0)


def make_gone(database_url: str) -> None:
    """Leave nothing a connection could open at ``database_url``."""
    url = sa.make_url(database_url)
    if url.get_backend_name() == "sqlite":
        Path(str(url.database)).mkdir()
    else:
        drop_pg_database(database_url)


def without_configured_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PENCHANT_SECRET_KEY", raising=False)
    monkeypatch.delenv("PENCHANT_SECRET_KEYS", raising=False)


def sets_opt_out(reply: Any) -> bool:
    return any(c.startswith("penchant_optout=1;") for c in reply.all("Set-Cookie"))


def _delete(client: Client) -> Any:
    return client.request("DELETE", f"{P}/my-data", headers=JSON)


def _delete_form(client: Client) -> Any:
    return client.post(f"{P}/my-data/delete", headers=JSON)


def _opt_out(client: Client) -> Any:
    return client.post(f"{P}/opt-out", headers=JSON)


# (request, the whole JSON answer, whether it sets the opt-out cookie)
ERASURES = [
    pytest.param(_delete, {"error": NOT_DELETED}, False, id="DELETE my-data"),
    pytest.param(_delete_form, {"error": NOT_DELETED}, False, id="POST my-data/delete"),
    pytest.param(
        _opt_out,
        {"tracking": False, "error": "personalization is off, but " + NOT_DELETED},
        True,
        id="POST opt-out",
    ),
]


@pytest.mark.parametrize(("ask", "answer", "opts_out"), ERASURES)
def test_an_erasure_the_locked_database_cannot_do_in_time_is_a_503(
    database_url: str,
    open_site: OpenSite,
    ask: Callable[[Client], Any],
    answer: dict[str, object],
    opts_out: bool,
) -> None:
    client, penchant = open_site(
        "asgi", database_url, secret_key=SECRET, privacy_timeout=0.1, privacy_rate_limit=0
    )
    assert client.get("/procedures/1", headers=SAME_ORIGIN).status == 200
    assert client.get("/procedures/2", headers=SAME_ORIGIN).status == 200
    assert penchant.flush(10)
    assert count_rows(database_url) == 2
    with tables_locked(database_url):
        reply = ask(client)
    assert reply.status == 503
    assert reply.json() == answer
    assert reply.header("Retry-After") == "5"
    assert sets_opt_out(reply) is opts_out
    assert count_rows(database_url) == 2  # nothing was deleted


@pytest.mark.parametrize(("ask", "answer", "opts_out"), ERASURES)
def test_an_erasure_and_its_retry_without_a_database_or_a_secret_are_503s(
    database_url: str,
    open_site: OpenSite,
    monkeypatch: pytest.MonkeyPatch,
    ask: Callable[[Client], Any],
    answer: dict[str, object],
    opts_out: bool,
) -> None:
    """The visitor's identity needs the secret kept in the database: the first
    erasure fails reading it, the retry finds the secret still unavailable."""
    without_configured_secret(monkeypatch)
    make_gone(database_url)
    client, _ = open_site("wsgi", database_url, privacy_timeout=0.1, privacy_rate_limit=0)
    first, retry = ask(client), ask(client)
    assert (first.status, first.json()) == (503, answer)
    assert (retry.status, retry.json()) == (503, answer)
    assert first.header("Retry-After") == retry.header("Retry-After") == "5"
    assert (sets_opt_out(first), sets_opt_out(retry)) == (opts_out, opts_out)


def test_an_opt_in_whose_consent_cannot_be_signed_is_a_503_without_a_cookie(
    adapter: str, database_url: str, open_site: OpenSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No configured secret: the one that signs consent is kept in the database.
    without_configured_secret(monkeypatch)
    make_gone(database_url)
    client, _ = open_site(adapter, database_url, consent="opt-in")
    reply = client.post(f"{P}/opt-in", headers=JSON)
    assert reply.status == 503
    assert reply.json() == {"error": "consent cannot be recorded right now"}
    assert reply.all("Set-Cookie") == []
