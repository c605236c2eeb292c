"""Everything stored or configured may be hostile: outputs escape it, SQL binds it.

Names in the catalog (often edited by many people in a CMS), event metadata
and page paths all carry script payloads here; the dashboard, the privacy page
and the recommendations JSON must hand them back as text, never as markup.
SQL injection strings must be stored exactly as sent.
"""

from __future__ import annotations

import json
import uuid
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote

import pytest

from penchant import Catalog, Category, Item
from tests.harness import BEACON, all_rows, beacon_event, count_rows
from tests.security.helpers import SAME_ORIGIN, OpenSite, page_token

CATEGORY_XSS = "<script>alert('category')</script>"
ITEM_XSS = "\"><img src=x onerror=alert('item')>"
DOCTOR_XSS = "</title><svg onload=alert('doctor')>"
METADATA_XSS = "<script>alert('metadata')</script>"
PATH_XSS = "/<iframe src=javascript:alert('path')>"
PAYLOADS = (CATEGORY_XSS, ITEM_XSS, DOCTOR_XSS, METADATA_XSS, PATH_XSS)
ACTIVE_TAGS = {"script", "img", "iframe", "object", "embed"}


class _Markup(HTMLParser):
    """The elements and event-handler attributes a browser would really see."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.handlers: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.handlers += [name for name, _ in attrs if name.startswith("on")]
        self.handlers += [v for _, v in attrs if v and v.lower().startswith("javascript:")]


def assert_no_injected_markup(page: str) -> None:
    markup = _Markup(page)
    assert not markup.tags & ACTIVE_TAGS, markup.tags
    assert markup.handlers == []


def hostile_catalog() -> Catalog:
    return Catalog(
        [Category(1, CATEGORY_XSS, "c1"), Category(2, "Skin", "skin")],
        [
            Item("procedure", 1, ITEM_XSS, (1,)),
            Item("procedure", 2, "Peel", (2,)),
            Item("doctor", 1, DOCTOR_XSS, procedure_ids=(1,)),
        ],
    )


def _browse_with_payloads(client: Any) -> None:
    token = page_token(client)
    for path in ("/procedures/1", "/procedures/2", quote(PATH_XSS)):
        client.get(path, headers=SAME_ORIGIN)
    events = [
        beacon_event(uuid.uuid4().hex, target_id=1, metadata={"label": METADATA_XSS}),
        beacon_event(uuid.uuid4().hex, target_type="doctor", target_id=1),
        beacon_event(
            uuid.uuid4().hex,
            interaction_type="view",
            target_type="page",
            target_id=None,
            path=PATH_XSS,
        ),
    ]
    reply = client.post(
        BEACON,
        json.dumps({"token": token, "events": events}),
        headers={**SAME_ORIGIN, "Content-Type": "text/plain"},
    )
    assert reply.json()["accepted"] == 3


def test_the_dashboard_escapes_stored_and_catalog_values(
    adapter: str, tmp_path: Any, open_site: OpenSite
) -> None:
    url = f"sqlite:///{tmp_path / 'xss.db'}"
    operator = uuid.uuid4().hex
    client, penchant = open_site(
        adapter, url, catalog=hostile_catalog(), dashboard_token=operator, popular_ttl=0.01
    )
    _browse_with_payloads(client)
    assert penchant.flush(10)
    stored = json.dumps(all_rows(url, "user_interactions"), default=str)
    assert "metadata" in stored and "iframe" in stored  # the payloads really are in the table

    reply = client.get(
        "/personalization/dashboard",
        headers={**SAME_ORIGIN, "Authorization": f"Bearer {operator}"},
    )
    assert reply.status == 200
    page = reply.text
    for payload in PAYLOADS:
        assert payload not in page
    assert_no_injected_markup(page)
    # Rendered as text: the popular item's name is there, escaped.
    assert "&#34;&gt;&lt;img src=x onerror=alert(&#39;item&#39;)&gt;" in page or (
        "&quot;&gt;&lt;img src=x onerror=alert(&#39;item&#39;)&gt;" in page
    )
    csp = reply.header("Content-Security-Policy") or ""
    assert "default-src 'none'" in csp
    assert "unsafe-inline" not in csp and "script-src" not in csp
    # Without the operator's credentials there is nothing to see.
    assert client.get("/personalization/dashboard", headers=SAME_ORIGIN).status == 401
    guess = {**SAME_ORIGIN, "Authorization": "Bearer guess"}
    assert client.get("/personalization/dashboard", headers=guess).status == 401


def test_recommendations_json_carries_hostile_names_as_data(
    adapter: str, tmp_path: Any, open_site: OpenSite
) -> None:
    # seen items stay listed, so the hostile names show in either variant of the visitor
    client, penchant = open_site(
        adapter, f"sqlite:///{tmp_path / 'json.db'}", catalog=hostile_catalog(), exclude_seen=False
    )
    _browse_with_payloads(client)
    assert penchant.flush(10)
    for content_type in ("categories", "procedures", "doctors"):
        reply = client.get(f"/personalization/recommendations/{content_type}", headers=SAME_ORIGIN)
        assert reply.status == 200
        assert reply.header("Content-Type") == "application/json"
        assert reply.header("X-Content-Type-Options") == "nosniff"
        names = {r["name"] for r in reply.json()["recommendations"]}
        assert names & {CATEGORY_XSS, ITEM_XSS, DOCTOR_XSS}, names
    # An unknown content type is echoed back as data too.
    reply = client.get(f"/personalization/recommendations/{quote(CATEGORY_XSS)}")
    assert reply.status == 404
    assert reply.header("Content-Type") == "application/json"


@pytest.mark.parametrize("consent", ["opt-out", "opt-in"])
def test_the_privacy_page_reflects_nothing_of_the_request(
    adapter: str, consent: str, tmp_path: Any, open_site: OpenSite
) -> None:
    client, _ = open_site(adapter, f"sqlite:///{tmp_path / 'privacy.db'}", consent=consent)
    hostile = {
        **SAME_ORIGIN,
        "Accept-Language": "en;q=0.9,<script>alert('lang')</script>",
        "Cookie": f"penchant_optout={quote(ITEM_XSS)}; penchant_consent={quote(METADATA_XSS)}",
        "Accept": "text/html",
    }
    reply = client.get(
        f"/personalization/privacy?next={quote(PATH_XSS)}&x={quote(ITEM_XSS)}", headers=hostile
    )
    assert reply.status == 200
    for payload in PAYLOADS:
        assert payload not in reply.text
    assert_no_injected_markup(reply.text)
    csp = reply.header("Content-Security-Policy") or ""
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "/ok\r\nSet-Cookie: owned=1",
    ],
)
def test_privacy_forms_never_redirect_off_the_site(
    adapter: str, target: str, tmp_path: Any, open_site: OpenSite
) -> None:
    client, _ = open_site(adapter, f"sqlite:///{tmp_path / 'redirect.db'}")
    reply = client.post(f"/personalization/opt-out?next={quote(target)}", headers=SAME_ORIGIN)
    assert reply.status == 303
    location = reply.header("Location") or ""
    assert location == "/personalization/privacy"
    assert not any(h.lower().startswith("owned") for h in reply.all("Set-Cookie"))
    # A local path is kept.
    reply = client.post("/personalization/opt-in?next=/procedures/2", headers=SAME_ORIGIN)
    assert reply.header("Location") == "/procedures/2"


SQL_INJECTION = [
    "'; DROP TABLE user_interactions; --",
    "Robert'); DELETE FROM user_category_affinity WHERE ('1'='1",
    '" OR 1=1 --',
    "1; SELECT pg_sleep(10)",
    "\\'; TRUNCATE penchant_meta; --",
]


def test_sql_injection_strings_are_stored_verbatim(
    adapter: str, database_url: str, open_site: OpenSite
) -> None:
    client, penchant = open_site(adapter, database_url)
    token = page_token(client)
    events = [
        beacon_event(uuid.uuid4().hex, target_id=i + 1, metadata={"label": text})
        for i, text in enumerate(SQL_INJECTION)
    ]
    events.append(
        beacon_event(
            uuid.uuid4().hex,
            interaction_type="view",
            target_type="page",
            target_id=None,
            path="/search/'; DROP TABLE user_interactions; --",
        )
    )
    reply = client.post(
        BEACON,
        json.dumps({"token": token, "events": events}),
        headers={**SAME_ORIGIN, "Content-Type": "application/json"},
    )
    assert reply.json() == {"accepted": len(events), "rejected": []}
    assert penchant.flush(10)
    rows = all_rows(database_url, "user_interactions")
    labels = sorted(
        json.loads(r["extra_data"])["label"]
        for r in rows
        if r["extra_data"] and "label" in r["extra_data"]
    )
    assert labels == sorted(SQL_INJECTION)
    paths = [json.loads(r["extra_data"]).get("path") for r in rows if r["extra_data"]]
    assert "/search/'; DROP TABLE user_interactions; --" in paths
    # Every table is still there, with what was written.
    assert count_rows(database_url) == len(events) + 1
    assert count_rows(database_url, "user_category_affinity") > 0
    assert count_rows(database_url, "penchant_dead_letter") == 0


@pytest.mark.parametrize("target", ["/%C4%81", "/%E2%80%A8", "/%00", "/%0B"])
def test_a_next_path_with_odd_characters_still_gives_a_valid_redirect(
    adapter: str, target: str, tmp_path: Any, open_site: OpenSite
) -> None:
    client, _ = open_site(adapter, f"sqlite:///{tmp_path / 'next.db'}")
    reply = client.post(f"/personalization/opt-out?next={target}", headers=SAME_ORIGIN)
    assert reply.status == 303
    location = reply.header("Location") or ""
    assert location.startswith("/") and location.isascii() and location.isprintable()
