"""The sites the tests wrap with penchant, one client over both adapters, and what reads
back a test's database.

Two sites, each with the client that drives it:

* The **host apps** (:data:`HOSTS`): one site written for Starlette and FastAPI (ASGI)
  and for Flask and a bare WSGI callable, over :func:`catalog`: pages that show
  recommendations, a plain page, JSON, a redirect, an error, a static file, a stream,
  a form that tracks server-side. :func:`host_client` is a browser on it: its
  User-Agent and language on every request, the cookies it is given kept.
* The **small site** (:data:`ADAPTERS`): :func:`starlette_site` and :func:`wsgi_site`
  over :func:`small_catalog`, a home page that only carries the tracker's tag and
  procedure pages that list recommendations. :func:`site_client` sends only the
  headers a test gives and keeps no cookie: a test sends the ones it means to send.
"""

from __future__ import annotations

import html
import json
import re
import sqlite3
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
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

__all__ = [
    "ADAPTERS",
    "ASGI_HOSTS",
    "BEACON",
    "BROWSER",
    "DOWN_DATABASE_URL",
    "HOSTS",
    "PLAIN",
    "STATIC",
    "URL_PATTERNS",
    "WSGI_HOSTS",
    "Boom",
    "Client",
    "Clock",
    "Reply",
    "Timer",
    "all_rows",
    "beacon_body",
    "beacon_event",
    "catalog",
    "count_rows",
    "engine_for",
    "every_value",
    "flushed_rows",
    "host_client",
    "make_penchant",
    "make_penchant_with_database_down",
    "site_client",
    "small_catalog",
    "starlette_site",
    "tables_locked",
    "webtest_app",
    "wsgi_site",
]

BEACON = "/personalization/track-interaction"
#: The page token in the tracker's script tag, as the tracker reads it.
_TOKEN = re.compile(r'data-token="([^"]*)"')

ASGI_HOSTS = ("starlette", "fastapi")
WSGI_HOSTS = ("flask", "wsgi")
HOSTS = (*ASGI_HOSTS, *WSGI_HOSTS)
ADAPTERS = ("asgi", "wsgi")

#: The browser of :func:`host_client`.
BROWSER = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)
_BROWSER_HEADERS = {"User-Agent": BROWSER, "Accept-Language": "en-GB,en;q=0.9"}


# ------------------------------------------------------------------- catalogs
def catalog() -> Catalog:
    """The host apps' catalog: named procedures, doctors and a package, with URLs."""
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


def small_catalog() -> Catalog:
    """The small site's catalog: "Procedure 1" to "Procedure 9", four doctors, two packages."""
    categories = [
        Category(1, "Injectables", "injectables", ("botox", "filler")),
        Category(2, "Skin", "skin", ("peel", "laser")),
        Category(3, "Body", "body", ("liposuction",)),
    ]
    procedures = [Item("procedure", i, f"Procedure {i}", ((i % 3) + 1,)) for i in range(1, 10)]
    doctors = [Item("doctor", i, f"Doctor {i}", procedure_ids=(i, i + 1)) for i in range(1, 5)]
    packages = [Item("package", i, f"Package {i}", procedure_ids=(i,)) for i in range(1, 3)]
    return Catalog(categories, [*procedures, *doctors, *packages])


#: The host apps' URL patterns.
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
    """A Penchant for the host apps: known secret, no holdout, quick writer, tables created."""
    penchant = _penchant(database_url, settings)
    penchant.init_db()
    return penchant


def make_penchant_with_database_down(**settings: Any) -> Penchant:
    """:func:`make_penchant` over :data:`DOWN_DATABASE_URL`: no table, no answer."""
    return _penchant(DOWN_DATABASE_URL, settings)


# ---------------------------------------------------------------------- pages
def _page(title: str, personalization: Any, *, listed: bool = True) -> str:
    """A page of either site: the tracker's tag (it carries the page's token) and,
    when ``listed``, the visitor's recommended procedures with their reasons.
    Without ``listed`` the page reads nothing from the database."""
    if personalization is None:
        return _html(title, "", "")
    items = ""
    if listed:
        items = "".join(
            f'<li data-penchant-type="{r.item.target_type}" data-penchant-id="{r.item.id}">'
            f"{html.escape(r.item.name)} ({html.escape(str(r.reason))})</li>"
            for r in personalization.procedures()
        )
    return _html(title, str(personalization.script_tag()), items)


def _html(title: str, tag: str, items: str) -> str:
    return (
        f"<!doctype html><html><head><title>{html.escape(title)}</title>{tag}"
        f"</head><body><h1>{html.escape(title)}</h1><ul>{items}</ul></body></html>"
    )


PLAIN = "<!doctype html><html><body>plain page</body></html>"
STATIC = "body{color:black}"


class Boom(RuntimeError):
    """The host view's own exception: it must come out of the middleware unchanged."""


def _whoami(p: Any) -> dict[str, Any]:
    return {
        "fingerprint": p.fingerprint,
        "tracking_allowed": p.tracking_allowed,
        "reason": p.reason,
        "variant": p.variant,
        "session_id": p.session_id,
    }


def _track_form(p: Any) -> str:
    ok = p.track("form_submit", "procedure", 1, {"form": "consultation"})
    return f"<p>tracked {ok}</p>"


# ------------------------------------------------- host apps: Starlette, FastAPI
def _starlette_host(fastapi: bool) -> Any:
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
        return HTMLResponse(_track_form(request.state.personalization))

    async def whoami(request: Request) -> Response:
        return JSONResponse(_whoami(request.state.personalization))

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
        from fastapi import Depends, FastAPI

        app = FastAPI()
        for path, view, methods in routes:
            app.add_api_route(path.replace(":int", ""), view, methods=methods)

        dependency = Depends(personalization_dependency)

        @app.get("/depends")
        async def depends(p: Personalization = dependency) -> Any:
            return {"fingerprint": p.fingerprint, "names": [r.item.name for r in p.doctors()]}

        return app
    return Starlette(routes=[Route(path, view, methods=m) for path, view, m in routes])


# --------------------------------------------------------------- host app: Flask
def _flask_host(penchant: Penchant) -> Any:
    from flask import Flask, jsonify, redirect, request
    from flask import Response as FlaskResponse

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
        return FlaskResponse(STATIC, mimetype="text/css")

    @app.get("/stream")
    def stream() -> Any:
        return FlaskResponse((f"<p>chunk {i}</p>" for i in range(3)), mimetype="text/html")

    @app.post("/form")
    def form() -> Any:
        return _track_form(request.personalization)  # type: ignore[attr-defined]

    @app.get("/whoami")
    def whoami() -> Any:
        return jsonify(**_whoami(request.personalization))  # type: ignore[attr-defined]

    app.config["PROPAGATE_EXCEPTIONS"] = True
    init_flask(app, penchant)
    return app


# ----------------------------------------------------------- host app: bare WSGI
_PROCEDURE = re.compile(r"/procedures/([0-9]+)")
_HTML = [("Content-Type", "text/html; charset=utf-8")]
_JSON = [("Content-Type", "application/json")]


def _wsgi_host(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
    path = environ.get("PATH_INFO", "/")
    method = environ["REQUEST_METHOD"]
    p = environ.get("penchant.personalization")

    def reply(status: str, body: str, headers: list[tuple[str, str]] = _HTML) -> Any:
        start_response(status, headers)
        return [body.encode()]

    if path == "/" and method in ("GET", "HEAD"):
        return reply("200 OK", _page("Home", p))
    if (m := _PROCEDURE.fullmatch(path)) and method in ("GET", "HEAD"):
        return reply("200 OK", _page(f"Procedure {m.group(1)}", p))
    if path == "/plain":
        return reply("200 OK", PLAIN)
    if path == "/api/data":
        return reply("200 OK", '{"ok": true}', _JSON)
    if path == "/moved":
        return reply("302 Found", "", [("Location", "/"), ("Content-Type", "text/html")])
    if path == "/missing":
        return reply("404 Not Found", "<p>not here</p>")
    if path == "/boom":
        raise Boom("the view failed")
    if path == "/static/app.css":
        return reply("200 OK", STATIC, [("Content-Type", "text/css")])
    if path == "/stream":
        start_response("200 OK", _HTML)
        return (f"<p>chunk {i}</p>".encode() for i in range(3))
    if path == "/form" and method == "POST":
        return reply("200 OK", _track_form(p))
    if path == "/whoami":
        return reply("200 OK", json.dumps(_whoami(p)), _JSON)
    return reply("404 Not Found", "<p>no route</p>")


# ------------------------------------------------------------------ small site
def starlette_site() -> Any:
    """The small site as a Starlette app: any path but the procedures, the form and
    the API is the home page, as on most sites with a CMS."""

    async def home(request: Request) -> HTMLResponse:
        personalization = request.scope.get("penchant.personalization")
        return HTMLResponse(_page("Home", personalization, listed=False))

    async def procedure(request: Request) -> HTMLResponse:
        personalization = request.scope.get("penchant.personalization")
        return HTMLResponse(_page(f"Procedure {request.path_params['pid']}", personalization))

    async def contact(request: Request) -> HTMLResponse:
        await request.form()
        return HTMLResponse(_page("Thanks", None))

    async def api(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/", home),
            Route("/procedures/{pid:int}", procedure),
            Route("/contact", contact, methods=["POST"]),
            Route("/api/ping", api),
            Route("/{rest:path}", home),
        ]
    )


def wsgi_site() -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """The small site as a bare WSGI callable."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        personalization = environ.get("penchant.personalization")
        if path == "/api/ping":
            start_response("200 OK", _JSON)
            return [b'{"ok": true}']
        if path.startswith("/procedures/") and path.rsplit("/", 1)[1].isdigit():
            body = _page(f"Procedure {path.rsplit('/', 1)[1]}", personalization)
        elif path == "/contact":
            environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            body = _page("Thanks", None)
        else:
            body = _page("Home", personalization, listed=False)
        start_response("200 OK", _HTML)
        return [body.encode()]

    return app


# --------------------------------------------------------------------- beacons
def beacon_event(
    event_id: str,
    *,
    interaction_type: str = "click",
    target_type: str = "procedure",
    target_id: int | None = 1,
    **extra: Any,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "interaction_type": interaction_type,
        "target_type": target_type,
        "target_id": target_id,
        "event_id": event_id,
    }
    event.update(extra)
    return event


def beacon_body(token: str | None, *events: Mapping[str, Any]) -> str:
    return json.dumps({"token": token, "events": list(events)})


# --------------------------------------------------------------------- clients
@dataclass(frozen=True)
class Reply:
    """A response, whichever adapter produced it."""

    status: int
    header_list: list[tuple[str, str]]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def headers(self) -> dict[str, str]:
        """Values by lower-case name; a repeated header's values joined with ", "."""
        joined: dict[str, str] = {}
        for key, value in self.header_list:
            name = key.lower()
            joined[name] = f"{joined[name]}, {value}" if name in joined else value
        return joined

    def header(self, name: str) -> str | None:
        """The first value of the header ``name``, or None."""
        found = self.all(name)
        return found[0] if found else None

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.header_list if key.lower() == name.lower()]

    @property
    def set_cookies(self) -> list[str]:
        return self.all("Set-Cookie")

    def json(self) -> Any:
        return json.loads(self.body)


def webtest_app(app: Any, **options: Any) -> Any:
    """``webtest.TestApp(app, **options)``."""
    with warnings.catch_warnings():
        # webtest still imports the cgi module (deprecated since Python 3.11).
        warnings.simplefilter("ignore", DeprecationWarning)
        import webtest
    return webtest.TestApp(app, **options)


class Client:
    """One interface over Starlette's TestClient (ASGI) and webtest (WSGI).

    Made by :func:`host_client` or :func:`site_client`; ``kind`` is the host app (one
    of :data:`HOSTS`) or the small site's adapter. What differs between the two is in
    the options: ``default_headers`` (sent with every request, a test's own
    headers win), ``keep_cookies`` (between requests, as a browser does),
    ``lifespan`` (an ASGI app's startup and shutdown run) and ``lint`` (webtest's
    checks of a WSGI app).
    """

    def __init__(
        self,
        kind: str,
        app: Any,
        penchant: Penchant,
        *,
        asgi: bool,
        base_url: str,
        peer: str,
        default_headers: Mapping[str, str],
        keep_cookies: bool,
        lifespan: bool = False,
        lint: bool = True,
    ) -> None:
        self.kind = kind
        self.app = app
        self.penchant = penchant
        self.asgi = asgi
        self.peer = peer
        self.default_headers = dict(default_headers)
        self.keep_cookies = keep_cookies
        url = urlsplit(base_url)
        self.scheme, self.netloc, self.hostname = url.scheme, url.netloc, url.hostname
        self.lifespan = lifespan
        if asgi:
            from starlette.testclient import TestClient

            self._asgi = TestClient(app, client=(peer, 50000), follow_redirects=False)
            if lifespan:
                self._asgi.__enter__()
        else:
            self._wsgi = webtest_app(app, extra_environ={"REMOTE_ADDR": peer}, lint=lint)

    @property
    def core(self) -> Any:
        """The middleware's shared core (for signing test cookies with the site's keys)."""
        return self.app.core

    @property
    def origin(self) -> str:
        """The Origin a browser would send for this site's own pages."""
        return f"{self.scheme}://{self.hostname}"

    def close(self) -> None:
        if not self.asgi:
            return
        if self.lifespan:
            self._asgi.__exit__(None, None, None)
        else:
            self._asgi.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: str | bytes | None = None,
        content_type: str | None = None,
        scheme: str | None = None,
    ) -> Reply:
        """``scheme`` (default: the client's) is the request's, to send one request
        over HTTPS or plain HTTP; a ``str`` body is sent UTF-8, lone surrogates too."""
        merged = {**self.default_headers, **(headers or {})}
        if content_type is not None:
            merged["Content-Type"] = content_type
        data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
        scheme = scheme or self.scheme
        if self.asgi:
            url = f"{scheme}://{self.netloc}{path}"
            response = self._asgi.request(method, url, headers=merged, content=data)
            if not self.keep_cookies:
                self._asgi.cookies.clear()
            return Reply(
                response.status_code, list(response.headers.multi_items()), response.content
            )
        # webtest sets the body's type apart from the other headers.
        content_type = merged.pop("Content-Type", None)
        kwargs: dict[str, Any] = {"method": method, "headers": merged, "expect_errors": True}
        if data or method in ("POST", "PUT", "DELETE"):
            kwargs["body"] = data or b""
        if content_type is not None:
            kwargs["content_type"] = content_type
        environ = {"wsgi.url_scheme": scheme, "HTTP_HOST": self.netloc}
        response = self._wsgi.request(path, environ=environ, **kwargs)
        if not self.keep_cookies:
            self._wsgi.cookiejar.clear()
        return Reply(response.status_int, list(response.headerlist), response.body)

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: str | bytes | None = None, **kwargs: Any) -> Reply:
        return self.request("POST", path, body=body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Reply:
        return self.request("DELETE", path, **kwargs)

    def token(self, path: str = "/", **kwargs: Any) -> str:
        """The beacon token of a page, as the tracker reads it from the script tag."""
        reply = self.get(path, **kwargs)
        found = _TOKEN.search(reply.text)
        assert found is not None, reply.text
        return html.unescape(found.group(1))

    def beacon(self, *events: Mapping[str, Any], token: str | None = None, **kwargs: Any) -> Reply:
        """The tracker's beacon of ``events``, with the token of the home page by default."""
        if token is None:
            token = self.token(headers=kwargs.get("headers"))
        return self.post(
            BEACON,
            body=beacon_body(token, *events),
            content_type="text/plain;charset=UTF-8",
            **kwargs,
        )


def host_client(
    kind: str, penchant: Penchant, *, peer: str = "203.0.113.7", secure: bool = False
) -> Client:
    """A browser on the host app ``kind`` (one of :data:`HOSTS`) wrapped by ``penchant``:
    :data:`BROWSER` and its language on every request, cookies kept, the ASGI apps'
    lifespan run; over HTTPS when ``secure``."""
    scheme = "https" if secure else "http"
    if kind in ASGI_HOSTS:
        app = penchant.asgi(_starlette_host(kind == "fastapi"))
        base_url = f"{scheme}://testserver"
    elif kind in WSGI_HOSTS:
        app = _flask_host(penchant).wsgi_app if kind == "flask" else penchant.wsgi(_wsgi_host)
        base_url = f"{scheme}://localhost:{443 if secure else 80}"
    else:
        raise ValueError(kind)
    return Client(
        kind,
        app,
        penchant,
        asgi=kind in ASGI_HOSTS,
        base_url=base_url,
        peer=peer,
        default_headers=_BROWSER_HEADERS,
        keep_cookies=True,
        lifespan=True,
        lint=kind == "wsgi",
    )


def site_client(adapter: str, penchant: Penchant, *, peer: str = "198.51.100.20") -> Client:
    """The small site through ``adapter`` ("asgi" or "wsgi"), wrapped by ``penchant``:
    only the headers a test gives, no cookie kept between requests."""
    if adapter not in ADAPTERS:
        raise ValueError(adapter)
    asgi = adapter == "asgi"
    return Client(
        adapter,
        penchant.asgi(starlette_site()) if asgi else penchant.wsgi(wsgi_site()),
        penchant,
        asgi=asgi,
        base_url="http://testserver",
        peer=peer,
        default_headers={},
        keep_cookies=False,
    )


# ---------------------------------------------------------------- the database
def engine_for(database_url: str) -> sa.Engine:
    """A plain engine of the test's own (psycopg2 for PostgreSQL), no pooling."""
    url = sa.make_url(database_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(drivername="postgresql+psycopg2")
    return sa.create_engine(url, poolclass=sa.NullPool)


def all_rows(database_url: str, table: str = "user_interactions") -> list[dict[str, Any]]:
    """Every row of ``table``, read with an engine of its own; by ``id`` where it has one
    (the oldest interaction first)."""
    engine = engine_for(database_url)
    try:
        with engine.connect() as conn:
            found = [dict(r._mapping) for r in conn.execute(sa.text(f"select * from {table}"))]
    finally:
        engine.dispose()
    if found and "id" in found[0]:
        found.sort(key=lambda row: int(row["id"]))
    return found


def flushed_rows(
    site: Client, database_url: str, interaction_type: str | None = None
) -> list[dict[str, Any]]:
    """The stored interactions once the site's writer has written what it holds:
    every one, or those of ``interaction_type``."""
    assert site.penchant.flush(timeout=5.0)
    return [r for r in all_rows(database_url) if interaction_type in (None, r["interaction_type"])]


def count_rows(database_url: str, table: str = "user_interactions") -> int:
    engine = engine_for(database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"select count(*) from {table}")).scalar_one())
    finally:
        engine.dispose()


def every_value(database_url: str) -> list[tuple[str, str, str]]:
    """(table, column, text) of every non-null value of every table, whatever its type."""
    engine = engine_for(database_url)
    found: list[tuple[str, str, str]] = []
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        with engine.connect() as conn:
            for table in metadata.sorted_tables:
                for row in conn.execute(sa.select(table)):
                    for column, value in row._mapping.items():
                        if value is not None:
                            found.append((table.name, str(column), str(value)))
    finally:
        engine.dispose()
    return found


@contextmanager
def tables_locked(database_url: str) -> Iterator[None]:
    """SQLite's write lock, or PostgreSQL's tables of visitor data, held by another
    connection until the block ends."""
    url = sa.make_url(database_url)
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(str(url.database), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    import psycopg2

    pg = psycopg2.connect(database_url)
    try:
        with pg.cursor() as cursor:
            cursor.execute(
                "LOCK TABLE user_interactions, user_category_affinity, penchant_exposures"
                " IN ACCESS EXCLUSIVE MODE"
            )
        yield
    finally:
        pg.rollback()
        pg.close()


# ---------------------------------------------------------------------- clocks
class Clock:
    """A clock the test sets (``Penchant(clock=...)``): ``clock.now`` is what it reads."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Timer:
    """Monotonic seconds that move only when the test moves them (``Penchant(timer=...)``)."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds

    def __call__(self) -> float:
        return self.seconds
