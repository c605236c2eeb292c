"""The demo marketplace: a Starlette app wrapped by penchant through its public API."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from demo_app.catalog import CATEGORIES, build_catalog
from penchant import Catalog, Category, Item, Penchant, Recommendation

__all__ = ["ABOUT_PATH", "DEMO_NAME", "URL_PATTERNS", "create_app", "search"]

HERE = Path(__file__).parent

#: Page paths whose views move affinities, as penchant maps them to targets.
URL_PATTERNS: dict[str, str] = {
    "/procedures/{id}": "procedure",
    "/doctors/{id}": "doctor",
    "/categories/{id}": "category",
    "/packages/{id}": "package",
}

#: Where the demo says what it is, so that the simulated crowd can find a running one.
ABOUT_PATH = "/about.json"
DEMO_NAME = "penchant-demo"

_WORD = re.compile(r"[a-z0-9]+")


def search(catalog: Catalog, query: str, *, limit: int = 24) -> dict[str, list[Any]]:
    """Catalog entries whose words contain every word of the query (prefix match)."""
    words = _WORD.findall(query.lower())
    found: dict[str, list[Any]] = {
        "categories": [],
        "procedures": [],
        "doctors": [],
        "packages": [],
    }
    if not words:
        return found

    def matches(*texts: object) -> bool:
        vocabulary = set(_WORD.findall(" ".join(str(t) for t in texts).lower()))
        return all(any(v.startswith(w) for v in vocabulary) for w in words)

    for category in catalog.categories:
        if matches(category.name, *category.keywords):
            found["categories"].append(category)
    for kind, key in (("procedure", "procedures"), ("doctor", "doctors"), ("package", "packages")):
        for item in catalog.items(kind):
            attributes = item.attributes
            if matches(
                item.name,
                attributes.get("description", ""),
                attributes.get("specialty", ""),
                attributes.get("city", ""),
                attributes.get("category", ""),
            ):
                found[key].append(item)
    return {key: values[:limit] for key, values in found.items()}


def _initials(name: str) -> str:
    words = [w for w in name.replace(",", " ").split() if w[:1].isupper() and w != "Dr."]
    return "".join(w[0] for w in words[:2])


def _personalization(request: Request) -> Any:
    return request.state.personalization


def _heading(recs: Sequence[Recommendation], personal: str, popular: str) -> str:
    return personal if any(r.reason.kind != "popular" for r in recs) else popular


def create_app(
    *,
    database_url: str,
    secret_key: str,
    dashboard_user: str = "admin",
    dashboard_password: str | None = None,
    catalog: Catalog | None = None,
    **settings: Any,
) -> tuple[Callable[..., Any], Penchant]:
    """The marketplace wrapped by penchant, and the Penchant service itself.

    ``settings`` are any further :class:`penchant.Settings` fields.
    """
    catalog = catalog if catalog is not None else build_catalog()
    penchant = Penchant(
        database_url=database_url,
        secret_key=secret_key,
        catalog=catalog,
        url_patterns=URL_PATTERNS,
        dashboard_user=dashboard_user,
        dashboard_password=dashboard_password,
        **settings,
    )
    penchant.init_db()
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals.update(
        categories=catalog.categories,
        prefix=penchant.settings.prefix,
        blurbs={c.id: c.blurb for c in CATEGORIES},
        initials=_initials,
        counts={
            "procedures": len(catalog.items("procedure")),
            "doctors": len(catalog.items("doctor")),
        },
    )

    def page(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        context["p"] = _personalization(request)
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    def not_found(request: Request, what: str) -> Response:
        return page(request, "not_found.html", status_code=404, what=what)

    def procedures_of(category: Category) -> tuple[Item, ...]:
        return catalog.items_in("procedure", category.id)

    async def home(request: Request) -> Response:
        p = _personalization(request)
        recs = {
            "categories": p.categories(limit=6),
            "procedures": p.procedures(limit=6),
            "doctors": p.doctors(limit=9),
            "packages": p.packages(limit=3),
        }
        headings = {
            "categories": _heading(recs["categories"], "Categories for you", "Popular categories"),
            "procedures": _heading(recs["procedures"], "Procedures for you", "Popular procedures"),
            "doctors": _heading(recs["doctors"], "Doctors for you", "Popular doctors"),
            "packages": _heading(recs["packages"], "Packages for you", "Popular packages"),
        }
        return page(request, "home.html", recs=recs, headings=headings)

    async def category_index(request: Request) -> Response:
        return page(request, "categories.html", procedures_of=procedures_of)

    async def category_page(request: Request) -> Response:
        category = catalog.category(request.path_params["id"])
        if category is None:
            return not_found(request, "category")
        doctors = catalog.items_in("doctor", category.id)
        packages = catalog.items_in("package", category.id)
        return page(
            request,
            "category.html",
            category=category,
            procedures=procedures_of(category),
            doctors=doctors[:6],
            packages=packages,
            recs=_personalization(request).procedures(limit=4),
        )

    async def procedure_page(request: Request) -> Response:
        procedure = catalog.item("procedure", request.path_params["id"])
        if procedure is None:
            return not_found(request, "procedure")
        doctors = [d for d in catalog.items("doctor") if procedure.id in d.procedure_ids]
        packages = [k for k in catalog.items("package") if procedure.id in k.procedure_ids]
        category = catalog.category(procedure.category_ids[0]) if procedure.category_ids else None
        return page(
            request,
            "procedure.html",
            procedure=procedure,
            category=category,
            doctors=doctors,
            packages=packages,
            recs=_personalization(request).procedures(limit=4),
        )

    async def doctor_page(request: Request) -> Response:
        doctor = catalog.item("doctor", request.path_params["id"])
        if doctor is None:
            return not_found(request, "doctor")
        procedures = [catalog.item("procedure", pid) for pid in doctor.procedure_ids]
        return page(
            request,
            "doctor.html",
            doctor=doctor,
            procedures=[p for p in procedures if p is not None],
            recs=_personalization(request).doctors(limit=3),
        )

    async def package_page(request: Request) -> Response:
        package = catalog.item("package", request.path_params["id"])
        if package is None:
            return not_found(request, "package")
        procedures = [catalog.item("procedure", pid) for pid in package.procedure_ids]
        return page(
            request,
            "package.html",
            package=package,
            procedures=[p for p in procedures if p is not None],
            recs=_personalization(request).packages(limit=3),
        )

    async def search_page(request: Request) -> Response:
        query = request.query_params.get("q", "").strip()[:100]
        results = search(catalog, query) if query else None
        return page(request, "search.html", query=query, results=results)

    async def consultation(request: Request) -> Response:
        if request.method == "POST":
            form = await request.form()
            # Nothing typed in the form is kept: the demo only says thank you.
            target = str(form.get("procedure_id") or "")
            suffix = f"?procedure={target}" if target.isdigit() else ""
            return RedirectResponse(f"/consultation/thanks{suffix}", status_code=303)
        raw = request.query_params.get("procedure", "")
        procedure = catalog.item("procedure", int(raw)) if raw.isdigit() else None
        return page(
            request,
            "consultation.html",
            procedure=procedure,
            procedures=catalog.items("procedure"),
        )

    async def thanks(request: Request) -> Response:
        raw = request.query_params.get("procedure", "")
        procedure = catalog.item("procedure", int(raw)) if raw.isdigit() else None
        return page(request, "thanks.html", procedure=procedure)

    async def privacy(request: Request) -> Response:
        return page(request, "privacy.html")

    async def about(_request: Request) -> Response:
        # JSON, not HTML: asking what answers here is no page view.
        return JSONResponse({"app": DEMO_NAME, "site": "Radiant"})

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        penchant.close()

    routes = [
        Route("/", home),
        Route("/categories", category_index),
        Route("/categories/{id:int}", category_page),
        Route("/procedures/{id:int}", procedure_page),
        Route("/doctors/{id:int}", doctor_page),
        Route("/packages/{id:int}", package_page),
        Route("/search", search_page),
        Route("/consultation", consultation, methods=["GET", "POST"]),
        Route("/consultation/thanks", thanks),
        Route("/privacy", privacy),
        Route(ABOUT_PATH, about),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]

    async def missing(request: Request, _exc: Exception) -> Response:
        return not_found(request, "page")

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: missing})
    return penchant.asgi(app), penchant
