"""The demo marketplace over real HTTP: pages, markup contracts, personalization, forms."""

from __future__ import annotations

import re
import stat
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from html import unescape
from pathlib import Path

import httpx
import pytest

from demo_app.app import search
from demo_app.catalog import build_catalog
from demo_app.secrets_file import load_or_create
from penchant import Penchant
from tests.demo.helpers import BROWSER_UA, running_demo


@pytest.fixture
def demo(tmp_path: Path, now: datetime) -> Iterator[tuple[str, Penchant]]:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    with running_demo(url, holdout=0.0, clock=lambda: now) as running:
        yield running


def browser(base: str, user_agent: str = BROWSER_UA) -> httpx.Client:
    return httpx.Client(
        base_url=base,
        headers={"User-Agent": user_agent, "Accept": "text/html", "Accept-Language": "en-US"},
        timeout=10.0,
    )


def cards(html: str, list_name: str | None = None) -> list[dict[str, str]]:
    """Attributes of every catalog card (optionally of one recommendation list), in order."""
    found = []
    for tag in re.findall(r"<a\s[^>]*data-penchant-type[^>]*>", html):
        attrs = {k: unescape(v) for k, v in re.findall(r'([\w-]+)="([^"]*)"', tag)}
        if list_name is None or attrs.get("data-penchant-list") == list_name:
            found.append(attrs)
    return found


def section(html: str, section_id: str) -> str:
    match = re.search(rf'<section class="shelf" id="{section_id}">(.*?)</section>', html, re.S)
    assert match, section_id
    return match.group(1)


def test_every_page_renders(demo: tuple[str, Penchant]) -> None:
    base, _ = demo
    with browser(base) as client:
        for path in (
            "/",
            "/categories",
            "/categories/1",
            "/procedures/25",
            "/doctors/3",
            "/packages/2",
            "/search?q=botox",
            "/search?q=",
            "/consultation",
            "/consultation?procedure=2",
            "/consultation/thanks?procedure=2",
            "/privacy",
            "/static/style.css",
        ):
            response = client.get(path)
            assert response.status_code == 200, path
        for path in ("/procedures/9999", "/doctors/0", "/no-such-page"):
            response = client.get(path)
            assert response.status_code == 404, path
            assert "We could not find that" in response.text


def test_home_lists_and_their_attribution_markup(demo: tuple[str, Penchant]) -> None:
    base, _ = demo
    with browser(base) as client:
        home = client.get("/").text
    expected = {"categories": 6, "procedures": 6, "doctors": 9, "packages": 3}
    for list_name, size in expected.items():
        found = cards(home, list_name)
        assert len(found) == size, list_name
        assert [c["data-penchant-position"] for c in found] == [str(i) for i in range(1, size + 1)]
        assert all(c["data-penchant-source"] == "rec" for c in found)
        reasons = re.findall(r'<p class="reason[^"]*">([^<]+)</p>', section(home, list_name))
        assert len(reasons) == size  # every recommendation says why
    assert re.search(r'<script defer src="/personalization/tracker\.js[^"]*" data-endpoint=', home)
    assert re.search(r"<form [^>]*data-penchant-search", home)
    # A new visitor sees popular content.
    assert "Popular categories" in home and "Popular procedures" in home


def test_detail_pages_carry_the_form_and_card_markup(demo: tuple[str, Penchant]) -> None:
    base, _ = demo
    with browser(base) as client:
        procedure = client.get("/procedures/25").text
        category = client.get("/categories/5").text
        privacy = client.get("/privacy").text
    form = re.search(r"<form [^>]*data-penchant-form[^>]*>", procedure)
    assert form
    assert 'data-penchant-type="procedure"' in form.group(0)
    assert 'data-penchant-id="25"' in form.group(0)
    listed = {
        c["data-penchant-id"] for c in cards(category) if c["data-penchant-type"] == "procedure"
    }
    assert {"25", "26", "27"} <= listed
    assert 'href="/personalization/privacy"' in privacy
    assert re.search(
        r'<form method="post" action="/personalization/opt-out\?next=/privacy">', privacy
    )


def test_viewing_one_category_puts_it_first(demo: tuple[str, Penchant]) -> None:
    base, penchant = demo
    with browser(base) as client:
        first = cards(client.get("/").text, "categories")
        assert first[0]["data-penchant-id"] != "5"
        for path in ("/categories/5", "/procedures/25", "/procedures/26", "/procedures/27"):
            assert client.get(path).status_code == 200
        home = client.get("/").text
    top = cards(home, "categories")[0]
    assert top["data-penchant-id"] == "5"
    first_reason = re.findall(r'<p class="reason[^"]*">([^<]+)</p>', section(home, "categories"))[0]
    assert first_reason == "Because you like Facial surgery"
    assert "Categories for you" in home
    # What a visitor has already seen is not recommended back.
    seen = {c["data-penchant-id"] for c in cards(home, "procedures")}
    assert not seen & {"25", "26", "27"}
    assert penchant.flush(timeout=20.0)


@pytest.mark.date_sensitive
def test_a_crawler_gets_pages_but_is_not_recorded(
    demo: tuple[str, Penchant], now: datetime
) -> None:
    base, penchant = demo
    with browser(base, "Googlebot/2.1 (+http://www.google.com/bot.html)") as client:
        assert client.get("/procedures/1").status_code == 200
    assert penchant.flush(timeout=20.0)
    since = now - timedelta(days=1)
    assert penchant.store.daily_counts(since) == []


@pytest.mark.date_sensitive
def test_the_consultation_form_stores_nothing_by_itself(
    demo: tuple[str, Penchant], now: datetime
) -> None:
    base, penchant = demo
    with browser(base) as client:
        response = client.post(
            "/consultation",
            data={"procedure_id": "25", "name": "Ana", "email": "ana@example.invalid"},
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/consultation/thanks?procedure=25"
    assert penchant.flush(timeout=20.0)
    since = now - timedelta(days=1)
    # The tracker records the submission (data-penchant-form); the view does not add a second one.
    assert not [row for row in penchant.store.daily_counts(since) if row[1] == "form_submit"]


def test_search() -> None:
    catalog = build_catalog()
    found = search(catalog, "bot")
    assert "Injectables" in [c.name for c in found["categories"]]
    assert "Botox for frown lines" in [p.name for p in found["procedures"]]
    miami = search(catalog, "Miami")["doctors"]
    assert miami and all(d.attributes["city"] == "Miami" for d in miami)
    assert search(catalog, "laser tattoo")["procedures"][0].name == "Laser tattoo removal"
    assert all(not v for v in search(catalog, "  ").values())
    assert all(not v for v in search(catalog, "zzzzz").values())


def test_secrets_are_made_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    results = []

    def start() -> None:
        results.append(load_or_create(path))

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({r.secret_key for r in results}) == 1
    assert len({r.dashboard_password for r in results}) == 1
    assert load_or_create(path) == results[0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(results[0].secret_key) >= 32
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


@pytest.mark.date_sensitive
def test_opting_out_from_the_privacy_page(demo: tuple[str, Penchant], now: datetime) -> None:
    base, penchant = demo
    with browser(base) as client:
        client.get("/procedures/25")
        assert "personalization is on" in client.get("/privacy").text
        assert penchant.flush(timeout=20.0)
        since = now - timedelta(days=1)
        assert penchant.store.daily_counts(since)
        response = client.post("/personalization/opt-out?next=/privacy", headers={"Origin": base})
        assert response.status_code in (302, 303)
        assert response.headers["location"].endswith("/privacy")
        privacy = client.get("/privacy").text
        assert "personalization is off" in privacy
        assert "/personalization/opt-in?next=/privacy" in privacy
        assert 'data-off="1"' in client.get("/").text
        assert penchant.flush(timeout=20.0)
        # Opting out erased what was stored; browsing afterwards stores nothing.
        assert penchant.store.daily_counts(since) == []
