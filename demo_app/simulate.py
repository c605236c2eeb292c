"""A simulated crowd: plausible browsing sessions replayed through the real HTTP endpoints.

Each visitor has its own browser (User-Agent, language and, when the server
trusts the loopback proxy, a forwarded address), favours one or two
categories, and browses the way the pages invite it to: it clicks the cards of
the categories it likes, so personalized pages earn more clicks than popular
ones. Some search, some ask for a consultation. Events the tracker would send
(clicks, searches, form submissions) are posted to the beacon with the page's
token; page views are recorded by the server itself.

Loopback only, bounded in visitors and in time.
"""

from __future__ import annotations

import html
import ipaddress
import json
import random
import re
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from demo_app.app import ABOUT_PATH, DEMO_NAME
from demo_app.catalog import CATEGORIES, build_catalog

__all__ = ["MAX_VISITORS", "SimulationResult", "answers_as_demo", "crowd", "is_loopback"]

MAX_VISITORS = 10_000

_TAG = re.compile(r"<(a|script)\s[^>]*>", re.I)
_ATTR = re.compile(r'([\w:-]+)(?:="([^"]*)")?')

# Categories from most to least sought after, so that popular content has a shape.
_DEMAND = (1, 2, 8, 3, 9, 7, 5, 4, 11, 12, 6, 10)
_LANGUAGES = (
    "en-US,en;q=0.9",
    "en-GB,en;q=0.8",
    "es-US,es;q=0.9,en;q=0.7",
    "fr-FR,fr;q=0.9,en;q=0.6",
    "de-DE,de;q=0.9,en;q=0.5",
    "pt-BR,pt;q=0.9,en;q=0.6",
    "zh-CN,zh;q=0.9,en;q=0.5",
)


def _user_agent(rng: random.Random, n: int) -> str:
    """A plausible browser string, unique per visitor through its build number."""
    build = 5000 + n
    platform = rng.choice(
        (
            "Windows NT 10.0; Win64; x64",
            "Macintosh; Intel Mac OS X 10_15_7",
            "X11; Linux x86_64",
            "Linux; Android 14; Pixel 8",
            "iPhone; CPU iPhone OS 17_4 like Mac OS X",
        )
    )
    major = rng.randint(118, 126)
    if "iPhone" in platform:
        return (
            f"Mozilla/5.0 ({platform}) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            f"Version/17.4 Mobile/15E{build} Safari/604.1"
        )
    if rng.random() < 0.25 and "Android" not in platform:
        return f"Mozilla/5.0 ({platform}; rv:{major}.0) Gecko/20100101 Firefox/{major}.0.{build}"
    mobile = " Mobile" if "Android" in platform else ""
    return (
        f"Mozilla/5.0 ({platform}) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{major}.0.{build}.{n % 200}{mobile} Safari/537.36"
    )


def _address(n: int) -> str:
    """A distinct address per visitor in the benchmarking range 198.18.0.0/15."""
    return str(ipaddress.IPv4Address(int(ipaddress.IPv4Address("198.18.0.0")) + 1 + n))


def is_loopback(base_url: str) -> bool:
    host = urlsplit(base_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def answers_as_demo(base_url: str, *, timeout: float = 2.0) -> bool:
    """Whether the penchant demo is serving at ``base_url`` (asked of loopback only)."""
    if not is_loopback(base_url):
        return False
    try:
        response = httpx.get(base_url.rstrip("/") + ABOUT_PATH, timeout=timeout)
        about = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return False
    return isinstance(about, dict) and about.get("app") == DEMO_NAME


@dataclass(frozen=True, slots=True)
class _Card:
    target_type: str
    target_id: int
    url: str
    position: int | None
    list: str | None


@dataclass(frozen=True, slots=True)
class _Page:
    url: str
    cards: tuple[_Card, ...]
    token: str | None
    endpoint: str | None
    tracking: bool


def _parse(url: str, body: str) -> _Page:
    cards: list[_Card] = []
    token = endpoint = None
    tracking = False
    for match in _TAG.finditer(body):
        attrs = {k.lower(): html.unescape(v or "") for k, v in _ATTR.findall(match.group(0))}
        if match.group(1).lower() == "script":
            if "data-endpoint" in attrs:
                endpoint = attrs["data-endpoint"]
                token = attrs.get("data-token") or None
                tracking = attrs.get("data-off") != "1"
            continue
        kind, raw_id, href = (
            attrs.get("data-penchant-type"),
            attrs.get("data-penchant-id"),
            attrs.get("href"),
        )
        if not kind or not raw_id or not raw_id.isdigit() or not href:
            continue
        rec = attrs.get("data-penchant-source") == "rec"
        position = attrs.get("data-penchant-position", "")
        cards.append(
            _Card(
                kind,
                int(raw_id),
                href,
                int(position) if rec and position.isdigit() else None,
                attrs.get("data-penchant-list") if rec else None,
            )
        )
    return _Page(url, tuple(cards), token, endpoint, tracking)


@dataclass
class SimulationResult:
    """What a run did, counted on the client side."""

    visitors: int = 0
    pages: int = 0
    events_sent: int = 0
    events_accepted: int = 0
    searches: int = 0
    clicks: int = 0
    recommended_clicks: int = 0
    forms: int = 0
    errors: int = 0
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, float]:
        return {
            name: getattr(self, name)
            for name in (
                "visitors",
                "pages",
                "events_sent",
                "events_accepted",
                "searches",
                "clicks",
                "recommended_clicks",
                "forms",
                "errors",
                "seconds",
            )
        }


class _Visitor:
    """One simulated browser session."""

    def __init__(
        self,
        base_url: str,
        n: int,
        rng: random.Random,
        result: SimulationResult,
        *,
        forwarded_for: bool,
        category_of: dict[tuple[str, int], tuple[int, ...]],
        deadline: float,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.rng = rng
        self.result = result
        self.category_of = category_of
        self.deadline = deadline
        weights = [1.0 / (rank + 1) ** 0.6 for rank in range(len(_DEMAND))]
        first = rng.choices(_DEMAND, weights)[0]
        self.favourites = {first}
        if rng.random() < 0.4:
            self.favourites.add(rng.choices(_DEMAND, weights)[0])
        self.headers = {
            "User-Agent": _user_agent(rng, n),
            "Accept-Language": rng.choice(_LANGUAGES),
        }
        if forwarded_for:
            self.headers["X-Forwarded-For"] = _address(n)
        self.viewed_procedure: int | None = None
        self.found_through_recommendation = 0

    # ------------------------------------------------------------- requests
    def get(self, client: httpx.Client, path: str) -> _Page | None:
        url = self.base + path
        response = client.get(
            url,
            headers={
                "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8",
                "Sec-Fetch-Mode": "navigate",
                "Sec-Fetch-Dest": "document",
            },
        )
        self.result.add(pages=1)
        if response.status_code >= 400:
            self.result.add(errors=1)
            return None
        return _parse(str(response.url), response.text)

    def beacon(self, client: httpx.Client, page: _Page, events: Sequence[dict[str, Any]]) -> None:
        if not page.tracking or not page.endpoint:
            return
        body: dict[str, Any] = {"events": list(events)}
        if page.token:
            body["token"] = page.token
        response = client.post(
            self.base + page.endpoint,
            content=json.dumps(body),
            headers={
                "Content-Type": "text/plain;charset=UTF-8",
                "Origin": self.base,
                "Referer": page.url,
                "Sec-Fetch-Site": "same-origin",
                "Sec-Fetch-Mode": "no-cors",
            },
        )
        self.result.add(events_sent=len(events))
        if response.status_code == 202:
            accepted = response.json().get("accepted", 0)
            self.result.add(events_accepted=int(accepted) if isinstance(accepted, int) else 0)
        else:
            self.result.add(errors=1)

    @staticmethod
    def event(
        interaction: str,
        target_type: str,
        target_id: int | None,
        page: _Page,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {
            "interaction_type": interaction,
            "target_type": target_type,
            "target_id": target_id,
            "event_id": uuid.uuid4().hex,
            "path": urlsplit(page.url).path,
            "metadata": metadata or {},
        }

    # -------------------------------------------------------------- choices
    def likes(self, card: _Card) -> bool:
        return bool(
            self.favourites & set(self.category_of.get((card.target_type, card.target_id), ()))
        )

    def click(self, client: httpx.Client, page: _Page, card: _Card) -> _Page | None:
        metadata: dict[str, Any] | None = None
        if card.position is not None:
            metadata = {"source": "rec", "position": card.position, "list": card.list or ""}
            self.result.add(recommended_clicks=1)
            if self.likes(card):
                self.found_through_recommendation += 1
        self.beacon(
            client, page, [self.event("click", card.target_type, card.target_id, page, metadata)]
        )
        self.result.add(clicks=1)
        nxt = self.get(client, card.url)
        if card.target_type == "procedure" and nxt is not None and self.likes(card):
            self.viewed_procedure = card.target_id
        return nxt

    def search(self, client: httpx.Client, page: _Page) -> _Page | None:
        wanted = self.rng.choice(sorted(self.favourites))
        category = next(c for c in CATEGORIES if c.id == wanted)
        query = self.rng.choice(category.keywords)
        self.beacon(client, page, [self.event("search", "category", None, page, {"query": query})])
        self.result.add(searches=1)
        return self.get(client, f"/search?q={quote(query)}")

    def consult(self, client: httpx.Client, page: _Page) -> None:
        procedure = self.viewed_procedure
        assert procedure is not None
        self.beacon(
            client,
            page,
            [self.event("form_submit", "procedure", procedure, page, {"form": "consultation"})],
        )
        response = client.post(
            self.base + "/consultation",
            data={
                "procedure_id": str(procedure),
                "name": "Simulated visitor",
                "email": "visitor@example.invalid",
            },
            follow_redirects=True,
        )
        self.result.add(forms=1, pages=1, errors=int(response.status_code >= 400))

    def run(self) -> None:
        with httpx.Client(headers=self.headers, timeout=10.0, follow_redirects=True) as client:
            page = self.get(client, "/")
            steps = self.rng.randint(3, 10)
            for _ in range(steps):
                if page is None or time.monotonic() > self.deadline:
                    break
                liked = [c for c in page.cards if self.likes(c)]
                if not liked and self.rng.random() < 0.25:
                    break  # nothing here for them: some visitors simply leave
                roll = self.rng.random()
                if liked and roll < 0.6:
                    # Earlier cards are seen first: the top of a list gets more clicks.
                    weights = [1.0 / (1 + i) for i in range(len(liked))]
                    page = self.click(client, page, self.rng.choices(liked, weights)[0])
                elif roll < 0.7:
                    page = self.search(client, page)
                elif roll < 0.78 and page.cards:
                    page = self.click(client, page, self.rng.choice(page.cards))
                elif roll < 0.93:
                    # Back to the home page, which has changed if it is personalized.
                    page = self.get(client, "/")
                else:
                    cid = self.rng.choice(sorted(self.favourites))
                    page = self.get(client, f"/categories/{cid}")
            if page is not None and self.viewed_procedure is not None:
                # Visitors who found what they wanted (often through a recommendation) ask more.
                chance = 0.12 + 0.08 * min(self.found_through_recommendation, 3)
                if self.rng.random() < chance:
                    self.consult(client, page)
        self.result.add(visitors=1)


def crowd(
    base_url: str,
    *,
    visitors: int,
    seed: int | None = None,
    forwarded_for: bool = False,
    workers: int = 4,
    time_limit: float = 600.0,
) -> SimulationResult:
    """Replay ``visitors`` sessions against a running demo at ``base_url`` (loopback only)."""
    if not is_loopback(base_url):
        raise ValueError(f"the simulated crowd only visits loopback addresses, not {base_url!r}")
    if not 0 < visitors <= MAX_VISITORS:
        raise ValueError(f"visitors must be between 1 and {MAX_VISITORS}")
    catalog = build_catalog()
    category_of: dict[tuple[str, int], tuple[int, ...]] = {
        ("category", c.id): (c.id,) for c in catalog.categories
    }
    for kind in ("procedure", "doctor", "package"):
        for item in catalog.items(kind):
            category_of[(kind, item.id)] = item.category_ids
    master = random.Random(seed)
    seeds = [master.getrandbits(64) for _ in range(visitors)]
    offset = master.randrange(0, 1 << 16)  # distinct visitors across runs with different seeds
    result = SimulationResult()
    started = time.monotonic()
    deadline = started + time_limit

    def one(n: int) -> None:
        if time.monotonic() > deadline:
            return
        try:
            _Visitor(
                base_url,
                offset + n,
                random.Random(seeds[n]),
                result,
                forwarded_for=forwarded_for,
                category_of=category_of,
                deadline=deadline,
            ).run()
        except httpx.HTTPError:
            result.add(errors=1)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(one, range(visitors)))
    result.seconds = round(time.monotonic() - started, 2)
    return result
