"""Four real host applications wrapped by penchant, behind one small client interface.

The same site (HTML pages, a procedure page, JSON, a redirect, an error, a
static file, a stream, a form that tracks server-side) is written for
Starlette and FastAPI (ASGI, driven by Starlette's TestClient) and for Flask
and a bare WSGI callable (driven by webtest). Tests parametrize over
:data:`HOSTS` so that every behaviour is proved through both adapters.
"""

from __future__ import annotations

import html
import json
import re
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

with warnings.catch_warnings():
    # webtest still imports the cgi module (deprecated since Python 3.11).
    warnings.simplefilter("ignore", DeprecationWarning)
    import webtest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from penchant import Catalog, Category, Item, Penchant
from penchant.middleware.integrations import Personalization, personalization_dependency
from tests.reliability.sites import BEACON, all_rows

__all__ = [
    "ASGI_HOSTS",
    "BEACON",
    "DOWN_DATABASE_URL",
    "HOSTS",
    "WSGI_HOSTS",
    "Client",
    "Reply",
    "beacon_body",
    "catalog",
    "make_client",
    "make_penchant",
    "make_penchant_with_database_down",
    "rows",
]

ASGI_HOSTS = ("starlette", "fastapi")
WSGI_HOSTS = ("flask", "wsgi")
HOSTS = (*ASGI_HOSTS, *WSGI_HOSTS)
BROWSER = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)


def catalog() -> Catalog:
    categories = [
        Category(1, "Injectables", "injectables", ("botox", "filler"), "/categories/1"),
        Category(2, "Laser", "laser", ("laser", "hair"), "/categories/2"),
        Category(3, "Body", "body", ("liposuction",), "/categories/3"),
    ]
    items = [
        Item("procedure", 1, "Botox", (1,), url="/procedures/1"),
        Item("procedure", 2, "Fillers", (1,), url="/procedures/2"),
        Item("procedure", 3, "Laser hair removal", (2,), url="/procedures/3"),
        Item("procedure", 4, "Laser resurfacing", (2,), url="/procedures/4"),
        Item("procedure", 5, "Liposuction", (3,), url="/procedures/5"),
        Item("procedure", 6, "Tummy tuck", (3,), url="/procedures/6"),
        Item("procedure", 7, "Lip filler", (1,), url="/procedures/7"),
        Item("doctor", 1, "Dr. Ames", procedure_ids=(1, 2), url="/doctors/1"),
        Item("doctor", 2, "Dr. Bell", procedure_ids=(3, 4), url="/doctors/2"),
        Item("doctor", 3, "Dr. Cruz", procedure_ids=(5, 6), url="/doctors/3"),
        Item("package", 1, "Glow", procedure_ids=(1, 2), url="/packages/1"),
    ]
    return Catalog(categories, items)


URL_PATTERNS = {
    "/procedures/{id}": "procedure",
    "/doctors/{id}": "doctor",
    "/categories/{id}": "category",
    "/packages/{id}": "package",
}


#: A database that is down: nothing listens on port 1.
DOWN_DATABASE_URL = "postgresql://postgres@127.0.0.1:1/penchant_nowhere"


def _penchant(database_url: str, settings: dict[str, Any]) -> Penchant:
    options: dict[str, Any] = {
        "secret_key": "test-secret-0123456789abcdef",
        "url_patterns": URL_PATTERNS,
        "holdout": 0.0,
        "flush_interval": 0.05,
        **settings,
    }
    return Penchant(database_url=database_url, catalog=catalog(), **options)


def make_penchant(database_url: str, **settings: Any) -> Penchant:
    """A Penchant for tests: known secret, no holdout, quick writer, tables created."""
    penchant = _penchant(database_url, settings)
    penchant.init_db()
    return penchant


def make_penchant_with_database_down(**settings: Any) -> Penchant:
    """:func:`make_penchant` over :data:`DOWN_DATABASE_URL`: no table, no answer."""
    return _penchant(DOWN_DATABASE_URL, settings)


def rows(database_url: str) -> list[dict[str, Any]]:
    """Every stored interaction, oldest first, read with a fresh engine."""
    return sorted(all_rows(database_url, "user_interactions"), key=lambda row: int(row["id"]))


def beacon_body(token: str | None, *events: Mapping[str, Any]) -> str:
    return json.dumps({"token": token, "events": list(events)})


# --------------------------------------------------------------------- pages
def _page(title: str, p: Any) -> str:
    items = "".join(
        f'<li data-penchant-type="{r.item.target_type}" data-penchant-id="{r.item.id}">'
        f"{html.escape(r.item.name)} ({html.escape(str(r.reason))})</li>"
        for r in p.procedures()
    )
    return (
        f"<!doctype html><html><head><title>{html.escape(title)}</title>{p.script_tag()}"
        f"</head><body><h1>{html.escape(title)}</h1><ul>{items}</ul></body></html>"
    )


PLAIN = "<!doctype html><html><body>plain page</body></html>"
STATIC = "body{color:black}"


class Boom(RuntimeError):
    """The host view's own exception: it must come out of the middleware unchanged."""


# ------------------------------------------------------------------ Starlette
def _starlette_app(fastapi: bool) -> Any:
    async def home(request: Request) -> Response:
        return HTMLResponse(_page("Home", request.state.personalization))

    async def procedure(request: Request) -> Response:
        p = request.scope["penchant.personalization"]
        return HTMLResponse(_page(f"Procedure {request.path_params['id']}", p))

    async def plain(request: Request) -> Response:
        return HTMLResponse(PLAIN)

    async def data(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def moved(request: Request) -> Response:
        return RedirectResponse("/", status_code=302)

    async def missing(request: Request) -> Response:
        return HTMLResponse("<p>not here</p>", status_code=404)

    async def boom(request: Request) -> Response:
        raise Boom("the view failed")

    async def static(request: Request) -> Response:
        return PlainTextResponse(STATIC, media_type="text/css")

    async def stream(request: Request) -> Response:
        async def chunks() -> Any:
            for i in range(3):
                yield f"<p>chunk {i}</p>".encode()

        return StreamingResponse(chunks(), media_type="text/html")

    async def form(request: Request) -> Response:
        p = request.state.personalization
        ok = p.track("form_submit", "procedure", 1, {"form": "consultation"})
        return HTMLResponse(f"<p>tracked {ok}</p>")

    async def whoami(request: Request) -> Response:
        p = request.state.personalization
        return JSONResponse(
            {
                "fingerprint": p.fingerprint,
                "tracking_allowed": p.tracking_allowed,
                "reason": p.reason,
                "variant": p.variant,
                "session_id": p.session_id,
            }
        )

    routes = [
        ("/", home, ["GET", "HEAD"]),
        ("/procedures/{id:int}", procedure, ["GET", "HEAD"]),
        ("/plain", plain, ["GET", "HEAD"]),
        ("/api/data", data, ["GET"]),
        ("/moved", moved, ["GET"]),
        ("/missing", missing, ["GET"]),
        ("/boom", boom, ["GET"]),
        ("/static/app.css", static, ["GET"]),
        ("/stream", stream, ["GET"]),
        ("/form", form, ["POST"]),
        ("/whoami", whoami, ["GET"]),
    ]
    if fastapi:
        app = FastAPI()
        for path, view, methods in routes:
            app.add_api_route(path.replace(":int", ""), view, methods=methods)

        dependency = Depends(personalization_dependency)

        @app.get("/depends")
        async def depends(p: Personalization = dependency) -> Any:
            return {"fingerprint": p.fingerprint, "names": [r.item.name for r in p.doctors()]}

        return app
    return Starlette(routes=[Route(path, view, methods=m) for path, view, m in routes])


# ---------------------------------------------------------------------- Flask
def _flask_app(penchant: Penchant) -> Any:
    from flask import Flask, Response, jsonify, redirect, request

    from penchant.middleware.integrations import init_flask

    app = Flask("penchant_test_host")

    @app.get("/")
    def home() -> Any:
        return _page("Home", request.personalization)  # type: ignore[attr-defined]

    @app.get("/procedures/<int:id>")
    def procedure(id: int) -> Any:
        return _page(f"Procedure {id}", request.environ["penchant.personalization"])

    @app.get("/plain")
    def plain() -> Any:
        return PLAIN

    @app.get("/api/data")
    def data() -> Any:
        return jsonify(ok=True)

    @app.get("/moved")
    def moved() -> Any:
        return redirect("/", 302)

    @app.get("/missing")
    def missing() -> Any:
        return "<p>not here</p>", 404

    @app.get("/boom")
    def boom() -> Any:
        raise Boom("the view failed")

    @app.get("/static/app.css")
    def static_file() -> Any:
        return Response(STATIC, mimetype="text/css")

    @app.get("/stream")
    def stream() -> Any:
        return Response((f"<p>chunk {i}</p>" for i in range(3)), mimetype="text/html")

    @app.post("/form")
    def form() -> Any:
        p = request.personalization  # type: ignore[attr-defined]
        ok = p.track("form_submit", "procedure", 1, {"form": "consultation"})
        return f"<p>tracked {ok}</p>"

    @app.get("/whoami")
    def whoami() -> Any:
        p = request.personalization  # type: ignore[attr-defined]
        return jsonify(
            fingerprint=p.fingerprint,
            tracking_allowed=p.tracking_allowed,
            reason=p.reason,
            variant=p.variant,
            session_id=p.session_id,
        )

    app.config["PROPAGATE_EXCEPTIONS"] = True
    init_flask(app, penchant)
    return app


# ------------------------------------------------------------------ bare WSGI
_PROCEDURE = re.compile(r"/procedures/([0-9]+)")


def _wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
    path = environ.get("PATH_INFO", "/")
    method = environ["REQUEST_METHOD"]
    p = environ.get("penchant.personalization")
    html_type = [("Content-Type", "text/html; charset=utf-8")]

    def reply(status: str, body: str, headers: list[tuple[str, str]] = html_type) -> Any:
        start_response(status, headers)
        return [body.encode()]

    if path == "/" and method in ("GET", "HEAD"):
        return reply("200 OK", _page("Home", p))
    if (m := _PROCEDURE.fullmatch(path)) and method in ("GET", "HEAD"):
        return reply("200 OK", _page(f"Procedure {m.group(1)}", p))
    if path == "/plain":
        return reply("200 OK", PLAIN)
    if path == "/api/data":
        return reply("200 OK", '{"ok": true}', [("Content-Type", "application/json")])
    if path == "/moved":
        return reply("302 Found", "", [("Location", "/"), ("Content-Type", "text/html")])
    if path == "/missing":
        return reply("404 Not Found", "<p>not here</p>")
    if path == "/boom":
        raise Boom("the view failed")
    if path == "/static/app.css":
        return reply("200 OK", STATIC, [("Content-Type", "text/css")])
    if path == "/stream":
        start_response("200 OK", html_type)
        return (f"<p>chunk {i}</p>".encode() for i in range(3))
    if path == "/form" and method == "POST":
        ok = p.track("form_submit", "procedure", 1, {"form": "consultation"})
        return reply("200 OK", f"<p>tracked {ok}</p>")
    if path == "/whoami":
        body = json.dumps(
            {
                "fingerprint": p.fingerprint,
                "tracking_allowed": p.tracking_allowed,
                "reason": p.reason,
                "variant": p.variant,
                "session_id": p.session_id,
            }
        )
        return reply("200 OK", body, [("Content-Type", "application/json")])
    return reply("404 Not Found", "<p>no route</p>")


# --------------------------------------------------------------------- client
@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str
    set_cookies: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.text)


class Client:
    """One interface over Starlette's TestClient (ASGI) and webtest (WSGI)."""

    def __init__(
        self, kind: str, penchant: Penchant, *, peer: str = "203.0.113.7", secure: bool = False
    ) -> None:
        self.kind = kind
        self.secure = secure
        self.penchant = penchant
        self.peer = peer
        self.default_headers = {"User-Agent": BROWSER, "Accept-Language": "en-GB,en;q=0.9"}
        if kind in ASGI_HOSTS:
            from starlette.testclient import TestClient

            self.app = penchant.asgi(_starlette_app(kind == "fastapi"))
            self._asgi = TestClient(
                self.app,
                base_url="https://testserver" if secure else "http://testserver",
                client=(peer, 40000),
                follow_redirects=False,
            )
            self._asgi.__enter__()  # lifespan startup
        else:
            if kind == "flask":
                flask_app = _flask_app(penchant)
                self.app = flask_app.wsgi_app
                self._host = flask_app
            else:
                self.app = penchant.wsgi(_wsgi_app)
                self._host = self.app
            environ = {"REMOTE_ADDR": peer}
            if secure:
                environ.update({"wsgi.url_scheme": "https", "HTTP_HOST": "localhost:443"})
            self._wsgi = webtest.TestApp(self._host, extra_environ=environ, lint=kind == "wsgi")

    @property
    def core(self) -> Any:
        """The middleware's shared core (for signing test cookies with the site's keys)."""
        return self.app.core

    @property
    def origin(self) -> str:
        """The Origin a browser would send for this site's own pages."""
        scheme = "https" if self.secure else "http"
        return f"{scheme}://testserver" if self.asgi else f"{scheme}://localhost"

    @property
    def asgi(self) -> bool:
        return self.kind in ASGI_HOSTS

    def close(self) -> None:
        if self.asgi:
            self._asgi.__exit__(None, None, None)

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: str | bytes | None = None,
        content_type: str | None = None,
    ) -> Reply:
        merged = {**self.default_headers, **(headers or {})}
        if content_type is not None:
            merged["Content-Type"] = content_type
        data = body.encode() if isinstance(body, str) else body
        if self.asgi:
            response = self._asgi.request(method, path, headers=merged, content=data)
            cookies = response.headers.get_list("set-cookie")
            return Reply(
                response.status_code,
                {k.lower(): v for k, v in response.headers.items()},
                response.text,
                cookies,
            )
        # webtest: header names as given; the environ keys are derived from them.
        kwargs: dict[str, Any] = {"headers": merged, "expect_errors": True}
        if data is not None:
            kwargs["params"] = data
        if method == "GET":
            response = self._wsgi.get(path, **kwargs)
        elif method == "HEAD":
            response = self._wsgi.head(path, **kwargs)
        elif method == "DELETE":
            response = self._wsgi.delete(path, **kwargs)
        else:
            if "Content-Type" in merged:
                kwargs["content_type"] = merged["Content-Type"]
            response = self._wsgi.post(path, **kwargs)
        cookies = [v for k, v in response.headerlist if k.lower() == "set-cookie"]
        return Reply(
            response.status_int,
            {k.lower(): v for k, v in response.headerlist},
            response.body.decode("utf-8", "replace"),
            cookies,
        )

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Reply:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Reply:
        return self.request("DELETE", path, **kwargs)

    def token(self, path: str = "/", **kwargs: Any) -> str:
        """The beacon token of a page, as the tracker reads it from the script tag."""
        reply = self.get(path, **kwargs)
        found = re.search(r'data-token="([^"]*)"', reply.text)
        assert found is not None, reply.text
        return html.unescape(found.group(1))

    def beacon(self, *events: Mapping[str, Any], token: str | None = None, **kwargs: Any) -> Reply:
        if token is None:
            token = self.token(headers=kwargs.get("headers"))
        return self.post(
            BEACON,
            body=beacon_body(token, *events),
            content_type="text/plain;charset=UTF-8",
            **kwargs,
        )


def make_client(kind: str, penchant: Penchant, **kwargs: Any) -> Client:
    return Client(kind, penchant, **kwargs)
