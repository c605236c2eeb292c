"""The identity budget: how many visitors one network adds to what everyone is shown.

A new User-Agent is a new fingerprint, so one client can pose as any number of
visitors. Every visitor is still tracked and served (their own history, their
own recommendations); what is limited is who counts in the shared counts:
popular content and co-viewed items.

A network is an IPv4 address, and each of an IPv6 address's /64, /56 and /48.
The first time a visitor is seen on a day, their verdict is made: they count
(``shared``) only while each of their networks is within its budget of new
identities per hour (``network_identity_budget``) and within the identities it
may add to the shared counts per day (``network_daily_identities``). The
verdict holds for that visitor for the day, in every worker.

Network keys are not stored addresses in disguise: each is a keyed hash with a
salt made for its day, kept only in the limiter's store (Redis or this
process's memory) and destroyed 48 hours after it was made. Nothing of them
reaches the database: a visitor who does not count is stored as one row
(visitor id, day) in ``penchant_unshared``, and a pair of co-viewed items
stores how many networks it was seen from (``networks``), never which.

All of this runs on the writer's thread (page views) or the beacon's request
(which already asks the limiter); the page's request does none of it. A store
that fails counts the visitor (fails open) and logs once, like the beacon limits.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

from penchant.middleware.ratelimit import CounterBackend, RateLimiter

__all__ = ["SALT_LIFE", "NetworkBudget", "Verdict", "networks_of"]

logger = logging.getLogger("personalization")

DAY = 86_400.0
HOUR = 3_600.0
#: Seconds a day's salt lives from when it is made: destroyed after 48 hours.
SALT_LIFE = 2 * DAY
#: Verdicts remembered per process (visitor id -> verdict of the day): the writer
#: reads them for the events it is about to store, so the queue's size is enough.
VERDICTS = 10_000
_IPV6_PREFIXES = (64, 56, 48)


def networks_of(ip: str) -> tuple[str, ...]:
    """The networks of an address, narrowest first: an IPv4 address alone, an IPv6
    address's /64, /56 and /48 (an IPv4-mapped IPv6 address is its IPv4 address).
    Anything else (a Unix socket, a name) is a network of its own."""
    try:
        address = ipaddress.ip_address(ip.strip("[]"))
    except ValueError:
        return (f"?:{ip}",)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if isinstance(address, ipaddress.IPv4Address):
        return (f"4:{address}",)
    value = int(address)
    return tuple(f"6/{bits}:{value >> (128 - bits):x}" for bits in _IPV6_PREFIXES)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a visitor counts in the shared counts today, and their widest
    network's salted key (what a co-viewed pair counts networks by)."""

    shared: bool
    network: str


class NetworkBudget:
    """Verdicts per visitor and day over one limiter store (see the module's doc).

    ``per_hour``: new identities per network per hour that may count;
    ``per_day``: identities per network per day that count. 0 turns one off.
    """

    def __init__(self, backend: CounterBackend, *, per_hour: int, per_day: int) -> None:
        if per_hour < 0 or per_day < 0:
            raise ValueError("network budgets: must not be negative")
        self.backend = backend
        self.per_hour = per_hour
        self.per_day = per_day
        self._hourly = RateLimiter({"network": per_hour}, window=HOUR, backend=backend)
        self._daily = RateLimiter({"network_day": per_day}, window=DAY, backend=backend)
        self._salts: dict[int, bytes] = {}
        self._verdicts: OrderedDict[str, tuple[int, Verdict]] = OrderedDict()
        self._lock = threading.Lock()
        self._failing = False

    @property
    def enabled(self) -> bool:
        return self.per_hour > 0 or self.per_day > 0

    def judge(self, user_id: str, ip: str, at: datetime) -> Verdict:
        """The visitor's verdict for the day of ``at`` (naive UTC); made on first sight."""
        moment = at.replace(tzinfo=UTC).timestamp()
        day = int(moment // DAY)
        cached = self._verdicts.get(user_id)
        if cached is not None and cached[0] == day:
            return cached[1]
        try:
            salt = self._salt(day)
            keys = [_digest(salt, network) for network in networks_of(ip)]
            ident = _digest(salt, "visitor\x00" + user_id)
            if self.backend.remember(f"seen:{ident}", SALT_LIFE):
                shared = self._admit(keys, moment)
                if not shared:
                    self.backend.remember(f"unshared:{ident}", SALT_LIFE)
            else:  # judged already today, maybe by another worker
                shared = not self.backend.marked(f"unshared:{ident}")
        except Exception as exc:
            return self._failed_open(exc, user_id)
        if self._failing:
            self._failing = False
            logger.warning("identity budget store is back")
        verdict = Verdict(shared, keys[-1])
        with self._lock:
            self._verdicts[user_id] = (day, verdict)
            self._verdicts.move_to_end(user_id)
            while len(self._verdicts) > VERDICTS:
                self._verdicts.popitem(last=False)
        return verdict

    def verdict_of(self, user_id: str) -> Verdict | None:
        """The verdict this process made (or learned) last for the visitor, if any."""
        cached = self._verdicts.get(user_id)
        return None if cached is None else cached[1]

    def first_pair_from(self, network: str, pair: str, at: datetime) -> bool:
        """True the first time today a visitor from ``network`` viewed ``pair``
        (in any worker): the pair has one more network behind it."""
        day = int(at.replace(tzinfo=UTC).timestamp() // DAY)
        try:
            key = _digest(self._salt(day), f"{network}\x00{pair}")
            return self.backend.remember(f"pair:{key}", SALT_LIFE)
        except Exception as exc:
            self._failed_open(exc, None)
            return False  # no network is counted that cannot be told apart

    def _salt(self, day: int) -> bytes:
        salt = self._salts.get(day)
        if salt is None:
            # Made by the first worker that needs it; the store destroys it 48 h later,
            # and this process forgets it once the day after has begun.
            salt = bytes.fromhex(self.backend.token(f"salt:{day}", SALT_LIFE))
            with self._lock:
                self._salts = {d: s for d, s in self._salts.items() if d >= day - 1}
                self._salts[day] = salt
        return salt

    def _admit(self, keys: list[str], moment: float) -> bool:
        # A new identity first takes its place in each network's hourly budget; only
        # within all of them does it take one of the day's places in the shared counts.
        for key in keys:
            if not self._hourly.allow(key, now=moment, kind="network"):
                return False
        return all(self._daily.allow(key, now=moment, kind="network_day") for key in keys)

    def _failed_open(self, exc: Exception, user_id: str | None) -> Verdict:
        first, self._failing = not self._failing, True
        log = logger.warning if first else logger.debug
        log("identity budget store failed (%s: %s); visitors counted", type(exc).__name__, exc)
        return Verdict(True, "visitor:" + (user_id or ""))


def _digest(salt: bytes, value: str) -> str:
    return hashlib.blake2b(
        value.encode("utf-8", "surrogatepass"), key=salt[:64], digest_size=16
    ).hexdigest()
