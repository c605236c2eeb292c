"""The identity budget's network keys: what a network is, where its key lives and
for how long, and that every worker shares the verdicts (through Redis)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from penchant.middleware.networks import SALT_LIFE, NetworkBudget, networks_of
from penchant.middleware.ratelimit import MemoryBackend, RedisBackend
from tests.conftest import REDIS_URL, redis_client

DAY = datetime(2030, 5, 17, 9, 30)


def test_a_network_is_an_ipv4_address_or_an_ipv6_64_56_and_48() -> None:
    assert networks_of("192.0.2.7") == ("4:192.0.2.7",)
    assert networks_of("::ffff:192.0.2.7") == ("4:192.0.2.7",)
    assert networks_of("2001:db8:aa:bbcc:1:2:3:4") == (
        "6/64:20010db800aabbcc",
        "6/56:20010db800aabb",
        "6/48:20010db800aa",
    )
    assert networks_of("[2001:db8::1]")[2] == "6/48:20010db80000"
    assert networks_of("testclient") == ("?:testclient",)


def test_identities_past_the_budgets_do_not_count() -> None:
    budget = NetworkBudget(MemoryBackend(), per_hour=4, per_day=2)
    verdicts = [budget.judge(f"visitor{i}", "192.0.2.7", DAY).shared for i in range(6)]
    assert verdicts == [True, True, False, False, False, False]
    # a visitor judged once keeps the verdict for the day, however often seen
    assert budget.judge("visitor0", "192.0.2.7", DAY).shared
    assert not budget.judge("visitor5", "192.0.2.7", DAY).shared
    # another address is another network; the next day is another day
    assert budget.judge("visitor9", "192.0.2.8", DAY).shared
    assert budget.judge("visitor5", "192.0.2.7", DAY + timedelta(days=1)).shared


def test_one_48_is_one_network_whatever_its_64s() -> None:
    budget = NetworkBudget(MemoryBackend(), per_hour=0, per_day=3)
    shared = [budget.judge(f"v{i}", f"2001:db8:7:{i:x}::1", DAY).shared for i in range(10)]
    assert shared == [True, True, True] + [False] * 7


def test_the_hourly_budget_spends_before_the_daily_places() -> None:
    budget = NetworkBudget(MemoryBackend(), per_hour=2, per_day=0)
    first = [budget.judge(f"v{i}", "192.0.2.7", DAY).shared for i in range(3)]
    later = DAY + timedelta(hours=2)  # the hour's budget is back
    assert first == [True, True, False]
    assert budget.judge("v10", "192.0.2.7", later).shared


def test_keys_are_digests_that_change_every_day() -> None:
    budget = NetworkBudget(MemoryBackend(), per_hour=0, per_day=5)
    today = budget.judge("v", "192.0.2.7", DAY).network
    same = budget.judge("w", "192.0.2.7", DAY).network
    tomorrow = budget.judge("v", "192.0.2.7", DAY + timedelta(days=1)).network
    assert today == same and today != tomorrow
    assert len(today) == 32 and "192" not in today


@pytest.fixture
def redis_prefix() -> Iterator[tuple[str, Any]]:
    client = redis_client()
    prefix = f"penchant-test:{uuid.uuid4().hex}:"
    yield prefix, client
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


def test_redis_holds_salted_keys_only_and_destroys_the_salt_after_48_hours(
    redis_prefix: tuple[str, Any],
) -> None:
    prefix, client = redis_prefix
    budget = NetworkBudget(RedisBackend(REDIS_URL, prefix=prefix), per_hour=5, per_day=5)
    budget.judge("a-visitor-id", "203.0.113.77", DAY)
    budget.first_pair_from(budget.judge("a-visitor-id", "203.0.113.77", DAY).network, "p", DAY)
    keys = [k.decode() for k in client.scan_iter(match=f"{prefix}*")]
    assert keys
    for key in keys:
        assert "203.0.113" not in key and "a-visitor-id" not in key, key
        value = client.get(key) if client.type(key) == b"string" else b""
        assert b"203.0.113" not in (value or b""), key
        ttl = client.ttl(key)
        assert 0 < ttl <= SALT_LIFE, (key, ttl)  # nothing outlives 48 hours
    (salt,) = [k for k in keys if ":salt:" in k]
    assert SALT_LIFE - 60 <= client.ttl(salt) <= SALT_LIFE


def test_two_workers_share_budgets_and_verdicts_through_redis(
    redis_prefix: tuple[str, Any],
) -> None:
    prefix, _ = redis_prefix
    first = NetworkBudget(RedisBackend(REDIS_URL, prefix=prefix), per_hour=0, per_day=2)
    second = NetworkBudget(RedisBackend(REDIS_URL, prefix=prefix), per_hour=0, per_day=2)
    assert first.judge("v1", "192.0.2.7", DAY).shared
    assert second.judge("v2", "192.0.2.7", DAY).shared
    assert not first.judge("v3", "192.0.2.7", DAY).shared
    # v3 seen again by the other worker: the same verdict, no place taken
    assert not second.judge("v3", "192.0.2.7", DAY).shared
    assert second.judge("v1", "192.0.2.7", DAY).shared
    network = first.judge("v1", "192.0.2.7", DAY).network
    assert first.first_pair_from(network, "procedure:1|procedure:9", DAY)
    assert not second.first_pair_from(network, "procedure:1|procedure:9", DAY)


def test_a_dead_store_counts_everyone_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    budget = NetworkBudget(
        RedisBackend("redis://127.0.0.1:1/0", socket_timeout=0.05), per_hour=1, per_day=1
    )
    with caplog.at_level("WARNING", logger="personalization"):
        verdicts = [budget.judge(f"v{i}", "192.0.2.7", DAY).shared for i in range(3)]
    assert verdicts == [True, True, True]
    assert len([r for r in caplog.records if "identity budget" in r.message]) == 1


def test_negative_budgets_are_refused() -> None:
    with pytest.raises(ValueError, match="network budgets"):
        NetworkBudget(MemoryBackend(), per_hour=-1, per_day=1)


def test_the_budgets_are_read_from_the_environment_and_checked() -> None:
    from penchant.config import ConfigError, Settings

    settings = Settings.from_env(
        {"PENCHANT_NETWORK_IDENTITY_BUDGET": "50", "PENCHANT_NETWORK_DAILY_IDENTITIES": "0"}
    )
    assert (settings.network_identity_budget, settings.network_daily_identities) == (50, 0)
    assert (Settings().network_identity_budget, Settings().network_daily_identities) == (20, 5)
    with pytest.raises(ConfigError, match="network_daily_identities"):
        Settings(network_daily_identities=-1)
