"""``PersonalizationEngine``, the original static API, over a configured ``Penchant``.

It fingerprints Flask, Starlette and plain WSGI requests alike, from
``User-Agent|address|Accept-Language``: keyed (HMAC-SHA256, 32 hex characters) by
default, the original unkeyed MD5 with ``fingerprint="md5"``. Its interactions are
stored and move the visitor's affinities; its lists have the original default
lengths (6 categories, 6 procedures, 9 doctors).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from penchant import Catalog, Category, Item, Penchant, PersonalizationEngine
from tests.harness import engine_for, webtest_app

KEY = "compat-facade-0123456789abcdef"
USER_AGENT = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15"
)
ADDRESS = "203.0.113.9"
LANGUAGE = "fr-CH,fr;q=0.9"
HEADERS = {"User-Agent": USER_AGENT, "Accept-Language": LANGUAGE}
#: md5(USER_AGENT|ADDRESS|LANGUAGE), and HMAC-SHA256 of the same under KEY, cut to 32.
MD5 = "4a6fef65912d181a3add49bf03d94c52"
HMAC = "ded613a3e69654dd1ab4d36e0b99a91a"
#: md5("||"): a request without any of the three.
MD5_OF_NOTHING = "7d010443693eec253a121e2aa2ba177c"

CATALOG = Catalog(
    [
        Category(1, "Injectables"),
        Category(2, "Laser"),
        Category(3, "Body"),
        Category(4, "Skin"),
        Category(5, "Hair"),
        Category(6, "Dental"),
        Category(7, "Eyes"),
    ],
    [
        Item("procedure", 1, "Botox", (1,)),
        Item("procedure", 2, "Laser hair removal", (2,)),
        Item("procedure", 3, "Liposuction", (3,)),
        Item("procedure", 4, "Chemical peel", (4,)),
        Item("procedure", 5, "Hair transplant", (5,)),
        Item("procedure", 6, "Veneers", (6,)),
        Item("procedure", 7, "Eyelid lift", (7,)),
        Item("procedure", 8, "Fillers", (1,)),
        *(Item("doctor", i, f"Doctor {i}", procedure_ids=(i % 8 + 1,)) for i in range(1, 11)),
    ],
)


@pytest.fixture
def configure() -> Iterator[Callable[..., Penchant]]:
    """``configure(database_url, **settings)``: install a Penchant for the static calls."""
    made: list[Penchant] = []

    def configure_(database_url: str, **settings: Any) -> Penchant:
        penchant = Penchant(
            database_url=database_url,
            secret_key=KEY,
            catalog=CATALOG,
            holdout=0.0,
            flush_interval=0.05,
            **settings,
        )
        PersonalizationEngine.configure(penchant)
        made.append(penchant)
        return penchant

    yield configure_
    for penchant in made:
        penchant.close(timeout=5.0)
    # Leave what an unconfigured process has: one built from the environment, unused.
    PersonalizationEngine.configure(Penchant())


def from_flask() -> str:
    from flask import Flask, request

    app = Flask("compat_facade")

    @app.get("/")
    def home() -> str:
        return PersonalizationEngine.create_browser_fingerprint(request)

    client = app.test_client()
    reply = client.get("/", headers=HEADERS, environ_base={"REMOTE_ADDR": ADDRESS})
    return reply.get_data(as_text=True)


def from_starlette() -> str:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse(PersonalizationEngine.create_browser_fingerprint(request))

    app = Starlette(routes=[Route("/", home)])
    with TestClient(app, client=(ADDRESS, 50000)) as client:
        return client.get("/", headers=HEADERS).text


def from_wsgi() -> str:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        found = PersonalizationEngine.create_browser_fingerprint(environ)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [found.encode()]

    client = webtest_app(app, extra_environ={"REMOTE_ADDR": ADDRESS})
    return str(client.get("/", headers=HEADERS).text)


def from_bare_environ() -> str:
    return PersonalizationEngine.create_browser_fingerprint({})


@pytest.mark.parametrize(
    ("fingerprint", "expected"), [("md5", MD5), ("hmac", HMAC)], ids=["md5", "hmac"]
)
@pytest.mark.parametrize(
    "ask",
    [
        pytest.param(from_flask, id="flask"),
        # A Starlette Request is a Mapping (of its scope): it was read as a WSGI
        # environ, and every Starlette visitor had the fingerprint of "||".
        pytest.param(from_starlette, id="starlette"),
        pytest.param(from_wsgi, id="wsgi"),
    ],
)
def test_a_request_of_each_framework_has_the_same_fingerprint(
    configure: Callable[..., Penchant],
    tmp_path: Path,
    ask: Callable[[], str],
    fingerprint: str,
    expected: str,
) -> None:
    configure(f"sqlite:///{tmp_path / 'compat.db'}", fingerprint=fingerprint)
    assert ask() == expected


def test_md5_of_a_request_without_headers_or_address(
    configure: Callable[..., Penchant], tmp_path: Path
) -> None:
    configure(f"sqlite:///{tmp_path / 'compat.db'}", fingerprint="md5")
    assert from_bare_environ() == MD5_OF_NOTHING


def test_interactions_are_stored_and_move_the_visitors_lists(
    configure: Callable[..., Penchant], database_url: str
) -> None:
    penchant = configure(database_url)
    visitor, session = HMAC, "5" * 64
    # Liposuction (3) is in Body (3); the click on Laser (2) weighs more than the view.
    assert PersonalizationEngine.track_user_interaction(visitor, session, "view", "procedure", 3)
    assert PersonalizationEngine.update_category_affinity(visitor, 2, "click")
    assert not PersonalizationEngine.track_user_interaction(visitor, session, "stare", "procedure")
    assert penchant.flush(10)

    engine = engine_for(database_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(
                sa.text(
                    "SELECT user_id, session_id, interaction_type, target_type, target_id"
                    " FROM user_interactions"
                )
            ).all()
            affinities = conn.execute(
                sa.text("SELECT user_id, category_id, affinity_score FROM user_category_affinity")
            ).all()
    finally:
        engine.dispose()
    click, view = sorted((tuple(r) for r in stored), key=lambda r: str(r[2]))
    assert view == (visitor, session, "view", "procedure", 3)
    assert (click[0], *click[2:]) == (visitor, "click", "category", 2)
    assert re.fullmatch(r"[0-9a-f]{64}", click[1])  # a session of the visitor's own, derived
    assert {(r[0], r[1]): r[2] for r in affinities} == {
        (visitor, 2): pytest.approx(0.3),
        (visitor, 3): pytest.approx(0.1),
    }

    liked = PersonalizationEngine.get_personalized_categories(visitor, limit=3)
    assert [c.name for c in liked] == ["Laser", "Body", "Injectables"]
    # Popular: Laser has one visitor (the click), the others none and go by id.
    assert [c.name for c in PersonalizationEngine.get_popular_categories(limit=3)] == [
        "Laser",
        "Injectables",
        "Body",
    ]


@pytest.mark.parametrize(
    ("ask", "expected"),
    [
        (lambda: PersonalizationEngine.get_popular_categories(), [1, 2, 3, 4, 5, 6]),
        (lambda: PersonalizationEngine.get_popular_procedures(), [1, 2, 3, 4, 5, 6]),
        (lambda: PersonalizationEngine.get_popular_doctors(), [1, 2, 3, 4, 5, 6, 7, 8, 9]),
        (lambda: PersonalizationEngine.get_personalized_categories(None), [1, 2, 3, 4, 5, 6]),
        (lambda: PersonalizationEngine.get_personalized_procedures(None), [1, 2, 3, 4, 5, 6]),
        (
            lambda: PersonalizationEngine.get_personalized_doctors(None),
            [1, 2, 3, 4, 5, 6, 7, 8, 9],
        ),
    ],
    ids=[
        "popular categories",
        "popular procedures",
        "popular doctors",
        "personalized categories",
        "personalized procedures",
        "personalized doctors",
    ],
)
def test_lists_have_the_original_default_lengths(
    configure: Callable[..., Penchant],
    tmp_path: Path,
    ask: Callable[[], list[Any]],
    expected: list[int],
) -> None:
    configure(f"sqlite:///{tmp_path / 'compat.db'}")
    assert [entry.id for entry in ask()] == expected
