"""Settings: one frozen dataclass, built from keyword arguments or the environment.

The environment is read once, in :meth:`Settings.from_env`; nothing in a request
reads it again. A bad value raises :class:`ConfigError` naming the variable.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "DEFAULT_WEIGHTS",
    "MIN_CREDENTIAL_CHARS",
    "MIN_SECRET_CHARS",
    "ConfigError",
    "Settings",
]

DEFAULT_WEIGHTS: Mapping[str, float] = {
    "view": 0.1,
    "search": 0.2,
    "click": 0.3,
    "form_submit": 0.5,
}

_URL_SCHEMES = ("sqlite", "postgresql")
#: Shortest secret accepted: a short key could be found by trying keys.
MIN_SECRET_CHARS = 16
#: Shortest dashboard token or password accepted (the dashboard is also throttled).
MIN_CREDENTIAL_CHARS = 16


class ConfigError(ValueError):
    """A setting has a bad value; the message names the variable."""


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name}: expected true or false, got {raw!r}")


def _parse_number(name: str, raw: str, kind: type[int] | type[float]) -> Any:
    try:
        return kind(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}: expected a number, got {raw!r}") from None


def _split(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything penchant can be told. Every field has a documented default.

    ``secret_keys`` holds the site's secrets, newest first: the first signs and
    keys new identities, the others are still accepted when verifying.
    """

    database_url: str = "sqlite:///penchant.db"
    enabled: bool = True
    # create the tables in a database that has none of them, on first use
    create_tables: bool = True
    retention_days: int = 90
    decay_rate: float = 0.95
    secret_keys: tuple[str, ...] = ()
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))

    # Recommendation limits, as in the original.
    category_limit: int = 6
    procedure_limit: int = 6
    doctor_limit: int = 9
    package_limit: int = 6
    strategy: Literal["blended", "original"] = "blended"
    max_per_category: int = 0  # 0: no cap on items of one category in one list
    exclude_seen: bool = True
    popular_window_days: int = 30
    popular_ttl: float = 60.0

    # Identity and consent.
    consent: Literal["opt-out", "opt-in"] = "opt-out"
    fingerprint: Literal["hmac", "md5"] = "hmac"
    honor_gpc: bool = True
    honor_dnt: bool = True
    truncate_ip: bool = False
    trusted_proxies: tuple[str, ...] = ()
    session_timeout: float = 30 * 60.0
    store_search_text: bool = False
    max_metadata_bytes: int = 1024

    # HTTP.
    prefix: str = "/personalization"
    url_patterns: tuple[tuple[str, str], ...] = ()
    static_prefixes: tuple[str, ...] = ("/static/", "/favicon.ico", "/robots.txt")
    max_body_bytes: int = 8192
    require_token: bool = True
    allowed_hosts: tuple[str, ...] = ()
    allow_webdriver: bool = False
    export_with_fingerprint: bool = False
    dashboard_token: str | None = None
    dashboard_user: str | None = None
    dashboard_password: str | None = None
    # Cache-Control: private and Vary: Cookie on responses that used the visitor;
    # False for a site that caches its HTML and personalizes in the browser
    cache_private: bool = True

    # Writer and caches.
    # with the change feed's 0.25 s poll, other workers see events within 1 s
    flush_interval: float = 0.75
    # a commit per 2,000 events costs SQLite half the CPU per event of one per 500
    batch_size: int = 2000
    queue_size: int = 10_000
    affinity_cache_size: int = 10_000
    affinity_cache_ttl: float = 60.0  # a backstop: the change feed drops stale profiles
    shutdown_timeout: float = 8.0
    read_timeout: float = 1.0  # a request waits this long for the database, then gets popular
    # erase and export wait this long for the database, then answer 503 (nothing done)
    privacy_timeout: float = 5.0

    # Abuse limits (events per visitor and per IP per minute); 0 disables.
    visitor_rate_limit: int = 240
    ip_rate_limit: int = 1200
    # erase, export and opt-out requests per client address per minute; 0 disables
    privacy_rate_limit: int = 10
    # Who counts in popular content and co-viewed items, per network (an IPv4
    # address; an IPv6 /64, /56 and /48): new visitors per hour that may count,
    # and visitors per day that count. Everyone is still served; 0 disables.
    network_identity_budget: int = 20
    network_daily_identities: int = 5
    redis_url: str | None = None

    # Experiments.
    holdout: float = 0.1
    experiment_key: str = "penchant"
    # a click counts for a recommendation shown to the same visitor at most this long before
    attribution_window: float = 30 * 60.0

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first bad field."""
        scheme = self.database_url.split(":", 1)[0].split("+", 1)[0]
        if scheme not in _URL_SCHEMES:
            raise ConfigError(
                f"DATABASE_URL: unknown scheme {scheme!r}; use sqlite:/// or postgresql://"
            )
        if not (0.0 < self.decay_rate <= 1.0) or math.isnan(self.decay_rate):
            raise ConfigError(f"AFFINITY_DECAY_RATE: must be in (0, 1], got {self.decay_rate!r}")
        if self.retention_days < 1:
            raise ConfigError(
                f"INTERACTION_RETENTION_DAYS: must be a positive number of days, "
                f"got {self.retention_days!r}"
            )
        for name, weight in self.weights.items():
            if not (0.0 <= weight <= 1.0) or math.isnan(weight):
                raise ConfigError(f"PENCHANT_WEIGHTS: weight of {name!r} must be in [0, 1]")
        for name in ("category_limit", "procedure_limit", "doctor_limit", "package_limit"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must not be negative")
        if self.consent not in ("opt-out", "opt-in"):
            raise ConfigError(f"PENCHANT_CONSENT: must be opt-out or opt-in, got {self.consent!r}")
        if self.fingerprint not in ("hmac", "md5"):
            raise ConfigError(
                f"PENCHANT_FINGERPRINT: must be hmac or md5, got {self.fingerprint!r}"
            )
        if self.strategy not in ("blended", "original"):
            raise ConfigError(
                f"PENCHANT_STRATEGY: must be blended or original, got {self.strategy!r}"
            )
        if not (0.0 <= self.holdout < 1.0):
            raise ConfigError(f"PENCHANT_HOLDOUT: must be in [0, 1), got {self.holdout!r}")
        if not self.prefix.startswith("/") or self.prefix.endswith("/"):
            raise ConfigError(
                f"PENCHANT_PREFIX: must start with / and not end with /, got {self.prefix!r}"
            )
        for name in (
            "flush_interval",
            "popular_ttl",
            "affinity_cache_ttl",
            "shutdown_timeout",
            "read_timeout",
            "privacy_timeout",
            "attribution_window",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: must be positive")
        for name in ("visitor_rate_limit", "ip_rate_limit"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must not be negative (0 turns the limit off)")
        for index, secret in enumerate(self.secret_keys):
            if len(secret) < MIN_SECRET_CHARS:
                which = "PENCHANT_SECRET_KEY" if index == 0 else f"PENCHANT_SECRET_KEYS[{index}]"
                raise ConfigError(
                    f"{which}: {'empty' if not secret else f'{len(secret)} characters'}; "
                    f"a secret needs at least {MIN_SECRET_CHARS} (python -c "
                    '"import secrets; print(secrets.token_urlsafe(32))" makes one)'
                )
        for name, env in (
            ("dashboard_token", "PENCHANT_DASHBOARD_TOKEN"),
            ("dashboard_password", "dashboard_password"),
        ):
            value = getattr(self, name)
            if value is not None and len(value) < MIN_CREDENTIAL_CHARS:
                raise ConfigError(
                    f"{env}: at least {MIN_CREDENTIAL_CHARS} characters, got {len(value)}"
                )
        if self.privacy_rate_limit < 0:
            raise ConfigError("privacy_rate_limit: must not be negative")
        for name in ("network_identity_budget", "network_daily_identities"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must not be negative")
        for name in ("batch_size", "queue_size", "max_body_bytes", "popular_window_days"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1")

    # --------------------------------------------------------------- builders
    @property
    def secret_key(self) -> str | None:
        """The newest secret, used for new identities and signatures."""
        return self.secret_keys[0] if self.secret_keys else None

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def build(cls, *, secret_key: str | None = None, **kwargs: Any) -> Settings:
        """Build from keyword arguments; ``secret_key`` is shorthand for one secret."""
        if secret_key is not None:
            kwargs["secret_keys"] = (secret_key, *kwargs.get("secret_keys", ()))
        for name in ("trusted_proxies", "allowed_hosts", "secret_keys", "static_prefixes"):
            if name in kwargs and isinstance(kwargs[name], str):
                kwargs[name] = _split(kwargs[name])
            elif name in kwargs:
                kwargs[name] = tuple(kwargs[name])
        if "url_patterns" in kwargs:
            patterns = kwargs["url_patterns"]
            if isinstance(patterns, Mapping):
                patterns = patterns.items()
            kwargs["url_patterns"] = tuple((str(p), str(t)) for p, t in patterns)
        if "weights" in kwargs:
            kwargs["weights"] = {**DEFAULT_WEIGHTS, **dict(kwargs["weights"])}
        unknown = set(kwargs) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return cls(**kwargs)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read the environment once; keyword ``overrides`` win over it."""
        env = os.environ if env is None else env
        kwargs: dict[str, Any] = {}
        get = env.get
        if (url := get("DATABASE_URL")) is not None:
            kwargs["database_url"] = url
        if (raw := get("PERSONALIZATION_ENABLED")) is not None:
            kwargs["enabled"] = _parse_bool("PERSONALIZATION_ENABLED", raw)
        if (raw := get("INTERACTION_RETENTION_DAYS")) is not None:
            kwargs["retention_days"] = _parse_number("INTERACTION_RETENTION_DAYS", raw, int)
        if (raw := get("AFFINITY_DECAY_RATE")) is not None:
            kwargs["decay_rate"] = _parse_number("AFFINITY_DECAY_RATE", raw, float)
        if (raw := get("PENCHANT_CREATE_TABLES")) is not None:
            kwargs["create_tables"] = _parse_bool("PENCHANT_CREATE_TABLES", raw)
        if (raw := get("PENCHANT_SECRET_KEYS") or get("PENCHANT_SECRET_KEY")) is not None:
            kwargs["secret_keys"] = _split(raw)
            if not kwargs["secret_keys"]:  # set, but to nothing: a mistake, not "generate one"
                raise ConfigError(
                    "PENCHANT_SECRET_KEY: empty; set a secret of at least "
                    f"{MIN_SECRET_CHARS} characters, or unset it to keep a generated one"
                )
        if (raw := get("PENCHANT_CONSENT")) is not None:
            kwargs["consent"] = raw.strip()
        if (raw := get("PENCHANT_FINGERPRINT")) is not None:
            kwargs["fingerprint"] = raw.strip()
        if (raw := get("PENCHANT_STRATEGY")) is not None:
            kwargs["strategy"] = raw.strip()
        if (raw := get("PENCHANT_PREFIX")) is not None:
            kwargs["prefix"] = raw.strip()
        if (raw := get("PENCHANT_TRUSTED_PROXIES")) is not None:
            kwargs["trusted_proxies"] = _split(raw)
        if (raw := get("PENCHANT_ALLOWED_HOSTS")) is not None:
            kwargs["allowed_hosts"] = _split(raw)
        if (raw := get("PENCHANT_HOLDOUT")) is not None:
            kwargs["holdout"] = _parse_number("PENCHANT_HOLDOUT", raw, float)
        if (raw := get("PENCHANT_EXPERIMENT_KEY")) is not None:
            kwargs["experiment_key"] = raw.strip()
        if (raw := get("PENCHANT_HONOR_GPC")) is not None:
            kwargs["honor_gpc"] = _parse_bool("PENCHANT_HONOR_GPC", raw)
        if (raw := get("PENCHANT_HONOR_DNT")) is not None:
            kwargs["honor_dnt"] = _parse_bool("PENCHANT_HONOR_DNT", raw)
        if (raw := get("PENCHANT_NETWORK_IDENTITY_BUDGET")) is not None:
            kwargs["network_identity_budget"] = _parse_number(
                "PENCHANT_NETWORK_IDENTITY_BUDGET", raw, int
            )
        if (raw := get("PENCHANT_NETWORK_DAILY_IDENTITIES")) is not None:
            kwargs["network_daily_identities"] = _parse_number(
                "PENCHANT_NETWORK_DAILY_IDENTITIES", raw, int
            )
        if (raw := get("PENCHANT_CACHE_PRIVATE")) is not None:
            kwargs["cache_private"] = _parse_bool("PENCHANT_CACHE_PRIVATE", raw)
        if (raw := get("PENCHANT_REDIS_URL")) is not None:
            kwargs["redis_url"] = raw.strip() or None
        if (raw := get("PENCHANT_DASHBOARD_TOKEN")) is not None:
            kwargs["dashboard_token"] = raw.strip() or None
        if (raw := get("PENCHANT_READ_TIMEOUT")) is not None:
            kwargs["read_timeout"] = _parse_number("PENCHANT_READ_TIMEOUT", raw, float)
        if (raw := get("PENCHANT_PRIVACY_TIMEOUT")) is not None:
            kwargs["privacy_timeout"] = _parse_number("PENCHANT_PRIVACY_TIMEOUT", raw, float)
        if (raw := get("PENCHANT_ATTRIBUTION_WINDOW")) is not None:
            kwargs["attribution_window"] = _parse_number("PENCHANT_ATTRIBUTION_WINDOW", raw, float)
        if (raw := get("PENCHANT_WEIGHTS")) is not None:
            weights: dict[str, float] = {}
            for part in _split(raw):
                name, _, value = part.partition("=")
                weights[name.strip()] = _parse_number("PENCHANT_WEIGHTS", value, float)
            kwargs["weights"] = weights
        kwargs.update(overrides)
        return cls.build(**kwargs)
