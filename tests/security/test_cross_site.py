"""Another site acting through the visitor's browser: forms that change state, and
subresource requests that would look like page views."""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness import all_rows
from tests.security.helpers import BROWSER, SAME_ORIGIN, OpenSite, page_views

CROSS_SITE_FORM = {
    "User-Agent": BROWSER,
    "Accept-Language": "en-GB",
    "Sec-Fetch-Site": "cross-site",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Dest": "document",
    "Origin": "https://evil.example",
}


@pytest.mark.parametrize(
    ("method", "route"),
    [
        ("POST", "/personalization/opt-out"),
        ("POST", "/personalization/opt-in"),
        ("POST", "/personalization/my-data/delete"),
        ("DELETE", "/personalization/my-data"),
    ],
)
@pytest.mark.parametrize("consent", ["opt-out", "opt-in"])
def test_another_site_cannot_change_a_visitors_choices(
    adapter: str, consent: str, method: str, route: str, tmp_path: Any, open_site: OpenSite
) -> None:
    url = f"sqlite:///{tmp_path / 'csrf.db'}"
    client, penchant = open_site(adapter, url, consent=consent)
    if consent == "opt-in":
        reply = client.post("/personalization/opt-in", headers=SAME_ORIGIN)
        cookie = next(h for h in reply.all("Set-Cookie") if "penchant_consent=" in h)
        headers = {**SAME_ORIGIN, "Cookie": cookie.split(";")[0]}
    else:
        headers = dict(SAME_ORIGIN)
    client.get("/procedures/2", headers=headers)
    assert penchant.flush(10)
    before = len(all_rows(url, "user_interactions"))
    assert before == 1

    forged = {**CROSS_SITE_FORM, **({"Cookie": headers["Cookie"]} if "Cookie" in headers else {})}
    reply = client.request(method, route, headers=forged)
    assert reply.status == 403
    assert reply.all("Set-Cookie") == []  # no opt-out, no consent given on the visitor's behalf
    assert penchant.flush(10)
    assert len(all_rows(url, "user_interactions")) == before  # nothing erased


def test_arriving_from_another_site_is_a_page_view(
    adapter: str, tmp_path: Any, open_site: OpenSite
) -> None:
    # A visitor following a search engine's link: cross-site, but a real visit
    # (the browser says the visitor's click made it).
    url = f"sqlite:///{tmp_path / 'arrive.db'}"
    client, penchant = open_site(adapter, url)
    arrival = {k: v for k, v in CROSS_SITE_FORM.items() if k != "Origin"}
    client.get("/procedures/4", headers={**arrival, "Sec-Fetch-User": "?1"})
    assert penchant.flush(10)
    assert page_views(url) == 1


def test_another_sites_script_cannot_walk_a_visitor_through_pages(
    adapter: str, tmp_path: Any, open_site: OpenSite
) -> None:
    """An attacker's page sends the visitor's browser from item page to item page
    (``location = ...``, no click): top-level navigations, cross-site, without
    ``Sec-Fetch-User``. None of them is a page view; the visitor's own
    navigations (a link of the site, a typed address, a click on another site's
    link) still are."""
    url = f"sqlite:///{tmp_path / 'walk.db'}"
    client, penchant = open_site(adapter, url)
    walked = {k: v for k, v in CROSS_SITE_FORM.items() if k != "Origin"}
    for item in (1, 2, 3, 4, 1, 2, 3, 4):
        assert client.get(f"/procedures/{item}", headers=walked).status == 200
    # a sibling subdomain is another site too
    client.get("/procedures/2", headers={**walked, "Sec-Fetch-Site": "same-site"})
    assert penchant.flush(10)
    assert page_views(url) == 0
    own = {**walked, "Sec-Fetch-Site": "same-origin"}
    typed = {**walked, "Sec-Fetch-Site": "none", "Sec-Fetch-User": "?1"}
    clicked = {**walked, "Sec-Fetch-User": "?1"}
    for headers in (own, typed, clicked):
        assert client.get("/procedures/5", headers=headers).status == 200
    assert penchant.flush(10)
    assert page_views(url) == 3


@pytest.mark.parametrize(
    ("dest", "mode"), [("image", "no-cors"), ("empty", "no-cors"), ("script", "no-cors")]
)
def test_a_cross_site_subresource_request_is_not_a_page_view(
    adapter: str, dest: str, mode: str, tmp_path: Any, open_site: OpenSite
) -> None:
    url = f"sqlite:///{tmp_path / 'embed.db'}"
    client, penchant = open_site(adapter, url)
    headers = {
        "User-Agent": BROWSER,
        "Accept-Language": "en-GB",
        "Sec-Fetch-Site": "cross-site",
        "Sec-Fetch-Dest": dest,
        "Sec-Fetch-Mode": mode,
    }
    for _ in range(5):
        assert client.get("/procedures/4", headers=headers).status == 200
    assert penchant.flush(10)
    assert page_views(url) == 0


def test_a_plain_http_origin_is_another_site_on_an_https_site(
    adapter: str, tmp_path: Any, open_site: OpenSite
) -> None:
    """A plain-HTTP page of the same host (which a network attacker can write) posting
    to the HTTPS site: the Origin's scheme differs, so it is cross-site. (Browsers
    without Sec-Fetch-Site are the ones this check is for.)"""
    url = f"sqlite:///{tmp_path / 'scheme.db'}"
    client, _ = open_site(adapter, url)
    downgraded = {"User-Agent": BROWSER, "Origin": "http://testserver"}
    refused = client.post("/personalization/opt-out", headers=downgraded, scheme="https")
    assert refused.status == 403
    assert not any("penchant_optout" in h for h in refused.all("Set-Cookie"))
    same = client.post(
        "/personalization/opt-out",
        headers={**downgraded, "Origin": "https://testserver", "Accept": "application/json"},
        scheme="https",
    )
    assert same.status == 200
    # Over plain HTTP the plain-HTTP origin is the site's own.
    plain = client.post(
        "/personalization/opt-out",
        headers={**downgraded, "Accept": "application/json"},
    )
    assert plain.status == 200
