"""The page-view path's caches and ids: bounded, per process, right after a secret change."""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
import threading
import warnings
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from penchant.engine.events import Interaction, new_event_id
from penchant.engine.fingerprint import (
    FingerprintCache,
    fingerprint,
    legacy_fingerprint,
    truncate_ip,
)
from penchant.engine.privacy import scrub
from penchant.engine.validation import storable_text
from penchant.middleware.core import PATH_CACHE, stored_path, stored_paths
from penchant.middleware.facts import RequestFacts
from tests.harness import PLAIN, Client, all_rows, flushed_rows, make_penchant

IP = "203.0.113.7"
# The hosts' visitor (tests.harness: its secret, address, browser and
# language) and the id of a session of theirs started at 2026-03-01 12:00:00.
VISITOR = "6eb6914f5ee9e92f23ac529af765af11"
SESSION_FROM_NOON = "136f8277ea766aef8dcf8e86fed6aa1afabd523cdc817e299ce88ea251850e50"


# ------------------------------------------------------------ fingerprints
def test_fingerprint_cache_answers_the_fingerprint_and_stays_bounded() -> None:
    cache = FingerprintCache(4)
    for n in range(10):
        ua = f"Browser/{n}"
        assert cache(ua, IP, "en", b"k") == fingerprint(ua, IP, "en", key=b"k")
        assert cache(ua, IP, "en", b"k") == fingerprint(ua, IP, "en", key=b"k")
    assert len(cache) == 4
    # Each input counts: another IP or language is another visitor.
    assert cache("Browser/9", "203.0.113.8", "en", b"k") != cache("Browser/9", IP, "en", b"k")
    assert cache("Browser/9", IP, "fr", b"k") != cache("Browser/9", IP, "en", b"k")
    assert len(cache) == 4
    with pytest.raises(ValueError, match="maxsize"):
        FingerprintCache(0)


def test_fingerprint_cache_after_a_secret_change() -> None:
    cache = FingerprintCache(16)
    old = cache("Browser/1", IP, "en", b"old")
    cache("Browser/2", IP, "en", b"old")
    assert len(cache) == 2
    new = cache("Browser/1", IP, "en", b"new")
    assert new == fingerprint("Browser/1", IP, "en", key=b"new") != old
    # What was made with the old secret is gone, not merely unused.
    assert len(cache) == 1
    # An equal key (another bytes object) is the same secret: nothing is dropped.
    assert cache("Browser/1", IP, "en", b"ne" + b"w") == new
    assert len(cache) == 1
    assert cache("Browser/1", IP, "en", b"old") == old


def test_fingerprint_cache_truncates_and_keeps_the_legacy_hash() -> None:
    truncating = FingerprintCache(8, truncate=True)
    assert truncating("UA", IP, "en", b"k") == fingerprint("UA", truncate_ip(IP), "en", key=b"k")
    assert truncating("UA", "203.0.113.200", "en", b"k") == truncating("UA", IP, "en", b"k")
    legacy = FingerprintCache(8, legacy=True)
    assert legacy("UA", IP, "en", b"") == legacy_fingerprint("UA", IP, "en")


def _view_user_ids(site: Client, url: str) -> list[str]:
    return [str(r["user_id"]) for r in flushed_rows(site, url, "view")]


def test_a_rotated_secret_makes_new_fingerprints(
    host: str, tmp_path: object, open_site: Callable[..., Client]
) -> None:
    before_url = f"sqlite:///{tmp_path}/before.db"
    after_url = f"sqlite:///{tmp_path}/after.db"
    before = open_site(host, before_url, secret_key="old-secret-0123456789abcdef")
    # The new secret signs and fingerprints; the old one still verifies signatures.
    after = open_site(
        host,
        after_url,
        secret_key="new-secret-0123456789abcdef",
        secret_keys=("old-secret-0123456789abcdef",),
    )
    for site in (before, after, before, after):
        assert site.get("/plain").status == 200
    ua, language = before.default_headers["User-Agent"], before.default_headers["Accept-Language"]
    assert _view_user_ids(before, before_url) == 2 * [
        fingerprint(ua, IP, language, key=b"old-secret-0123456789abcdef")
    ]
    assert _view_user_ids(after, after_url) == 2 * [
        fingerprint(ua, IP, language, key=b"new-secret-0123456789abcdef")
    ]


# ----------------------------------------------------------------- cookies
@pytest.mark.parametrize(
    ("cookie", "tracked"),
    [
        ("sessionid=abc; _ga=GA1.2.3", True),
        ("sessionid=abc; penchant_optout=1; _ga=GA1.2.3", False),
        ("__Host-penchant_optout=1", False),
        ("sessionid=abc; penchant_optout=maybe", False),
        ("penchant_optout=0; theme=dark", True),
    ],
)
def test_the_host_sites_own_cookies_change_nothing(
    site: Client, sqlite_url: str, cookie: str, tracked: bool
) -> None:
    assert site.get("/plain", headers={"Cookie": cookie}).status == 200
    assert site.get("/plain").status == 200
    ids = _view_user_ids(site, sqlite_url)
    # The request without cookies is always recorded; the one with them when allowed.
    assert len(ids) == (2 if tracked else 1)
    assert len(set(ids)) == 1


# ------------------------------------------------------------- one clock
def test_a_page_view_reads_the_clock_once(site: Client, sqlite_url: str) -> None:
    """The session starts at the very reading the view is stamped with."""
    readings: list[datetime] = []

    def clock() -> datetime:
        # A clock that moves a second per reading: two readings would disagree.
        readings.append(datetime(2026, 3, 1, 12, 0, 0) + timedelta(seconds=len(readings)))
        return readings[-1]

    site.penchant.clock = clock
    assert site.get("/plain").text == PLAIN
    assert site.penchant.flush(timeout=5.0)
    (view,) = [r for r in all_rows(sqlite_url) if r["interaction_type"] == "view"]
    # The request's reading, the first, stamps the view ...
    assert datetime.fromisoformat(str(view["timestamp"])) == datetime(2026, 3, 1, 12, 0, 0)
    # ... and starts the session of this visitor (the test secret, address and browser)
    # at 12:00:00; a session started a reading later, at 12:00:01, has another id.
    assert (view["user_id"], view["session_id"]) == (VISITOR, SESSION_FROM_NOON)


# ------------------------------------------------------------------ paths
def test_stored_paths_are_scrubbed_and_the_cache_is_bounded() -> None:
    path = "/contact/jane.doe@example.com/call/+44 20 7946 0958"
    assert stored_path(path) == scrub(storable_text(path))
    assert "jane.doe" not in stored_path(path) and "7946" not in stored_path(path)
    assert stored_path(path) == scrub(storable_text(path))
    assert stored_path("/a\x00b") == "/ab"
    for n in range(PATH_CACHE + 10):
        stored_path(f"/pages/{n}")
    info = stored_paths.cache_info()
    assert info.maxsize == PATH_CACHE and info.currsize <= PATH_CACHE


def test_a_repeated_path_is_stored_scrubbed_every_time(site: Client, sqlite_url: str) -> None:
    for _ in range(3):
        site.get("/promo/jane.doe@example.com")
    assert site.penchant.flush(timeout=5.0)
    # The host answers 404 there: not a page view, so record through the core directly.
    core = site.core
    facts = RequestFacts("GET", "/promo/jane.doe@example.com", peer=IP, user_agent="UA")
    visitor = core.identify(facts)
    for _ in range(2):
        assert core.record_view(facts, visitor)
    assert site.penchant.flush(timeout=5.0)
    paths = [str(r["extra_data"]) for r in all_rows(sqlite_url) if r["interaction_type"] == "view"]
    assert len(paths) == 2
    assert all("jane" not in p and "[email]" in p for p in paths)


# -------------------------------------------------------------------- ids
def test_event_ids_are_unique_32_hex() -> None:
    ids = [new_event_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_worker_makes_other_event_ids() -> None:
    parent = [new_event_id() for _ in range(3)]
    read, write = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12 warns about forking a process with threads; the child only writes ids.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child process
        os.close(read)
        os.write(write, " ".join(new_event_id() for _ in range(3)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read().split()
    os.waitpid(pid, 0)
    assert len(child) == 3
    assert not set(child) & set(parent)
    # Another process, another prefix: the counters of the two cannot meet.
    assert {c[:16] for c in child} != {p[:16] for p in parent}


# ----------------------------------------------------------- interactions
def test_interaction_constructor_keeps_the_dataclass_contract() -> None:
    at = datetime(2026, 3, 1, 12, 0)
    by_keyword = Interaction(
        user_id="u",
        session_id="s",
        interaction_type="view",
        target_type="procedure",
        target_id=3,
        timestamp=at,
        event_id="e" * 32,
    )
    by_position = Interaction("u", "s", "view", "procedure", 3, at, "e" * 32, None)
    assert by_keyword == by_position and hash(by_keyword) == hash(by_position)
    assert dataclasses.astuple(by_keyword) == ("u", "s", "view", "procedure", 3, at, "e" * 32, None)
    parameters = list(inspect.signature(Interaction).parameters)
    assert parameters == [f.name for f in dataclasses.fields(Interaction)]
    with pytest.raises(dataclasses.FrozenInstanceError):
        by_keyword.user_id = "someone else"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Interaction("u", "s", "view")  # type: ignore[call-arg]
    assert dataclasses.replace(by_keyword, target_id=4).target_id == 4


# ---------------------------------------------------------------- sessions
def test_sessions_from_many_threads_stay_consistent_and_bounded(tmp_path: Path) -> None:
    """Request threads of a threaded server share the session map without a lock."""
    penchant = make_penchant(f"sqlite:///{tmp_path / 's.db'}", affinity_cache_size=50)
    t0 = datetime(2026, 11, 30, 12, 0, 0)
    errors: list[BaseException] = []
    seen: dict[tuple[int, int], set[str]] = {}
    lock = threading.Lock()

    def visit(worker: int) -> None:
        try:
            for n in range(3000):
                visitor = (worker * 7 + n) % 40  # 40 visitors fit in 50: none evicted
                sid = penchant.session_id(f"{visitor:032x}", t0 + timedelta(milliseconds=n))
                with lock:
                    seen.setdefault((visitor, 0), set()).add(sid)
        except BaseException as exc:
            errors.append(exc)

    def flood(worker: int) -> None:
        try:  # visitors that do not fit, evicted all the time
            for n in range(3000):
                penchant.session_id(f"{worker}-{n}".ljust(32, "x"), t0)
        except BaseException as exc:
            errors.append(exc)

    for target in (visit, flood):
        threads = [threading.Thread(target=target, args=(w,)) for w in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert 0 < penchant.health()["sessions"] <= 50  # type: ignore[operator]
    penchant.close(timeout=5.0)
    assert errors == []
    # within the timeout each visitor keeps one session, derived from its start
    assert len(seen) == 40
    assert {visitor: ids for (visitor, _), ids in seen.items() if len(ids) != 1} == {}
    # past the timeout a visitor gets a new one
    late = t0 + timedelta(seconds=penchant.settings.session_timeout + 60)
    first = next(iter(seen[(0, 0)]))
    again = penchant.session_id(f"{0:032x}", late)
    assert again != first
    assert penchant.session_id(f"{0:032x}", late + timedelta(seconds=1)) == again
