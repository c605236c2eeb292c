"""schemathesis against docs/openapi.json: every public endpoint, through the ASGI app.

Requests are generated from the hand-written document (and, for the beacon,
from arbitrary text bodies); responses must never be a server error and must
match the document's status codes, content types and schemas.

The schema is loaded at import and each case is sent to the app from a fixture
(``call_and_validate(app=...)``): one test item per operation. The lazy
``schemathesis.pytest.from_fixture`` sets ``Function._nodeid``, which pytest 9.2
no longer has.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from penchant import Penchant
from tests.harness import small_catalog, starlette_site

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


schema = schemathesis.openapi.from_path(DOCUMENT)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Any]:
    penchant = Penchant(
        database_url=f"sqlite:///{tmp_path / 'openapi.db'}",
        secret_key="openapi-0123456789abcdef",
        catalog=small_catalog(),
        flush_interval=0.05,
    )
    penchant.init_db()
    yield penchant.asgi(starlette_site())
    penchant.close()


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_public_endpoints_keep_to_the_document(case: Any, app: Any) -> None:
    case.call_and_validate(checks=CHECKS, app=app)


def test_the_document_lists_every_public_route() -> None:
    from penchant.middleware.endpoints import routes

    documented = schema.raw_schema["paths"]
    operator = {"/dashboard", "/health"}
    for route in set(routes()) - operator:
        path = "/personalization" + route
        if route.endswith("/"):
            path += "{content_type}"
        assert path in documented, path
