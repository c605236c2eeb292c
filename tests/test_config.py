from __future__ import annotations

import re

import pytest

from penchant.config import DEFAULT_WEIGHTS, ConfigError, Settings


def test_defaults_are_the_original() -> None:
    s = Settings()
    assert s.retention_days == 90
    assert s.decay_rate == 0.95
    assert dict(s.weights) == {"view": 0.1, "search": 0.2, "click": 0.3, "form_submit": 0.5}
    assert (s.category_limit, s.procedure_limit, s.doctor_limit) == (6, 6, 9)
    assert s.database_url.startswith("sqlite:///")


def test_from_env_reads_the_original_variables() -> None:
    s = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://u@h/db",
            "PERSONALIZATION_ENABLED": "false",
            "INTERACTION_RETENTION_DAYS": "30",
            "AFFINITY_DECAY_RATE": "0.9",
            "PENCHANT_SECRET_KEYS": "new-0123456789abcdef, old-0123456789abcdef",
            "PENCHANT_WEIGHTS": "view=0.05",
        }
    )
    assert s.database_url == "postgresql://u@h/db"
    assert s.enabled is False
    assert s.retention_days == 30
    assert s.decay_rate == 0.9
    assert s.secret_keys == ("new-0123456789abcdef", "old-0123456789abcdef")
    assert s.secret_key == "new-0123456789abcdef"
    assert s.weights["view"] == 0.05 and s.weights["click"] == DEFAULT_WEIGHTS["click"]


def test_keywords_win_over_the_environment() -> None:
    s = Settings.from_env(
        {"AFFINITY_DECAY_RATE": "0.9"}, decay_rate=0.8, secret_key="k-0123456789abcdef"
    )
    assert s.decay_rate == 0.8 and s.secret_keys == ("k-0123456789abcdef",)


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"AFFINITY_DECAY_RATE": "2"}, "AFFINITY_DECAY_RATE"),
        ({"AFFINITY_DECAY_RATE": "fast"}, "AFFINITY_DECAY_RATE"),
        ({"INTERACTION_RETENTION_DAYS": "-1"}, "INTERACTION_RETENTION_DAYS"),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL"),
        ({"PERSONALIZATION_ENABLED": "maybe"}, "PERSONALIZATION_ENABLED"),
        ({"PENCHANT_CONSENT": "sometimes"}, "PENCHANT_CONSENT"),
        ({"PENCHANT_HOLDOUT": "1.5"}, "PENCHANT_HOLDOUT"),
        ({"PENCHANT_WEIGHTS": "view=3"}, "PENCHANT_WEIGHTS"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env(env)


def test_unknown_keyword_is_an_error() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings.build(colour="blue")


def test_url_patterns_accept_a_mapping() -> None:
    s = Settings.build(url_patterns={"/p/{id}": "procedure"})
    assert s.url_patterns == (("/p/{id}", "procedure"),)


@pytest.mark.parametrize(
    ("kwargs", "said"),
    [
        ({"secret_key": ""}, "PENCHANT_SECRET_KEY: empty"),
        ({"secret_key": "short"}, "PENCHANT_SECRET_KEY: 5 characters"),
        ({"secret_key": "x" * 15}, "at least 16"),
        # an old key still listed for verification is a key too
        ({"secret_key": "x" * 32, "secret_keys": ("old",)}, "PENCHANT_SECRET_KEYS[1]"),
    ],
)
def test_empty_or_short_secrets_stop_the_start(kwargs: dict[str, object], said: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(said)):
        Settings.build(**kwargs)


def test_a_secret_of_sixteen_characters_or_none_at_all_starts() -> None:
    assert Settings.build(secret_key="x" * 16).secret_key == "x" * 16
    assert Settings.build().secret_key is None  # generated and kept in the database


@pytest.mark.parametrize("raw", ["", " ", ",", "short"])
def test_an_empty_or_short_secret_in_the_environment_stops_the_start(raw: str) -> None:
    with pytest.raises(ConfigError, match="PENCHANT_SECRET_KEY"):
        Settings.from_env({"PENCHANT_SECRET_KEY": raw})


@pytest.mark.parametrize("name", ["ip_rate_limit", "visitor_rate_limit"])
def test_a_negative_rate_limit_stops_the_start(name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.build(**{name: -1})
    assert getattr(Settings.build(**{name: 0}), name) == 0  # 0 turns the limit off


def test_cache_private_reads_the_environment() -> None:
    assert Settings().cache_private is True
    assert Settings.from_env({"PENCHANT_CACHE_PRIVATE": "false"}).cache_private is False
    with pytest.raises(ConfigError, match="PENCHANT_CACHE_PRIVATE"):
        Settings.from_env({"PENCHANT_CACHE_PRIVATE": "sometimes"})
