"""What ends up in the database: nothing raw after a full scenario; retention exact on both DBs."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from penchant import Penchant
from penchant.middleware.core import RETENTION_FIRST_DELAY, RETENTION_INTERVAL, Core
from tests.harness import Client, Clock, engine_for, every_value, make_penchant

P = "/personalization"
PEER = "198.51.100.77"
UA = "Mozilla/5.0 (X11; Linux x86_64) PenchantScanBrowser/9.9 Safari/537.36"
LANGUAGE = "de-CH,de;q=0.9"
EMAIL = "jane.public@example.com"
PHONE = "+1 415 555 0100"
FORM_VALUE = "Jane Q. Public"
SECRET_QUERY = "utm_secret_value"


@pytest.mark.parametrize("kind", ["starlette", "flask"])
def test_no_raw_ip_user_agent_email_or_form_value_is_stored(
    kind: str, database_url: str, open_site: Callable[..., Client]
) -> None:
    site = open_site(kind, database_url, peer=PEER, store_search_text=True)
    site.default_headers = {"User-Agent": UA, "Accept-Language": LANGUAGE}
    site.get(f"/?email={EMAIL}&campaign={SECRET_QUERY}")
    site.get("/procedures/3?ref=mail")
    site.get("/plain")
    token = site.token()

    def event(kind: str, target: str, target_id: int | None, **extra: Any) -> dict[str, Any]:
        return {
            "interaction_type": kind,
            "target_type": target,
            "target_id": target_id,
            "event_id": uuid.uuid4().hex,
            **extra,
        }

    reply = site.beacon(
        event("search", "category", None, metadata={"query": f"botox {EMAIL} {PHONE}"}),
        event("form_submit", "procedure", 2, metadata={"form": "consultation"}),
        event("form_submit", "page", None, path="/contact", metadata={"form": EMAIL}),
        event("click", "procedure", 1, metadata={"source": "rec", "position": 1, "list": "x"}),
        event("view", "page", None, path=f"/users/{EMAIL}/profile?token={SECRET_QUERY}"),
        event("view", "page", None, path=f"/call/{PHONE.replace(' ', '-')}"),
        token=token,
    )
    assert reply.json() == {"accepted": 6, "rejected": []}
    form = f"name={FORM_VALUE}&email={EMAIL}&phone={PHONE}"
    site.post("/form", body=form, content_type="application/x-www-form-urlencoded")
    assert site.penchant.flush(timeout=5.0)

    values = every_value(database_url)
    interactions = [v for v in values if v[0] == "user_interactions"]
    assert (
        len({v[2] for v in interactions if v[1] == "event_id"}) == 11
    )  # 4 views, 6 beacon events, 1 form
    # The search text is kept (the site asked for it), scrubbed.
    assert any("botox [email] [phone]" in v[2] for v in interactions)
    needles = [
        PEER,
        UA,
        "PenchantScanBrowser",
        LANGUAGE,
        EMAIL,
        EMAIL.replace("@", "%40"),
        PHONE,
        "4155550100",
        "555-0100",
        FORM_VALUE,
        SECRET_QUERY,
        "ref=mail",
    ]
    for table, column, value in values:
        for needle in needles:
            assert needle not in value, (table, column, value)


# ------------------------------------------------------------------ retention
@pytest.fixture
def aged(database_url: str) -> Iterator[tuple[Penchant, Clock]]:
    clock = Clock(datetime(2026, 6, 1, 12, 0, 0))
    penchant = make_penchant(database_url, clock=clock, retention_days=30)
    yield penchant, clock
    penchant.close(timeout=5.0)


def _seed(penchant: Penchant, now: datetime) -> dict[str, int]:
    """Interactions of two visitors at known ages; returns event ids by age in days."""
    ages = {"a": [1, 29, 31, 400], "b": [45]}
    ids: dict[str, int] = {}
    for user, days in ages.items():
        for age in days:
            when = now - timedelta(days=age, minutes=1)
            event_id = uuid.uuid4().hex
            assert penchant.track(
                "view", "procedure", 1, user_id=user * 32, timestamp=when, event_id=event_id
            )
            ids[event_id] = age
    assert penchant.flush(timeout=5.0)
    return ids


def test_purge_removes_exactly_the_expired_rows(
    aged: tuple[Penchant, Clock], database_url: str
) -> None:
    penchant, clock = aged
    ids = _seed(penchant, clock.now)
    core = Core(penchant)
    result = core.purge_expired()
    assert result is not None
    engine = engine_for(database_url)
    try:
        with engine.connect() as conn:
            left = {r[0] for r in conn.execute(sa.text("SELECT event_id FROM user_interactions"))}
            affinities = {
                r[0] for r in conn.execute(sa.text("SELECT user_id FROM user_category_affinity"))
            }
    finally:
        engine.dispose()
    assert left == {event_id for event_id, age in ids.items() if age < 30}
    assert result.interactions == 3
    # Visitor b's affinity was last updated 45 days ago: it goes; a's (1 day) stays.
    assert affinities == {"a" * 32}
    # Nothing left to do: a second run deletes nothing.
    again = core.purge_expired()
    assert (again.interactions, again.affinities) == (0, 0)


def test_retention_runs_in_the_background_at_most_hourly(aged: tuple[Penchant, Clock]) -> None:
    penchant, clock = aged
    _seed(penchant, clock.now)
    ticks = [1000.0]
    core = Core(penchant, monotonic=lambda: ticks[-1])
    assert not core.maybe_purge()
    ticks.append(1000.0 + RETENTION_FIRST_DELAY)
    assert core.maybe_purge()
    _join_retention()
    assert penchant.store.count_interactions() == 2
    ticks.append(ticks[-1] + RETENTION_INTERVAL - 1)
    assert not core.maybe_purge()
    ticks.append(ticks[-1] + 1)
    clock.now += timedelta(days=30)
    assert core.maybe_purge()
    _join_retention()
    assert penchant.store.count_interactions() == 0


def _join_retention() -> None:
    for thread in threading.enumerate():
        if thread.name == "penchant-retention":
            thread.join(timeout=10.0)


def test_retention_failure_is_logged_not_raised(
    open_site: Callable[..., Client], caplog: pytest.LogCaptureFixture
) -> None:
    site = open_site("wsgi", database_down=True)
    with caplog.at_level("WARNING", logger="personalization"):
        assert site.core.purge_expired() is None
    failed = [r for r in caplog.records if r.getMessage().startswith("retention run failed")]
    assert [r.levelname for r in failed] == ["WARNING"]
    assert "127.0.0.1" in failed[0].getMessage()  # which database did not answer


def test_a_retention_run_keeps_each_items_best_neighbours(
    aged: tuple[Penchant, Clock], database_url: str
) -> None:
    from penchant.service import NEIGHBOURS_PER_ITEM

    penchant, clock = aged
    penchant.init_db()
    many = NEIGHBOURS_PER_ITEM + 15
    penchant.store.add_neighbours(
        {(("procedure", 1), ("procedure", 100 + n)): float(n + 1) for n in range(many)}, clock.now
    )
    Core(penchant).purge_expired()
    kept = penchant.store.neighbours([("procedure", 1)], limit_per_item=1000)[("procedure", 1)]
    assert len(kept) == NEIGHBOURS_PER_ITEM
    # the strongest ones stay
    assert min(score for _, score in kept) == many - NEIGHBOURS_PER_ITEM + 1


def test_rows_the_writer_stamps_itself_age_on_the_services_clock(
    aged: tuple[Penchant, Clock], database_url: str
) -> None:
    """A dead letter and a co-viewed pair are timed by Penchant(clock=...), not the calendar."""
    from penchant.engine.events import Interaction

    penchant, clock = aged
    user, start = "d" * 32, clock.now
    # an id no integer column holds: the store dead-letters it
    poison = Interaction(user, "s", "view", "procedure", 2**70, start, uuid.uuid4().hex, None)
    assert penchant.submit(poison)
    for minute, item in enumerate((1, 2)):  # one visitor's two items: a co-viewed pair
        at = start + timedelta(minutes=minute)
        assert penchant.track("view", "procedure", item, user_id=user, timestamp=at)
    assert penchant.flush(timeout=5.0)
    engine = engine_for(database_url)
    try:
        with engine.connect() as conn:
            stamps = [
                conn.execute(sa.text(f"SELECT {column} FROM {table}")).scalars().all()
                for column, table in (
                    ("failed_at", "penchant_dead_letter"),
                    ("last_updated", "penchant_item_neighbours"),
                )
            ]
    finally:
        engine.dispose()
    for stamped in stamps:
        assert stamped and {datetime.fromisoformat(str(v)) for v in stamped} == {start}
    clock.now += timedelta(days=31)  # past the 30 days kept
    result = Core(penchant).purge_expired()
    assert result is not None and result.dead_letters == 1
