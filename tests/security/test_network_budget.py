"""Made-up visitors from one network cannot steer what everyone is shown.

Each new User-Agent is a new fingerprint, so one client can be any number of
"visitors". Counted per network (an IPv4 address; an IPv6 /64, /56 and /48),
only a few identities a day reach the shared counts (popular content,
co-viewed items), and a pair of items needs visitors from more than one
network before it is a reason. Real visitors from many networks still move
them; real visitors behind one carrier NAT still get their own
recommendations.

The requests go through the WSGI adapter with a trusted proxy in front, so
each carries its client address in ``X-Forwarded-For`` (nothing is sent
anywhere: the addresses are only strings in a header).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest

from penchant import Penchant
from tests.harness import all_rows, every_value, small_catalog

pytestmark = pytest.mark.date_sensitive

PROXY = "198.51.100.20"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
#: Procedure -> how many of the real visitors viewed it (visitor k views it when k <= count).
REAL_COUNTS = {1: 40, 2: 36, 3: 32, 4: 28, 5: 24, 6: 20, 7: 14, 8: 10, 9: 2}

#: The attacker's addresses: one IPv4 address, one /64, one /48 (a different /56 each time).
NETWORKS: dict[str, Callable[[int], str]] = {
    "one address": lambda n: "192.0.2.200",
    "one /64": lambda n: f"2001:db8:1:2:{n // 65536:x}:{n % 65536:x}:1:1",
    "one /48": lambda n: f"2001:db8:7:{n % 65536:x}::1",
}


def _pages(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """A host app whose pages are plain HTML (recommendations are asked for apart)."""
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return [b"<!doctype html><title>Page</title><p>A page.</p>"]


class Site:
    """The small site behind a trusted proxy: page views and recommendations, by address."""

    def __init__(self, penchant: Penchant) -> None:
        self.penchant = penchant
        self.app = penchant.wsgi(_pages)

    def get(self, path: str, user_agent: str, address: str) -> tuple[str, bytes]:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": PROXY,
            "HTTP_HOST": "testserver",
            "HTTP_X_FORWARDED_FOR": address,
            "HTTP_USER_AGENT": user_agent,
            "HTTP_ACCEPT_LANGUAGE": "en-GB",
            "HTTP_SEC_FETCH_SITE": "same-origin",
            "HTTP_SEC_FETCH_MODE": "navigate",
            "HTTP_SEC_FETCH_DEST": "document",
            "HTTP_SEC_FETCH_USER": "?1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": io.StringIO(),
        }
        status: list[str] = []

        def start_response(line: str, headers: list[tuple[str, str]], exc: Any = None) -> None:
            status.append(line)

        body = b"".join(self.app(environ, start_response))
        return status[0], body

    def view(self, procedure: int, user_agent: str, address: str) -> None:
        line, _ = self.get(f"/procedures/{procedure}", user_agent, address)
        assert line.startswith("200"), line

    def top(self, user_agent: str, address: str) -> list[tuple[int, str]]:
        """The visitor's six recommended procedures, with their reasons, in order."""
        line, body = self.get("/personalization/recommendations/procedures", user_agent, address)
        assert line.startswith("200"), line
        return [
            (r["id"], json.dumps(r["reason"], sort_keys=True))
            for r in json.loads(body)["recommendations"]
        ]

    def settle(self) -> None:
        assert self.penchant.flush(60)
        assert self.penchant.refresh_popularity(60)


@pytest.fixture
def open_site(database_url: str, now: datetime) -> Iterator[Callable[..., Site]]:
    opened: list[Penchant] = []

    def open_(**settings: Any) -> Site:
        penchant = Penchant(
            database_url=database_url,
            secret_key="network-budget-tests",
            catalog=small_catalog(),
            url_patterns={"/procedures/{id}": "procedure"},
            trusted_proxies=(PROXY,),
            flush_interval=0.05,
            popular_ttl=0.001,
            affinity_cache_ttl=0.001,
            clock=lambda: now,
            **settings,
        )
        penchant.init_db()
        opened.append(penchant)
        return Site(penchant)

    yield open_
    for penchant in opened:
        penchant.close(timeout=10.0)


def _real_visitors(site: Site) -> None:
    """40 people, each from an address of their own, each viewing a few procedures."""
    for k in range(1, 41):
        for procedure, count in REAL_COUNTS.items():
            if k <= count:
                site.view(procedure, f"{BROWSER} Real/{k}", f"198.18.{k}.1")
    site.settle()


#: Whose top 6 is watched: a newcomer, and a real visitor who viewed procedure 1 and 3.
WATCHED = [(f"{BROWSER} Newcomer", "198.18.200.1"), (f"{BROWSER} Real/33", "198.18.33.1")]


def _tops(site: Site) -> list[list[tuple[int, str]]]:
    return [site.top(agent, address) for agent, address in WATCHED]


def _made_up_visitors(site: Site, network: Callable[[int], str], count: int) -> None:
    """``count`` fingerprints from one network, each viewing procedure 1 and then 9."""
    for n in range(count):
        agent, address = f"{BROWSER} Made-up/{n}", network(n)
        site.view(1, agent, address)
        site.view(9, agent, address)
    site.settle()


@pytest.mark.parametrize("network", NETWORKS)
def test_300_made_up_visitors_from_one_network_move_no_top_6(
    open_site: Callable[..., Site], network: str
) -> None:
    site = open_site()
    _real_visitors(site)
    before = _tops(site)
    assert before[0][0][0] == 1  # the newcomer's first pick: the most viewed procedure
    assert 9 not in [item for item, _ in before[0]]

    _made_up_visitors(site, NETWORKS[network], 300)

    assert _tops(site) == before
    # Nothing of the network reaches the database: not the address, not its key.
    for table, column, value in every_value(site.penchant.settings.database_url):
        assert "192.0.2.200" not in value and "2001:db8" not in value, (table, column)
    left_out = all_rows(site.penchant.settings.database_url, "penchant_unshared")
    assert len(left_out) == 300 - 5 and set(left_out[0]) == {"user_id", "day"}
    # Every made-up visitor was stored and is served like anyone else.
    bot = site.top(f"{BROWSER} Made-up/299", NETWORKS[network](299))
    assert bot and bot != before[0]


def test_50_real_visitors_from_50_addresses_still_move_it(
    open_site: Callable[..., Site],
) -> None:
    site = open_site()
    _real_visitors(site)
    before = _tops(site)

    for n in range(50):
        agent, address = f"{BROWSER} Person/{n}", f"203.0.113.{n + 1}"
        site.view(1, agent, address)
        site.view(9, agent, address)
    site.settle()

    after = _tops(site)
    assert 9 in [item for item, _ in after[0]]  # the newcomer sees procedure 9 now
    assert after[1] != before[1]


@pytest.mark.parametrize("network", NETWORKS)
def test_10000_made_up_visitors_from_one_network_move_no_top_6(
    open_site: Callable[..., Site], network: str
) -> None:
    site = open_site()
    _real_visitors(site)
    before = _tops(site)

    started = time.monotonic()
    _made_up_visitors(site, NETWORKS[network], 10_000)
    took = time.monotonic() - started

    assert _tops(site) == before
    assert took < 120, f"20,000 page views took {took:.1f} s"


def test_200_people_behind_one_carrier_nat_get_their_own_recommendations(
    open_site: Callable[..., Site],
) -> None:
    site = open_site(holdout=0.0)  # everyone personalized: no control group
    _real_visitors(site)
    newcomer = site.top(*WATCHED[0])
    nat = "192.0.2.77"
    for n in range(200):
        procedure = 7 + n % 3  # 7, 8 or 9: in category 2, 3 or 1
        site.view(procedure, f"{BROWSER} Phone/{n}", nat)
    site.settle()
    lists: dict[int, set[str]] = {7: set(), 8: set(), 9: set()}
    for n in range(200):
        mine = site.top(f"{BROWSER} Phone/{n}", nat)
        assert mine != newcomer, n
        lists[7 + n % 3].add(json.dumps(mine))
    # Each person's list follows what they viewed: the same history, the same list;
    # another history, another list (nobody is handed someone else's profile).
    assert [len(found) for found in lists.values()] == [1, 1, 1]
    assert len(set.union(*lists.values())) == 3
