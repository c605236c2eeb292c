"""The operator's credentials (dashboard, health): never in a URL, long enough, and
an address that keeps guessing waits, longer each time. Both adapters."""

from __future__ import annotations

from typing import Any

import pytest

from penchant.config import ConfigError, Settings
from tests.harness import site_client
from tests.security.helpers import SAME_ORIGIN, OpenSite

TOKEN = "operator-token-0123456789abcdef"
ROUTES = ("/personalization/dashboard", "/personalization/health")


@pytest.mark.parametrize("route", ROUTES)
def test_a_token_in_the_url_is_refused_even_when_right(
    adapter: str, route: str, tmp_path: Any, open_site: OpenSite
) -> None:
    client, _ = open_site(adapter, f"sqlite:///{tmp_path / 'url.db'}", dashboard_token=TOKEN)
    reply = client.get(f"{route}?token={TOKEN}", headers=SAME_ORIGIN)
    # A URL ends up in access logs, proxies' logs and the browser's history.
    assert reply.status == 400
    assert "Authorization" in reply.json()["error"]
    bearer = {**SAME_ORIGIN, "Authorization": f"Bearer {TOKEN}"}
    assert client.get(route, headers=bearer).status in (200, 503)


@pytest.mark.parametrize("route", ROUTES)
def test_an_address_that_keeps_guessing_waits_longer_each_time(
    adapter: str, route: str, tmp_path: Any, open_site: OpenSite
) -> None:
    now = [1000.0]
    url = f"sqlite:///{tmp_path / 'guess.db'}"
    client, penchant = open_site(
        adapter, url, peer="198.51.100.66", dashboard_token=TOKEN, timer=lambda: now[0]
    )
    guess = {**SAME_ORIGIN, "Authorization": "Bearer guess-0123456789abcdef"}
    right = {**SAME_ORIGIN, "Authorization": f"Bearer {TOKEN}"}
    # Five guesses are free (a typo, a password manager); then the address waits.
    assert [client.get(route, headers=guess).status for _ in range(5)] == [401] * 5
    assert client.get(route, headers=guess).status == 401  # the sixth: wait 1 s
    waiting = client.get(route, headers=right)
    assert waiting.status == 429  # even the right token, while the address waits
    assert waiting.header("Retry-After") == "1"
    now[0] += 1.0
    assert client.get(route, headers=guess).status == 401  # the seventh: wait 2 s
    now[0] += 1.0
    assert client.get(route, headers=right).status == 429
    assert client.get(route, headers=right).header("Retry-After") == "1"
    # Another address is not held up by this one.
    other = site_client(adapter, penchant, peer="198.51.100.67")
    try:
        assert other.get(route, headers=right).status in (200, 503)
    finally:
        other.close()
    now[0] += 1.0
    assert client.get(route, headers=right).status in (200, 503)
    # A success forgets the failures: the next guess is free again.
    assert client.get(route, headers=guess).status == 401
    assert client.get(route, headers=right).status in (200, 503)


@pytest.mark.parametrize(
    "credentials",
    [
        {"dashboard_token": "s3cret"},
        {"dashboard_token": ""},
        {"dashboard_user": "admin", "dashboard_password": "open sesame"},
    ],
)
def test_short_operator_credentials_stop_the_start(credentials: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="at least 16 characters"):
        Settings.build(**credentials)
    with pytest.raises(ConfigError, match="PENCHANT_DASHBOARD_TOKEN"):
        Settings.from_env({"PENCHANT_DASHBOARD_TOKEN": "short-token"})
