"""A page view that renders recommendations records one exposure per list, by variant."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from penchant import Catalog, Category, Item, Penchant
from penchant.storage.schema import exposures, user_interactions

CATALOG = Catalog(
    [Category(1, "Injectables"), Category(2, "Laser")],
    [Item("procedure", i, f"P{i}", ((i % 2) + 1,)) for i in range(1, 9)],
)
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0", "Accept-Language": "en"}


def home(request: Request) -> HTMLResponse:
    p = request.state.personalization
    procedures = p.procedures(limit=3)
    p.procedures(limit=3)  # asked twice: still one exposure
    p.doctors()  # no doctors in the catalog: nothing shown, nothing recorded
    return HTMLResponse("<ul>" + "".join(f"<li>{r.item.name}</li>" for r in procedures) + "</ul>")


def quiet(request: Request) -> HTMLResponse:
    return HTMLResponse("<p>no recommendations here</p>")


@pytest.fixture(params=[0.0, 0.99], ids=["personalized", "holdout"])
def site(request: pytest.FixtureRequest, database_url: str) -> Iterator[tuple[Penchant, str]]:
    penchant = Penchant(
        database_url=database_url,
        secret_key="k-0123456789abcdef",
        catalog=CATALOG,
        holdout=request.param,
    )
    penchant.init_db()
    app = Starlette(routes=[Route("/", home), Route("/quiet", quiet)])
    with TestClient(penchant.asgi(app)) as client:
        assert client.get("/", headers=BROWSER).status_code == 200
        assert client.get("/quiet", headers=BROWSER).status_code == 200
    yield penchant, "holdout" if request.param else "personalized"
    penchant.close()


def test_one_exposure_per_list_and_page_view(site: tuple[Penchant, str]) -> None:
    penchant, variant = site
    assert penchant.flush(timeout=10)
    with penchant.store.engine.connect() as conn:
        shown = conn.execute(sa.select(exposures)).all()
        views = conn.execute(
            sa.select(user_interactions.c.event_id, user_interactions.c.target_type)
        ).all()
    assert len(shown) == 1
    [row] = shown
    assert row.variant == variant and row.content_type == "procedures"
    assert row.lists == 1
    shown_ids = json.loads(row.items)["procedures"]
    assert len(shown_ids) == 3 and set(shown_ids) <= {i.id for i in CATALOG.items("procedure")}
    # the exposure names the page view that showed it
    assert row.page_view_id in {v.event_id for v in views}
    assert len(views) == 2
