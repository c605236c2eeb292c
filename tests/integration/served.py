"""Host apps served by real servers in the integration tests; configured by the environment.

``Penchant(...)`` without a database URL or secret reads ``DATABASE_URL`` and
``PENCHANT_SECRET_KEY``, as a deployed site would.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, jsonify, request
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from penchant import Penchant
from penchant.middleware.integrations import init_flask
from tests.harness import URL_PATTERNS, catalog

__all__ = ["asgi_app", "wsgi_app"]

penchant = Penchant(catalog=catalog(), url_patterns=URL_PATTERNS, holdout=0.0)


def _html(p: Any, title: str) -> str:
    names = ", ".join(r.item.name for r in p.procedures())
    return f"<!doctype html><title>{title}</title>{p.script_tag()}<p>{names}</p>"


async def page(request: Request) -> HTMLResponse:
    return HTMLResponse(_html(request.state.personalization, request.url.path))


async def pid(request: Request) -> JSONResponse:
    return JSONResponse({"pid": os.getpid()})


asgi_app = penchant.asgi(
    Starlette(routes=[Route("/", page), Route("/procedures/{id:int}", page), Route("/pid", pid)])
)

flask = Flask("penchant_integration")


@flask.get("/")
@flask.get("/procedures/<int:id>")
def flask_page(id: int = 0) -> Any:
    return _html(request.personalization, request.path)  # type: ignore[attr-defined]


@flask.get("/pid")
def flask_pid() -> Any:
    return jsonify(pid=os.getpid())


init_flask(flask, penchant)
wsgi_app = flask
