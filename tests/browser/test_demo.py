"""The demo marketplace in headless Chromium: a new visitor's home page personalizes itself.

A simulated crowd first browses the demo so that popular content and co-viewed
items exist; then a fresh server on the same database serves a real browser.
Screenshots of the home page before and after, and of the dashboard, are saved
under ``test-artifacts/``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api")

from playwright.sync_api import Browser, Page, sync_playwright

from demo_app.simulate import crowd
from penchant import Penchant
from penchant.storage.reporting import session_counts
from tests.browser.chromium import CHROMIUM, chromium_args, require_chromium
from tests.demo.helpers import BROWSER_UA, PASSWORD, running_demo

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def database_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A demo database that a small crowd has already browsed."""
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"
    with running_demo(url, trusted_proxies=("127.0.0.1",)) as (base, penchant):
        result = crowd(base, visitors=40, seed=2024, forwarded_for=True, workers=4, time_limit=120)
        assert result.errors == 0
        assert penchant.flush(timeout=30.0)
    return url


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=chromium_args(user_agent=BROWSER_UA, lang="en-US"),
        )
        try:
            yield browser
        finally:
            browser.close()


def reasons(page: Page, list_name: str) -> list[str]:
    return page.locator(f'[data-list="{list_name}"] .reason').all_inner_texts()


def card_ids(page: Page, list_name: str) -> list[int]:
    ids = page.locator(f'[data-list="{list_name}"] a.card').evaluate_all(
        "cards => cards.map(c => c.dataset.penchantId)"
    )
    return [int(i) for i in ids]


def wait_for(condition: object, *, timeout: float = 15.0) -> bool:
    """Poll ``condition()`` until true: the beacon leaves the browser on its own schedule."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def stored_rec_clicks(penchant: Penchant, fingerprint: str) -> list[dict[str, object]]:
    penchant.flush(timeout=5.0)
    exported = penchant.export(fingerprint)
    rows = exported.get("interactions", [])
    assert isinstance(rows, list)
    return [
        row
        for row in rows
        if row.get("interaction_type") == "click"
        # a card of a recommendation list: the client's "source" is not stored (the
        # report attributes clicks itself, from what the visitor was shown)
        and "list" in (row.get("extra_data") or row.get("metadata") or {})
    ]


def test_a_new_visitor_gets_a_home_page_of_their_own(database_file: str, chromium: Browser) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with running_demo(database_file, holdout=0.0, allow_webdriver=True) as (base, penchant):
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()

        # A new visitor: popular content, nothing personal yet.
        page.goto(base + "/")
        assert page.locator("#categories h2").inner_text() == "Popular categories"
        before = reasons(page, "procedures")
        assert before and all(r.startswith("Popular") for r in before)
        assert all(r == "Popular" for r in reasons(page, "categories"))
        popular_categories = card_ids(page, "categories")
        page.screenshot(path=str(ARTIFACTS / "demo-home-before.png"), full_page=True)

        # A popular category that is not the first one, so that the change shows.
        chosen = popular_categories[1]
        page.goto(f"{base}/categories/{chosen}")
        category_name = page.locator("h1").inner_text()
        procedures = page.locator('a.procedure-card[data-penchant-type="procedure"]')
        targets = procedures.evaluate_all("cards => cards.map(c => c.dataset.penchantId)")[:3]
        names = []
        for target in targets:
            page.goto(f"{base}/categories/{chosen}")
            with page.expect_navigation():
                page.click(f'a.procedure-card[data-penchant-id="{target}"]')
            names.append(page.locator("h1").inner_text())
        assert page.url == f"{base}/procedures/{targets[-1]}"

        # Back home: that category leads, and items say which viewed procedure brought them.
        page.goto(base + "/")
        assert card_ids(page, "categories")[0] == chosen
        because = {f"Because you like {category_name}"} | {f"Because you viewed {n}" for n in names}
        assert reasons(page, "categories")[0] in because
        assert page.locator("#categories h2").inner_text() == "Categories for you"
        viewed = [
            r
            for list_name in ("categories", "procedures", "doctors", "packages")
            for r in reasons(page, list_name)
            if r.startswith("Because you viewed ")
        ]
        assert viewed, reasons(page, "procedures")
        assert all(r.removeprefix("Because you viewed ") in names for r in viewed)
        assert not set(card_ids(page, "procedures")) & {int(t) for t in targets}
        page.screenshot(path=str(ARTIFACTS / "demo-home-after.png"), full_page=True)

        # A click on a recommended card is attributed to its list and position.
        page.goto(base + "/privacy")
        fingerprint = page.locator("code").first.inner_text()
        assert re.fullmatch(r"[0-9a-f]{32}", fingerprint)
        page.goto(base + "/")
        with page.expect_navigation():
            page.click('[data-list="procedures"] a.card[data-penchant-position="2"]')
        assert wait_for(lambda: stored_rec_clicks(penchant, fingerprint))
        click = stored_rec_clicks(penchant, fingerprint)[0]
        metadata = click.get("extra_data") or click.get("metadata")
        assert metadata == {"position": 2, "list": "procedures"}
        context.close()

        # ... and counted in the holdout comparison: this visitor's exposures and click.
        assert penchant.flush(timeout=20.0)
        since = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
        mine = [s for s in session_counts(penchant.store, since) if s.user_id == fingerprint]
        assert sum(s.exposures for s in mine) >= 3  # home page views that showed lists
        # the server credits each click on an item a list showed within the window to
        # the last list that showed it: the card clicked on the home page, and the
        # category page's cards that the home page's lists had shown before
        clicks = sum(s.rec_clicks for s in mine)
        assert 1 <= clicks <= 1 + len(targets)

        # The operator's view of it all.
        assert penchant.flush(timeout=20.0)
        refused = chromium.new_context()
        assert refused.request.get(base + "/personalization/dashboard").status == 401
        refused.close()
        operator = chromium.new_context(
            viewport={"width": 1280, "height": 900},
            http_credentials={"username": "admin", "password": PASSWORD},
        )
        board = operator.new_page()
        response = board.goto(base + "/personalization/dashboard")
        assert response is not None and response.status == 200
        assert board.locator("h1").inner_text() == "penchant dashboard"
        assert board.locator("svg rect").count() > 10
        assert category_name in board.locator("section", has_text="Top categories").inner_text()
        board.screenshot(path=str(ARTIFACTS / "demo-dashboard.png"), full_page=True)
        operator.close()
