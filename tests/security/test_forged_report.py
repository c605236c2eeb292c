"""The experiment report cannot be forged by what a client says about its clicks.

A recommendation click is attributed by the server when the report is built: a
click counts only when its target was in a list shown to the same visitor
(``penchant_exposures``) within ``attribution_window`` before it. The client's
``source: rec`` is reserved, like ``path``: it is never stored, and no click
counts because of it.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from typing import Any

import pytest

from tests.harness import BEACON, Client, all_rows
from tests.security.helpers import BROWSER, SAME_ORIGIN, OpenSite

pytestmark = pytest.mark.date_sensitive

P = "/personalization"
SHOWN = re.compile(r'<li data-penchant-type="procedure" data-penchant-id="(\d+)">')


def _browser(n: int) -> dict[str, str]:
    """A made-up visitor: another User-Agent is another identity."""
    return {**SAME_ORIGIN, "User-Agent": f"{BROWSER} Made/{n}"}


def _click(client: Client, headers: dict[str, str], target_id: int, **metadata: Any) -> None:
    token = client.token(headers=headers)  # the page hands its visitor a token
    event: dict[str, Any] = {
        "interaction_type": "click",
        "target_type": "procedure",
        "target_id": target_id,
        "event_id": uuid.uuid4().hex,
    }
    if metadata:
        event["metadata"] = metadata
    body = json.dumps({"token": token, "events": [event]})
    reply = client.post(BEACON, body, headers={**headers, "Content-Type": "text/plain"})
    assert reply.status == 202


def _ctr(penchant: Any) -> dict[str, tuple[float, int]]:
    """(click-through, exposures) of each variant, from the report as the operator reads it."""
    report = penchant.report(days=1, minimum=1)
    ctr = {c.metric: c for c in report.comparisons}["recommendation_ctr"]
    return {
        "personalized": (ctr.personalized.value, ctr.personalized.n),
        "holdout": (ctr.holdout.value, ctr.holdout.n),
    }


def test_a_forged_source_changes_neither_variants_click_through(
    adapter: str, database_url: str, open_site: OpenSite, now: datetime
) -> None:
    # the identity budgets off: every made-up visitor counts, so a forged click would show
    client, penchant = open_site(
        adapter,
        database_url,
        holdout=0.5,
        clock=lambda: now,
        network_identity_budget=0,
        network_daily_identities=0,
    )
    # Real visitors see lists of recommendations and click none of them.
    for n in range(20):
        assert SHOWN.findall(client.get("/procedures/1", headers=_browser(n)).text)
    assert penchant.flush(10)
    before = _ctr(penchant)
    assert before["personalized"][0] == 0.0 and before["holdout"][0] == 0.0
    # 240 made-up visitors ask the JSON endpoint for one recommendation, which tells
    # them their variant; the personalized ones send a click "from a recommendation"
    # on an item they were not shown.
    forged = 0
    for n in range(1000, 1240):
        headers = _browser(n)
        answer = client.get(f"{P}/recommendations/procedures?limit=1", headers=headers).json()
        (shown,) = [r["id"] for r in answer["recommendations"]]
        if answer["variant"] == "personalized":
            other = 9 if shown != 9 else 8
            _click(client, headers, other, source="rec", position=1, list="procedures")
            forged += 1
    assert penchant.flush(10)
    assert forged > 60  # about half of them
    after = _ctr(penchant)
    # Their exposures are counted (they were shown a list); their clicks are not.
    assert after["personalized"][0] == 0.0
    assert after["holdout"][0] == 0.0
    assert after["personalized"][1] > before["personalized"][1]
    # The client's "source" is not even stored.
    stored = [r["extra_data"] or "" for r in all_rows(database_url, "user_interactions")]
    assert not [e for e in stored if '"source"' in e]


def test_only_a_click_on_an_item_shown_to_that_visitor_counts(
    adapter: str, database_url: str, open_site: OpenSite, now: datetime
) -> None:
    # holdout 0: every visitor is personalized, so the figures are of one variant
    client, penchant = open_site(adapter, database_url, holdout=0.0, clock=lambda: now)
    shown = [int(i) for i in SHOWN.findall(client.get("/procedures/1", headers=_browser(1)).text)]
    assert len(shown) >= 2
    not_shown = next(i for i in range(1, 10) if i not in shown)
    # Another made-up visitor, shown nothing, clicks what the first one was shown.
    _click(client, _browser(2), shown[0], source="rec")
    # The first visitor clicks an item of the page that was not in the list.
    _click(client, _browser(1), not_shown, source="rec")
    assert penchant.flush(10)
    assert _ctr(penchant)["personalized"] == (0.0, 1)
    # The first visitor clicks what the list showed them: that click counts, with
    # or without a source of its own, and the list counts once however often it is clicked.
    _click(client, _browser(1), shown[1])
    _click(client, _browser(1), shown[0], source="rec")
    _click(client, _browser(1), shown[0])
    assert penchant.flush(10)
    assert _ctr(penchant)["personalized"] == (1.0, 1)
    # A second page view shows a second list; the visitor who clicks nothing on it
    # halves the click-through.
    client.get("/procedures/2", headers=_browser(1))
    assert penchant.flush(10)
    assert _ctr(penchant)["personalized"] == (0.5, 2)


def test_made_up_visitors_who_click_what_they_were_shown_count_only_within_the_budget(
    adapter: str, database_url: str, open_site: OpenSite, now: datetime
) -> None:
    client, penchant = open_site(
        adapter,
        database_url,
        holdout=0.0,
        clock=lambda: now,
        network_identity_budget=20,
        network_daily_identities=5,
    )
    # 30 made-up visitors from one address each load a page and click what it showed
    for n in range(30):
        shown = SHOWN.findall(client.get("/procedures/1", headers=_browser(n)).text)
        assert shown
        _click(client, _browser(n), int(shown[0]))
    assert penchant.flush(10)
    report = penchant.report(days=1, minimum=1)
    # only the 5 identities the address may add count: everyone else is left out
    assert report.visitors["personalized"] == 5
    ctr = {c.metric: c for c in report.comparisons}["recommendation_ctr"]
    assert ctr.personalized.value * ctr.personalized.n == 5  # one clicked list each
