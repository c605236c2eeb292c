"""The personalization object on its own: laziness, memoized lists, edge cases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from penchant import Penchant
from penchant.middleware.core import Core
from penchant.middleware.facts import RequestFacts
from penchant.middleware.integrations import personalization_dependency, personalization_of
from penchant.middleware.personalization import Personalization, current_personalization
from tests.harness import BROWSER, make_penchant

FACTS = RequestFacts("GET", "/procedures/5", peer="203.0.113.7", user_agent=BROWSER)


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    penchant = make_penchant(f"sqlite:///{tmp_path / 'p.db'}")
    yield Core(penchant)
    penchant.close(timeout=5.0)


def test_creating_it_identifies_no_one(core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[RequestFacts] = []
    identify = core.identify

    def counted(facts: RequestFacts) -> Any:
        asked.append(facts)
        return identify(facts)

    monkeypatch.setattr(core, "identify", counted)
    p = core.personalization(FACTS)
    assert asked == []
    assert "unidentified" in repr(p)
    assert p.tracking_allowed
    assert asked == [FACTS]  # on first use, once
    assert p.fingerprint is not None and asked == [FACTS]
    assert "allowed" in repr(p)
    assert p.context == ("procedure", 5)
    assert p.privacy_url == "/personalization/privacy"


def test_lists_have_the_original_limits_and_are_memoized(core: Core) -> None:
    p = core.personalization(FACTS)
    assert [len(p.categories()), len(p.procedures()), len(p.doctors()), len(p.packages())] == [
        3,
        6,
        3,
        1,
    ]
    assert p.procedures() is p.procedures()
    assert len(p.procedures(limit=2)) == 2
    with pytest.raises(ValueError, match="unknown content type"):
        p.recommendations("spaceships")


def test_a_failing_read_path_gives_an_empty_list_not_an_error(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("popular content exploded")

    monkeypatch.setattr(core.penchant, "popularity", broken)
    assert core.personalization(FACTS).doctors() == []
    assert core.errors == 1


def test_track_refuses_bad_events_without_raising(core: Core) -> None:
    p = core.personalization(FACTS)
    assert p.track("teleport", "procedure", 1) is False
    assert p.track("click", "procedure", None) is False
    assert p.track("click", "procedure", 1, {"nested": {"no": 1}}) is False  # type: ignore[dict-item]
    assert p.track("click", "procedure", 1, {"source": "server"}) is True
    # The visitor's lists see their own event at once.
    assert core.penchant.profile(str(p.fingerprint)).history[0].target_id == 1


def test_a_visitor_who_is_not_tracked(core: Core) -> None:
    p = core.personalization(RequestFacts("GET", "/", user_agent=BROWSER, dnt="1"))
    assert p.fingerprint is None
    assert p.session_id is None
    assert p.reason == "dnt"
    assert p.variant == "personalized"
    assert p.track("click", "procedure", 1) is False
    assert 'data-off="1"' in p.script_tag()
    assert 'data-token=""' in p.script_tag()


def test_script_tag_failure_is_an_empty_string(core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    import penchant.tracker_js.serve as serve

    def broken(**kwargs: Any) -> str:
        raise RuntimeError("no bundle")

    monkeypatch.setattr(serve, "script_tag", broken)
    assert core.personalization(FACTS).script_tag() == ""
    assert core.errors == 1


def test_nonce_and_root_path(core: Core) -> None:
    facts = RequestFacts("GET", "/", root="/shop", user_agent=BROWSER)
    tag = core.personalization(facts).script_tag(nonce="abc")
    assert 'src="/shop/personalization/tracker.js' in tag
    assert 'nonce="abc"' in tag


class Holder:
    def __init__(self, **attributes: Any) -> None:
        self.__dict__.update(attributes)


def test_finding_it_from_framework_objects(core: Core) -> None:
    p = core.personalization(FACTS)
    assert personalization_of(Holder(scope={"penchant.personalization": p})) is p
    assert personalization_of(Holder(environ={"penchant.personalization": p})) is p
    assert personalization_of({"penchant.personalization": p}) is p
    assert personalization_of(Holder(scope={})) is None
    assert personalization_of(object()) is None
    assert personalization_dependency(Holder(scope={"penchant.personalization": p})) is p  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="not installed"):
        personalization_dependency(Holder(scope={}))  # type: ignore[arg-type]
    assert current_personalization() is None
    assert isinstance(p, Personalization)


def test_penchant_builds_the_adapters(tmp_path: Path) -> None:
    from penchant.middleware import PenchantASGI, PenchantWSGI

    penchant = Penchant(
        database_url=f"sqlite:///{tmp_path / 'a.db'}", secret_key="k-0123456789abcdef"
    )
    try:
        assert isinstance(penchant.asgi(lambda *a: None), PenchantASGI)  # type: ignore[arg-type]
        assert isinstance(penchant.wsgi(lambda *a: []), PenchantWSGI)
        with pytest.raises(ValueError, match="url_patterns"):
            Core(Penchant(database_url="sqlite://", url_patterns={"/p/{id}": "user"}))
    finally:
        penchant.close()


def test_a_pages_lists_share_one_reading_until_the_page_tracks_an_event(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    penchant = core.penchant
    profiles: list[str] = []
    popular: list[int] = []
    real_profile, real_popularity = penchant.profile, penchant.popularity

    def counted_profile(user_id: str) -> Any:
        profiles.append(user_id)
        return real_profile(user_id)

    def counted_popularity() -> Any:
        popular.append(1)
        return real_popularity()

    shown: list[dict[str, Any]] = []
    real_exposure = penchant.record_exposure

    def kept_exposure(**kwargs: Any) -> None:
        shown.append(kwargs)
        real_exposure(**kwargs)

    monkeypatch.setattr(penchant, "profile", counted_profile)
    monkeypatch.setattr(penchant, "popularity", counted_popularity)
    monkeypatch.setattr(penchant, "record_exposure", kept_exposure)
    p = core.personalization(FACTS)
    p.categories(), p.procedures(), p.doctors(), p.packages()
    assert (len(profiles), len(popular)) == (1, 1)
    assert profiles == [p.fingerprint]
    # the page's own event: the next list is ranked from a profile that has it
    assert p.track("view", "procedure", 7)
    p.procedures()
    assert (len(profiles), len(popular)) == (2, 2)
    # each list shown is remembered once, stamped with the time the lists were read
    assert sorted(e["content_type"] for e in shown) == [
        "categories",
        "doctors",
        "packages",
        "procedures",
        "procedures",
    ]
    assert len({e["at"] for e in shown[:4]}) == 1 and shown[0]["at"] is not None
