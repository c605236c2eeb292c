"""Adversarial input through both adapters: never a 5xx, never an invalid row.

Hypothesis builds beacon bodies (NUL characters, lone surrogates, NaN and
Infinity, huge integers, deep nesting, long strings, wrong types, bytes that
are not UTF-8, odd content types), recommendation requests and page paths, and
sends them through the ASGI adapter (Starlette's test client) and the WSGI
adapter (webtest), on SQLite and on PostgreSQL. Afterwards every stored row is
checked field by field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from penchant import Penchant
from penchant.engine.events import INTERACTION_TYPES, TARGET_TYPES
from tests.harness import BEACON, all_rows, site_client, small_catalog

MAX_METADATA = 512
MAX_PATH = 512
MAX_ID = 2**31 - 1
HEX32 = re.compile(r"[0-9a-f]{32}")
EXAMPLES = 120

# ----------------------------------------------------------------- strategies
nasty_strings = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "\x00",
            "a\x00b",
            "\ud800",
            "x\udfffy",
            "\u202e\u0000",
            "'; DROP TABLE user_interactions; --",
            "<script>alert(1)</script>",
            "${jndi:ldap://x}",
            "\r\nSet-Cookie: a=b",
            "/procedures/3?email=visitor@example.com",
            "//evil.example/x",
        ]
    ),
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3),
    st.integers(min_value=250, max_value=9000).map(lambda n: "é" * n),
)
nasty_scalars = st.one_of(
    nasty_strings,
    st.integers(),
    st.sampled_from([2**31, 2**53 + 1, 2**63, 10**40, -(2**31) - 1, -1, 0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
)
nasty_values = st.recursive(
    nasty_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(nasty_strings, children, max_size=3)
    ),
    max_leaves=8,
)
metadata_keys = st.one_of(st.from_regex(r"[a-z_]{1,12}", fullmatch=True), nasty_strings)
valid_events = st.fixed_dictionaries(
    {
        "interaction_type": st.sampled_from(sorted(INTERACTION_TYPES)),
        "target_type": st.sampled_from(["procedure", "doctor", "package", "category"]),
        "target_id": st.integers(min_value=1, max_value=9),
        "event_id": st.uuids().map(lambda u: u.hex),
    },
    optional={
        "metadata": st.dictionaries(metadata_keys, nasty_scalars, max_size=4),
        "path": nasty_strings,
    },
).map(
    # A search needs its query; give it one so that searches get through too.
    lambda e: (
        {**e, "metadata": {**e.get("metadata", {}), "query": "botox"}}
        if e["interaction_type"] == "search"
        else e
    )
)
field_names = st.sampled_from(
    ["interaction_type", "target_type", "target_id", "event_id", "path", "metadata", "extra"]
)
mutated_events = st.builds(lambda e, k, v: {**e, k: v}, valid_events, field_names, nasty_values)
events = st.one_of(valid_events, mutated_events, nasty_values)


def _dumps(value: object, ascii_only: bool) -> bytes:
    # ensure_ascii=False with surrogatepass yields bytes that are not valid UTF-8.
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


beacon_bodies = st.one_of(
    st.builds(_dumps, events, st.booleans()),
    st.builds(
        lambda evs, token, a: _dumps({"token": token, "events": evs}, a),
        st.lists(events, max_size=6),
        st.one_of(st.none(), nasty_scalars),
        st.booleans(),
    ),
    st.builds(_dumps, st.fixed_dictionaries({"events": nasty_values}), st.booleans()),
    st.integers(min_value=20, max_value=5000).map(lambda d: b"[" * d + b"]" * d),
    st.integers(min_value=20, max_value=5000).map(lambda d: b'{"a":' * d + b"1" + b"}" * d),
    st.binary(max_size=64),
    st.integers(min_value=8000, max_value=20000).map(lambda n: b'{"x":"' + b"a" * n + b'"}'),
)
content_types = st.sampled_from(
    [
        "text/plain;charset=UTF-8",
        "application/json",
        "application/json; charset=latin-1",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=zz",
        "text/html",
        "",
        "image/png",
    ]
)
path_segments = st.one_of(
    st.sampled_from(["procedures", "doctors", "categories", "packages", "users", "..", "%00"]),
    st.from_regex(r"[A-Za-z0-9%._~-]{0,20}", fullmatch=True),
)
limits = st.one_of(
    st.none(),
    st.integers(min_value=-5, max_value=10**12).map(str),
    st.from_regex(r"[A-Za-z0-9%.+-]{0,12}", fullmatch=True),
)
# A NUL in a page's own path is a known gap, proved on its own below.
page_paths = st.from_regex(r"/[A-Za-z0-9%._~/-]{0,60}", fullmatch=True).filter(
    lambda p: "%00" not in p
)

requests = st.one_of(
    st.tuples(st.just("beacon"), beacon_bodies, content_types),
    st.tuples(st.just("recommendations"), path_segments, limits),
    st.tuples(st.just("page"), page_paths, st.none()),
)


# --------------------------------------------------------------------- checks
def assert_rows_valid(database_url: str) -> int:
    """Every stored interaction has known types, sane ids and small, valid JSON."""
    rows = all_rows(database_url, "user_interactions")
    for row in rows:
        assert row["interaction_type"] in INTERACTION_TYPES, row
        assert row["target_type"] in TARGET_TYPES, row
        target_id = row["target_id"]
        assert target_id is None or (
            isinstance(target_id, int) and not isinstance(target_id, bool)
        ), row
        assert target_id is None or 0 <= target_id <= MAX_ID, row
        assert HEX32.fullmatch(row["user_id"]), row
        assert row["event_id"] is None or HEX32.fullmatch(row["event_id"]), row
        assert isinstance(row["session_id"], str) and 0 < len(row["session_id"]) <= 64, row
        if row["extra_data"] is None:
            continue
        extra = json.loads(row["extra_data"])
        assert isinstance(extra, dict), row
        path = extra.pop("path", None)
        if path is not None:
            assert isinstance(path, str) and path.startswith("/"), row
            assert "?" not in path and "\x00" not in path and len(path) <= MAX_PATH, row
        categories = extra.pop("categories", None)
        if categories is not None:
            assert all(isinstance(c, int) for c in categories), row
        for key, value in extra.items():
            assert isinstance(key, str), row
            assert value is None or isinstance(value, str | int | float | bool), row
            assert not isinstance(value, str) or "\x00" not in value, row
        assert len(json.dumps(extra)) <= MAX_METADATA, row
    return len(rows)


def _check_reply(kind: str, status: int, body: bytes) -> None:
    assert status < 500, (kind, status, body[:300])
    if kind != "beacon":
        return
    data = json.loads(body) if body else None
    if status == 202:
        assert isinstance(data["accepted"], int) and data["accepted"] >= 0
        for rejection in data["rejected"]:
            assert isinstance(rejection["index"], int) and isinstance(rejection["reason"], str)
    elif status in (400, 413, 415):
        assert isinstance(data["error"], str) and data["error"]
    else:
        pytest.fail(f"beacon answered {status}: {body[:300]!r}")


@pytest.mark.parametrize("adapter", ["asgi", "wsgi"])
def test_adversarial_requests_never_break_the_server_or_the_table(
    adapter: str, database_url: str
) -> None:
    penchant = Penchant(
        database_url=database_url,
        secret_key="fuzz-0123456789abcdef",
        catalog=small_catalog(),
        url_patterns={"/procedures/{id}": "procedure"},
        require_token=False,
        visitor_rate_limit=0,
        ip_rate_limit=0,
        max_metadata_bytes=MAX_METADATA,
        flush_interval=0.05,
    )
    penchant.init_db()
    client = site_client(adapter, penchant)
    headers = {"Sec-Fetch-Site": "same-origin", "User-Agent": "Mozilla/5.0 FuzzTest"}
    statuses: dict[int, int] = {}

    send: dict[str, Callable[[Any, Any], tuple[int, bytes]]] = {}

    def beacon(body: bytes, content_type: str) -> tuple[int, bytes]:
        reply = client.post(BEACON, body, headers={**headers, "Content-Type": content_type})
        return reply.status, reply.body

    def recommendations(segment: str, limit: str | None) -> tuple[int, bytes]:
        query = "" if limit is None else f"?limit={limit}"
        reply = client.get(f"/personalization/recommendations/{segment}{query}", headers=headers)
        # ("." and ".." segments are resolved by the client: such a URL is a host page.)
        if reply.status == 200 and segment not in (".", ".."):
            assert isinstance(json.loads(reply.body)["recommendations"], list)
        return reply.status, reply.body

    def page(path: str, _: None) -> tuple[int, bytes]:
        reply = client.get(path, headers=headers)
        return reply.status, reply.body

    send.update(beacon=beacon, recommendations=recommendations, page=page)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(request=requests)
    def run(request: tuple[str, Any, Any]) -> None:
        kind, first, second = request
        status, body = send[kind](first, second)
        statuses[status] = statuses.get(status, 0) + 1
        _check_reply(kind, status, body)

    try:
        run()
        assert penchant.flush(20)
        health = penchant.health()
    finally:
        client.close()
        penchant.close()
    stored = assert_rows_valid(database_url)
    # Not vacuous: some events got through, some were refused.
    assert stored > 0
    assert health["stored"] == stored
    assert any(400 <= status < 500 for status in statuses)
    dropped = health["dropped"]
    assert isinstance(dropped, dict) and dropped["invalid"] > 0
    assert dropped["dead_letter"] == 0


@pytest.mark.parametrize("adapter", ["asgi", "wsgi"])
def test_a_lone_surrogate_echoed_in_an_error_is_still_a_400(adapter: str, tmp_path: Any) -> None:
    # Found by the fuzzer above: the error names the unknown field, a lone surrogate.
    penchant = Penchant(
        database_url=f"sqlite:///{tmp_path / 'p.db'}", secret_key="fuzz-0123456789abcdef"
    )
    client = site_client(adapter, penchant)
    try:
        reply = client.post(
            BEACON,
            _dumps({"interaction_type": "view", "target_type": "page", "\ud800": 1}, True),
            headers={"Sec-Fetch-Site": "same-origin", "Content-Type": "text/plain"},
        )
    finally:
        client.close()
        penchant.close()
    assert reply.status == 400
    assert reply.json()["error"] == "\ud800: unknown field"


@pytest.mark.parametrize("adapter", ["asgi", "wsgi"])
def test_a_page_path_with_nul_is_cleaned_before_it_is_stored(
    adapter: str, database_url: str
) -> None:
    penchant = Penchant(
        database_url=database_url,
        secret_key="fuzz-0123456789abcdef",
        catalog=small_catalog(),
        flush_interval=0.05,
    )
    penchant.init_db()
    client = site_client(adapter, penchant)
    try:
        reply = client.get("/about%00me", headers={"User-Agent": "Mozilla/5.0 FuzzTest"})
        assert reply.status == 200
        assert penchant.flush(10)
    finally:
        client.close()
        penchant.close()
    assert assert_rows_valid(database_url) == 1
