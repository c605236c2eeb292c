"""Behind a proxy that is not in ``trusted_proxies`` every visitor shares the proxy's
address: penchant says so, once, when ``X-Forwarded-For`` arrives from such a peer."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.security.helpers import SAME_ORIGIN, OpenSite

PROXY = "10.0.0.5"


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "X-Forwarded-For" in r.getMessage()
    ]


def test_a_forwarded_header_from_an_untrusted_peer_is_said_once(
    adapter: str, tmp_path: Any, open_site: OpenSite, caplog: pytest.LogCaptureFixture
) -> None:
    client, penchant = open_site(adapter, f"sqlite:///{tmp_path / 'proxy.db'}", peer=PROXY)
    with caplog.at_level(logging.WARNING, logger="personalization"):
        for n in range(5):
            forwarded = {**SAME_ORIGIN, "X-Forwarded-For": f"203.0.113.{n + 1}"}
            assert client.get("/procedures/1", headers=forwarded).status == 200
        assert penchant.flush(10)
    said = _warnings(caplog)
    assert len(said) == 1, said
    assert "trusted_proxies" in said[0].lower() or "TRUSTED_PROXIES" in said[0]
    # It names no visitor's address.
    assert "203.0.113." not in said[0]


def test_a_trusted_proxy_or_no_header_is_not_warned_about(
    adapter: str, tmp_path: Any, open_site: OpenSite, caplog: pytest.LogCaptureFixture
) -> None:
    trusted, trusted_penchant = open_site(
        adapter, f"sqlite:///{tmp_path / 'trusted.db'}", peer=PROXY, trusted_proxies=(PROXY,)
    )
    direct, direct_penchant = open_site(adapter, f"sqlite:///{tmp_path / 'direct.db'}")
    with caplog.at_level(logging.WARNING, logger="personalization"):
        forwarded = {**SAME_ORIGIN, "X-Forwarded-For": "203.0.113.9"}
        assert trusted.get("/procedures/1", headers=forwarded).status == 200
        assert direct.get("/procedures/1", headers=SAME_ORIGIN).status == 200
        assert trusted_penchant.flush(10) and direct_penchant.flush(10)
    assert _warnings(caplog) == []
