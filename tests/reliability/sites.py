"""Small host sites wrapped by penchant, shared by the reliability and security tests.

A catalog of a few categories and items, a Starlette app and a bare WSGI app
that serve HTML pages (using the lazy personalization object on some), and
helpers to read what the database holds.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa

from penchant import Catalog, Category, Item

__all__ = [
    "BEACON",
    "all_rows",
    "beacon_event",
    "count_rows",
    "engine_for",
    "small_catalog",
    "starlette_site",
    "wsgi_site",
]

BEACON = "/personalization/track-interaction"


def small_catalog() -> Catalog:
    categories = [
        Category(1, "Injectables", "injectables", ("botox", "filler")),
        Category(2, "Skin", "skin", ("peel", "laser")),
        Category(3, "Body", "body", ("liposuction",)),
    ]
    procedures = [Item("procedure", i, f"Procedure {i}", ((i % 3) + 1,)) for i in range(1, 10)]
    doctors = [Item("doctor", i, f"Doctor {i}", procedure_ids=(i, i + 1)) for i in range(1, 5)]
    packages = [Item("package", i, f"Package {i}", procedure_ids=(i,)) for i in range(1, 3)]
    return Catalog(categories, [*procedures, *doctors, *packages])


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html><head><title>"
        + html.escape(title)
        + "</title></head><body>"
        + body
        + "</body></html>"
    )


def _tag(personalization: Any) -> str:
    """The tracker's script tag (it carries the page token); no database read."""
    return "" if personalization is None else str(personalization.script_tag())


def _recommended(personalization: Any) -> str:
    if personalization is None:
        return ""
    names = [html.escape(r.item.name) for r in personalization.procedures()]
    return "<ul>" + "".join(f"<li>{n}</li>" for n in names) + "</ul>" + _tag(personalization)


def starlette_site() -> Any:
    """A Starlette app: a home page, procedure pages that ask for recommendations, a form."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route

    async def home(request: Request) -> HTMLResponse:
        personalization = request.scope.get("penchant.personalization")
        return HTMLResponse(_page("Home", "<h1>Welcome</h1>" + _tag(personalization)))

    async def procedure(request: Request) -> HTMLResponse:
        personalization = request.scope.get("penchant.personalization")
        pid = int(request.path_params["pid"])
        return HTMLResponse(_page(f"Procedure {pid}", _recommended(personalization)))

    async def contact(request: Request) -> HTMLResponse:
        form = await request.form()
        return HTMLResponse(_page("Thanks", f"<p>{len(form)} fields</p>"))

    async def api(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/", home),
            Route("/procedures/{pid:int}", procedure),
            Route("/contact", contact, methods=["POST"]),
            Route("/api/ping", api),
            # Any other path is an HTML page, as on most sites with a CMS.
            Route("/{rest:path}", home),
        ]
    )


def wsgi_site() -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """The same pages as a bare WSGI callable."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/api/ping":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b'{"ok": true}']
        if path.startswith("/procedures/") and path.rsplit("/", 1)[1].isdigit():
            personalization = environ.get("penchant.personalization")
            body = _page(path, _recommended(personalization))
        elif path == "/contact":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            environ["wsgi.input"].read(size)
            body = _page("Thanks", "<p>sent</p>")
        else:
            personalization = environ.get("penchant.personalization")
            body = _page("Home", "<h1>Welcome</h1>" + _tag(personalization))
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [body.encode()]

    return app


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


def engine_for(database_url: str) -> sa.Engine:
    """A plain engine of the test's own (psycopg2 for PostgreSQL), no pooling."""
    url = sa.make_url(database_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(drivername="postgresql+psycopg2")
    return sa.create_engine(url, poolclass=sa.NullPool)


def count_rows(database_url: str, table: str = "user_interactions") -> int:
    engine = engine_for(database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"select count(*) from {table}")).scalar_one())
    finally:
        engine.dispose()


def all_rows(database_url: str, table: str) -> list[dict[str, Any]]:
    engine = engine_for(database_url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.text(f"select * from {table}"))]
    finally:
        engine.dispose()


def as_json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


class Reply:
    """A response, whichever adapter produced it."""

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def json(self) -> Any:
        return json.loads(self.body)


class SiteClient:
    """One interface over the ASGI adapter (Starlette's TestClient) and the WSGI one (webtest).

    It keeps no cookies between requests: a test sends the ones it means to send.
    """

    def __init__(self, adapter: str, penchant: Any, *, peer: str = "198.51.100.20") -> None:
        self.adapter = adapter
        if adapter == "asgi":
            from starlette.testclient import TestClient

            self._asgi = TestClient(
                penchant.asgi(starlette_site()), client=(peer, 50000), follow_redirects=False
            )
        elif adapter == "wsgi":
            import warnings

            with warnings.catch_warnings():
                # webtest still imports the cgi module (deprecated since Python 3.11).
                warnings.simplefilter("ignore", DeprecationWarning)
                import webtest
            self._wsgi = webtest.TestApp(
                penchant.wsgi(wsgi_site()), extra_environ={"REMOTE_ADDR": peer}
            )
        else:
            raise ValueError(adapter)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        scheme: str = "http",
    ) -> Reply:
        headers = dict(headers or {})
        if self.adapter == "asgi":
            response = self._asgi.request(
                method, f"{scheme}://testserver{path}", content=body, headers=headers
            )
            self._asgi.cookies.clear()
            return Reply(
                response.status_code, list(response.headers.multi_items()), response.content
            )
        content_type = headers.pop("Content-Type", None)
        kwargs: dict[str, Any] = {"method": method, "headers": headers, "expect_errors": True}
        if body or method in ("POST", "PUT", "DELETE"):
            kwargs["body"] = body
        if content_type is not None:
            kwargs["content_type"] = content_type
        environ = {"wsgi.url_scheme": scheme, "HTTP_HOST": "testserver"}
        response = self._wsgi.request(path, environ=environ, **kwargs)
        self._wsgi.cookiejar.clear()
        return Reply(response.status_int, list(response.headerlist), response.body)

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: bytes | str = b"", **kwargs: Any) -> Reply:
        data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
        return self.request("POST", path, body=data, **kwargs)

    def close(self) -> None:
        if self.adapter == "asgi":
            self._asgi.close()
