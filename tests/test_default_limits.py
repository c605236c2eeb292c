"""Lists asked for without a length have the documented default lengths: 6
categories, 6 procedures, 9 doctors and 6 packages, from the service, from a
view's ``personalization`` object (through either adapter) and from the JSON
endpoint, on a catalogue with more of each than that.

The lengths do not depend on the database, so one SQLite file serves.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from penchant import Catalog, Category, Item, Penchant
from tests.harness import webtest_app

CATALOG = Catalog(
    [Category(c, f"Category {c}") for c in range(1, 9)],
    [
        *(Item("procedure", i, f"Procedure {i}", ((i % 8) + 1,)) for i in range(1, 13)),
        *(Item("doctor", i, f"Doctor {i}", procedure_ids=(i,)) for i in range(1, 13)),
        *(Item("package", i, f"Package {i}", procedure_ids=(i,)) for i in range(1, 9)),
    ],
)
BROWSER = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Accept-Language": "en-GB",
}

# Popular content on a site nobody has visited yet: catalogue order.
DEFAULTS = [
    pytest.param("categories", [1, 2, 3, 4, 5, 6], id="categories"),
    pytest.param("procedures", [1, 2, 3, 4, 5, 6], id="procedures"),
    pytest.param("doctors", [1, 2, 3, 4, 5, 6, 7, 8, 9], id="doctors"),
    pytest.param("packages", [1, 2, 3, 4, 5, 6], id="packages"),
]


@pytest.fixture
def penchant(tmp_path: Path) -> Iterator[Penchant]:
    service = Penchant(
        database_url=f"sqlite:///{tmp_path / 'limits.db'}",
        secret_key="default-limits-0123456789abcdef",
        catalog=CATALOG,
        holdout=0.0,
    )
    yield service
    service.close(timeout=5.0)


def _ids(found: Iterable[Any]) -> list[int]:
    return [r.item.id for r in found]


def _asgi_app(penchant: Penchant) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def listing(request: Request) -> JSONResponse:
        p = request.state.personalization
        return JSONResponse(_ids(getattr(p, request.path_params["content_type"])()))

    return penchant.asgi(Starlette(routes=[Route("/lists/{content_type}", listing)]))


def _wsgi_app(penchant: Penchant) -> Any:
    def listing(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        p = environ["penchant.personalization"]
        content_type = environ["PATH_INFO"].rsplit("/", 1)[1]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(_ids(getattr(p, content_type)())).encode()]

    return penchant.wsgi(listing)


def from_service(penchant: Penchant, content_type: str) -> list[int]:
    return _ids(penchant.recommend(content_type))


def from_asgi_view(penchant: Penchant, content_type: str) -> list[int]:
    from starlette.testclient import TestClient

    with TestClient(_asgi_app(penchant)) as client:
        reply = client.get(f"/lists/{content_type}", headers=BROWSER)
    assert reply.status_code == 200
    return list(reply.json())


def from_wsgi_view(penchant: Penchant, content_type: str) -> list[int]:
    reply = webtest_app(_wsgi_app(penchant)).get(f"/lists/{content_type}", headers=BROWSER)
    return list(reply.json)


def from_endpoint(penchant: Penchant, content_type: str) -> list[int]:
    from starlette.testclient import TestClient

    with TestClient(_asgi_app(penchant)) as client:
        reply = client.get(f"/personalization/recommendations/{content_type}", headers=BROWSER)
    assert reply.status_code == 200
    return [r["id"] for r in reply.json()["recommendations"]]


@pytest.mark.parametrize(("content_type", "expected"), DEFAULTS)
@pytest.mark.parametrize(
    "ask",
    [from_service, from_asgi_view, from_wsgi_view, from_endpoint],
    ids=["service", "asgi view", "wsgi view", "endpoint"],
)
def test_a_list_without_a_length_has_the_default_length(
    penchant: Penchant,
    ask: Callable[[Penchant, str], list[int]],
    content_type: str,
    expected: list[int],
) -> None:
    assert ask(penchant, content_type) == expected
