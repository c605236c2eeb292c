"""First use of a database: tables appear by themselves in an empty one (once, from
many processes at once), a database behind the schema is never migrated by a worker,
and a database that cannot be reached is logged once."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from penchant import Catalog, Category, Item, Penchant
from penchant.storage import schema_version
from penchant.storage.schema_version import VERSION_TABLE
from penchant.storage.store import Store

SECRET = "a test secret that is long enough"
VISITOR = "cd" * 16
BROWSER = {
    "user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0",
    "accept-language": "en",
    "sec-fetch-mode": "navigate",
    "sec-fetch-dest": "document",
}
CATALOG = Catalog(
    categories=[Category(1, "Injectables")],
    items=[
        Item("procedure", 1, "Botox", category_ids=(1,), url="/procedures/1"),
        Item("procedure", 2, "Fillers", category_ids=(1,), url="/procedures/2"),
    ],
)

WORKER = textwrap.dedent(
    """
    import json, logging, os, sys, time
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    from penchant import Penchant
    url, folder, n = sys.argv[1], sys.argv[2], sys.argv[3]
    p = Penchant(database_url=url, secret_key="a test secret that is long enough")
    open(os.path.join(folder, "ready-" + n), "w").close()
    while not os.path.exists(os.path.join(folder, "go")):
        time.sleep(0.002)
    p.store  # first use
    print(json.dumps(p.health()["schema"]))
    """
)


def _start_together(url: str, folder: Path, count: int = 4) -> list[tuple[int, str, str]]:
    """Start ``count`` processes, release them at once; (returncode, stdout, stderr) each."""
    script = folder / "worker.py"
    script.write_text(WORKER)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), url, str(folder), str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(count)
    ]
    deadline = time.monotonic() + 60
    while len(list(folder.glob("ready-*"))) < count:
        assert time.monotonic() < deadline, "workers did not start"
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.01)
    (folder / "go").touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        results.append((proc.returncode, out, err))
    return results


def _first_schema(url: str) -> None:
    """A database as the first schema's code left it (revision 0001, not versioned)."""
    store = Store(url)
    with store.transaction(write=True) as conn:
        schema_version.migrate(conn, "0001")
        conn.execute(sa.text(f"DROP TABLE {VERSION_TABLE}"))
    store.dispose()


def _layout(url: str) -> dict[str, list[str]]:
    """Every table and its columns: what "nothing was altered" compares."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg2://"))
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        layout = {
            name: sorted(c["name"] for c in inspector.get_columns(name))
            for name in inspector.get_table_names()
        }
    engine.dispose()
    return layout


def test_four_processes_on_an_empty_database_create_one_schema(
    database_url: str, tmp_path: Path
) -> None:
    results = _start_together(database_url, tmp_path)

    for code, out, err in results:
        assert code == 0, err
        assert "ERROR" not in err and "Traceback" not in err, err
        assert '"ready": true' in out
    creators = [err for _, _, err in results if "created its tables" in err]
    assert len(creators) == 1, [err for _, _, err in results]
    store = Store(database_url)
    try:
        assert schema_version.current(store).is_current
        with store.transaction() as conn:
            assert conn.scalar(sa.text(f"SELECT count(*) FROM {VERSION_TABLE}")) == 1
    finally:
        store.dispose()


def test_four_processes_on_a_database_behind_each_say_to_upgrade_and_alter_nothing(
    database_url: str, tmp_path: Path
) -> None:
    _first_schema(database_url)
    before = _layout(database_url)

    results = _start_together(database_url, tmp_path)

    for code, out, err in results:
        assert code == 0, err
        assert '"ready": false' in out
        errors = [line for line in err.splitlines() if line.startswith("ERROR")]
        assert len(errors) == 1, err
        assert "revision 0001" in errors[0] and "penchant db upgrade" in errors[0]
    assert _layout(database_url) == before


@pytest.fixture
def behind(database_url: str) -> Iterator[str]:
    _first_schema(database_url)
    yield database_url


def _site(penchant: Penchant) -> TestClient:
    async def page(request: Request) -> HTMLResponse:
        names = [r.item.name for r in request.state.personalization.procedures()]
        return HTMLResponse(f"<html>{','.join(names)}</html>")

    return TestClient(penchant.asgi(Starlette(routes=[Route("/procedures/{id}", page)])))


def test_a_site_on_a_database_behind_serves_popular_content_and_fails_its_health(
    behind: str, caplog: pytest.LogCaptureFixture
) -> None:
    penchant = Penchant(
        database_url=behind,
        secret_key=SECRET,
        catalog=CATALOG,
        url_patterns={"/procedures/{id}": "procedure"},
        dashboard_token="an operator token of some length",
        flush_interval=0.05,
        shutdown_timeout=0.5,
    )
    layout = _layout(behind)
    with caplog.at_level(logging.WARNING, logger="personalization"), _site(penchant) as site:
        for _ in range(3):
            page = site.get("/procedures/1", headers=BROWSER)
            assert page.status_code == 200
            assert "Fillers" in page.text  # the catalog's other item, shown anyway
        assert not penchant.flush(timeout=0.5)  # nothing can be written
        health = site.get(
            "/personalization/health",
            headers={"authorization": "Bearer an operator token of some length"},
        )
    assert health.status_code == 503
    body = health.json()
    assert body["ok"] is False
    assert body["schema"]["revision"] == "0001" and body["schema"]["head"] == "0003"
    assert "penchant db upgrade" in body["schema"]["problem"]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "penchant db upgrade" in errors[0].getMessage()
    assert _layout(behind) == layout
    penchant.close(timeout=0.1)
    store = Store(behind)
    try:
        assert store.count_interactions() == 0
        # after the operator's upgrade, a new process stores again
        schema_version.upgrade(store)
    finally:
        store.dispose()
    again = Penchant(database_url=behind, secret_key=SECRET, catalog=CATALOG)
    assert again.track("view", "procedure", 1, user_id=VISITOR)
    assert again.flush(timeout=10)
    assert again.store.count_interactions(VISITOR) == 1
    again.close()


def test_the_schema_is_checked_again_after_an_upgrade(behind: str) -> None:
    now = [0.0]
    penchant = Penchant(
        database_url=behind, secret_key=SECRET, catalog=CATALOG, timer=lambda: now[0]
    )
    assert penchant.health()["ok"] is False
    store = Store(behind)
    schema_version.upgrade(store)
    store.dispose()
    assert penchant.health()["ok"] is False  # not asked again yet
    now[0] += 31.0
    assert penchant.health()["ok"] is True
    penchant.close()


def test_creation_turned_off_leaves_an_empty_database_empty(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    penchant = Penchant(database_url=database_url, secret_key=SECRET, create_tables=False)
    with caplog.at_level(logging.ERROR, logger="personalization"):
        report = penchant.health()
    assert report["ok"] is False
    assert "create_tables=False" in str(report["schema"])  # type: ignore[index]
    assert "create_tables=False" in caplog.text
    penchant.close()
    assert _layout(database_url) == {}


def test_an_unreachable_database_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    penchant = Penchant(
        database_url="postgresql://penchant@127.0.0.1:9/nowhere",
        secret_key=SECRET,
        catalog=CATALOG,
        flush_interval=0.01,
    )
    with caplog.at_level(logging.DEBUG, logger="personalization"):
        for n in range(5):
            penchant.track("view", "procedure", 1, user_id=VISITOR)
            penchant.flush(timeout=0.2)
            penchant.recommend("procedures", f"{n:032x}")
    penchant.close(timeout=0.2)
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    about = [m for m in loud if "127.0.0.1:9" in m or "could not write" in m]
    assert len(about) == 1, loud
    assert "cannot be reached" in about[0] or "unavailable" in about[0]
