"""schemathesis against docs/openapi.json: every public endpoint, through the ASGI app.

Requests are generated from the hand-written document (and, for the beacon,
from arbitrary text bodies); responses must never be a server error and must
match the document's status codes, content types and schemas.
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
from tests.reliability.sites import small_catalog, starlette_site

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Any]:
    penchant = Penchant(
        database_url=f"sqlite:///{tmp_path / 'openapi.db'}",
        secret_key="openapi",
        catalog=small_catalog(),
        flush_interval=0.05,
    )
    penchant.init_db()
    loaded = schemathesis.openapi.from_path(DOCUMENT)
    loaded.app = penchant.asgi(starlette_site())
    yield loaded
    penchant.close()


schema = schemathesis.pytest.from_fixture("api")


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_public_endpoints_keep_to_the_document(case: Any) -> None:
    case.call_and_validate(checks=CHECKS)


def test_the_document_lists_every_public_route() -> None:
    from penchant.middleware.endpoints import routes

    documented = schemathesis.openapi.from_path(DOCUMENT).raw_schema["paths"]
    operator = {"/dashboard", "/health"}
    for route in set(routes()) - operator:
        path = "/personalization" + route
        if route.endswith("/"):
            path += "{content_type}"
        assert path in documented, path
