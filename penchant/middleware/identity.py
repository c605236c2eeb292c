"""The pieces of identity that speak HTTP: client address, bots, cookies, signatures.

Built once at start-up (networks parsed, regexes compiled, signers made); each
request only looks things up.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode, base64_encode
from itsdangerous.timed import TimestampSigner

from penchant.engine.consent import ConsentState

__all__ = [
    "CONSENT_COOKIE",
    "OPT_OUT_COOKIE",
    "PAGE_TOKEN_MAX_AGE",
    "ClientAddress",
    "CrawlerList",
    "Signers",
    "UrlPatterns",
    "cookie_header",
    "crawler_cache",
    "crawler_detector",
    "is_bot",
    "same_origin",
]

logger = logging.getLogger("personalization")

OPT_OUT_COOKIE = "penchant_optout"
CONSENT_COOKIE = "penchant_consent"
#: A page left open this long still sends its events (a beacon token's life).
PAGE_TOKEN_MAX_AGE = 2 * 86_400
#: User-Agents longer than this are cut before the crawler check (bounded regex work).
_UA_CHECK_LIMIT = 512


def cookie_header(
    name: str,
    value: str,
    *,
    secure: bool,
    max_age: int,
    http_only: bool = True,
) -> str:
    """A ``Set-Cookie`` value: ``__Host-`` prefixed (and Secure) over HTTPS, SameSite=Lax."""
    full = f"__Host-{name}" if secure else name
    parts = [f"{full}={value}", "Path=/", f"Max-Age={max_age}", "SameSite=Lax"]
    if max_age <= 0:
        parts.append("Expires=Thu, 01 Jan 1970 00:00:00 GMT")
    if http_only:
        parts.append("HttpOnly")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def cookie_names(name: str) -> tuple[str, str]:
    """Both names a cookie may carry (with and without the ``__Host-`` prefix)."""
    return (f"__Host-{name}", name)


# ---------------------------------------------------------------- client IP
class ClientAddress:
    """The client's IP: the socket peer, unless the peer is a trusted proxy.

    Only then is ``X-Forwarded-For`` read, right to left, skipping trusted hops:
    a visitor can write anything on the left of that header, never on the right.
    """

    def __init__(self, trusted: Sequence[str]) -> None:
        self._networks = tuple(ipaddress.ip_network(t.strip(), strict=False) for t in trusted)

    def trusts(self, address: str) -> bool:
        """Whether ``address`` is one of the configured trusted proxies."""
        return bool(self._networks) and self._trusted(address)

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return False
        return any(ip in network for network in self._networks)

    def __call__(self, peer: str, forwarded_for: str | None) -> str:
        if not self._networks or not forwarded_for or not self._trusted(peer):
            return peer
        candidate = peer
        for hop in reversed(forwarded_for.split(",")):
            hop = hop.strip()
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                # A hop that is not an address ends the part of the chain we can believe.
                return candidate
            if not self._trusted(hop):
                return hop
            candidate = hop
        return candidate


# --------------------------------------------------------------------- bots
#: Syntax RE2 does not have (lookaround): patterns using it are searched with ``re``.
_NOT_RE2 = ("(?=", "(?!", "(?<=", "(?<!")


class CrawlerList:
    """crawlerdetect's maintained lists, with its rule, searched by RE2.

    crawlerdetect removes the usual browser tokens (its exclusions) and then
    searches what is left for any of about 1,500 crawler patterns, as one
    alternation. Python's ``re`` tries every alternative at every position:
    150 to 500 us for an ordinary browser's User-Agent, paid for each agent the
    first time it is seen. RE2 (google-re2) searches the same alternation as one
    automaton, in a few microseconds. The exclusions stay with ``re`` (quick,
    and the same ``sub`` as crawlerdetect's); the few patterns RE2 cannot read
    (lookaround) are searched with ``re`` too. The answers are crawlerdetect's:
    tests compare the two over every pattern of the list.
    """

    def __init__(self, crawlers: Sequence[str], exclusions: Sequence[str]) -> None:
        import re2

        options = re2.Options()
        options.case_sensitive = False
        other = [p for p in crawlers if any(s in p for s in _NOT_RE2)]
        plain = [p for p in crawlers if p not in other]
        self._exclusions = re.compile(f"({'|'.join(exclusions)})", re.IGNORECASE)
        self._crawlers = re2.compile(f"(?:{'|'.join(plain)})", options=options)
        self._others = re.compile(f"({'|'.join(other)})", re.IGNORECASE) if other else None

    def __call__(self, user_agent: str) -> bool:
        agent = self._exclusions.sub("", user_agent.strip())
        if not agent:
            return False
        if self._crawlers.search(agent) is not None:
            return True
        return self._others is not None and self._others.search(agent) is not None


@lru_cache(maxsize=1)
def crawler_detector() -> Callable[[str], bool]:
    """The crawler check: :class:`CrawlerList`, or crawlerdetect's own without RE2.

    Built once and kept (``crawler_detector.cache_clear()`` builds it again).
    """
    try:
        from crawlerdetect.providers.crawlers import data as crawlers
        from crawlerdetect.providers.exclusions import data as exclusions

        return CrawlerList(crawlers, exclusions)
    except ImportError:  # penchant[re2] not installed (or an older list layout)
        logger.info(
            "google-re2 not installed: crawlerdetect's own check runs (pip install penchant[re2])"
        )
    except Exception:
        logger.warning("crawler list not readable by RE2: crawlerdetect's slower check runs")
    from crawlerdetect import CrawlerDetect

    return CrawlerDetect().is_crawler  # type: ignore[no-any-return]


def is_bot(user_agent: str) -> bool:
    """A known crawler (crawlerdetect's maintained list), cached per User-Agent.

    Only the first 512 characters are read, and only they are the cache's key:
    a client sending huge agents cannot make the cache hold more.
    """
    return _is_bot(user_agent[:_UA_CHECK_LIMIT])


@lru_cache(maxsize=4096)
def _is_bot(user_agent: str) -> bool:
    if not user_agent.strip():
        return False
    return bool(crawler_detector()(user_agent))


#: The cache of :func:`is_bot` (``cache_info()``, ``cache_clear()``), keyed by cut agents.
crawler_cache = _is_bot


# ------------------------------------------------------------- same origin
def same_origin(
    sec_fetch_site: str | None,
    origin: str | None,
    host: str,
    allowed_hosts: Sequence[str],
    *,
    secure: bool = False,
) -> bool:
    """Whether a state-changing request comes from the site's own pages.

    ``Sec-Fetch-Site`` when the browser sends it, else ``Origin`` against the
    Host header and ``allowed_hosts``; on a ``secure`` (HTTPS) request the
    Origin must be ``https://`` too (a plain-HTTP page of the same host is
    another origin, and one a network attacker can write). Neither header (a
    non-browser client): allowed, since the page token still has to verify.
    """
    site = (sec_fetch_site or "").strip().lower()
    if site in ("same-origin", "none"):
        return True
    if origin and origin != "null":
        parts = urlsplit(origin)
        if secure and parts.scheme != "https":
            return False
        origin_host = parts.netloc.lower()
        # Host may carry the scheme's default port where Origin leaves it out.
        default = ":443" if parts.scheme == "https" else ":80"
        if origin_host.removesuffix(default) == host.lower().removesuffix(default):
            return True
        return origin_host in allowed_hosts or origin_host.rsplit(":", 1)[0] in allowed_hosts
    # No Origin to compare: a browser that says the request is cross-site is believed.
    return not site and origin is None


# -------------------------------------------------------------- signatures
def _canonical(value: str) -> bool:
    """Each dot-separated part is canonical base64: a changed character always counts.

    (The last character of unpadded base64 carries unused bits; without this
    check, changing only those would leave a signature that still verifies.)
    """
    try:
        return all(base64_encode(base64_decode(part)).decode() == part for part in value.split("."))
    except Exception:
        return False


def _timestamp(now: datetime) -> int:
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return int(now.timestamp())


class Signers:
    """Signed page tokens and consent cookies, with key rotation.

    ``secrets`` are newest first: the newest signs, every one verifies. Expiry is
    measured with the service's clock, so tests freeze time instead of sleeping.
    """

    def __init__(self, secrets: Sequence[bytes], clock: Callable[[], datetime]) -> None:
        class ClockSigner(TimestampSigner):
            def get_timestamp(self) -> int:
                return _timestamp(clock())

        # itsdangerous signs with the last key of the list and verifies with all.
        keys = list(reversed(secrets))
        kwargs = {"digest_method": hashlib.sha256}
        self._page = URLSafeTimedSerializer(
            keys, salt="penchant.page", signer=ClockSigner, signer_kwargs=kwargs
        )
        self._consent = URLSafeTimedSerializer(
            keys, salt="penchant.consent", signer=ClockSigner, signer_kwargs=kwargs
        )

    @staticmethod
    def visitor_tag(user_id: str | None) -> str:
        """What a page token binds: a short hash of the visitor, never the id itself."""
        if user_id is None:
            return "-"
        return hashlib.sha256(b"page|" + user_id.encode()).hexdigest()[:12]

    def page_token(self, user_id: str | None) -> str:
        return str(self._page.dumps(self.visitor_tag(user_id)))

    def check_page_token(self, token: str | None, user_id: str | None) -> bool:
        if not token or not _canonical(token):
            return False
        try:
            tag = self._page.loads(token, max_age=PAGE_TOKEN_MAX_AGE)
        except BadSignature:
            return False
        return bool(tag == self.visitor_tag(user_id) and user_id is not None)

    def consent_value(self, visitor_id: str) -> str:
        return str(self._consent.dumps(visitor_id))

    def read_consent(self, value: str | None, max_age: int) -> tuple[ConsentState, str | None]:
        """``("valid", id)``, ``("absent", None)``, or ``("invalid", None)``.

        Invalid covers a tampered cookie and an expired one alike.
        """
        if not value:
            return "absent", None
        if not _canonical(value):
            return "invalid", None
        try:
            visitor_id = self._consent.loads(value, max_age=max_age)
        except SignatureExpired:
            return "invalid", None
        except BadSignature:
            return "invalid", None
        if not isinstance(visitor_id, str) or not visitor_id:
            return "invalid", None
        return "valid", visitor_id


# ------------------------------------------------------------ URL patterns
_PLACEHOLDER = re.compile(r"\{id\}")


class UrlPatterns:
    """``"/procedures/{id}" -> "procedure"``: paths of the site mapped to targets.

    Compiled once into one alternation; a path that matches nothing is a page.
    """

    def __init__(self, patterns: Sequence[tuple[str, str]]) -> None:
        self._targets: list[str] = []
        parts: list[str] = []
        prefixes: list[str] = []
        for index, (pattern, target) in enumerate(patterns):
            if pattern.count("{id}") != 1:
                raise ValueError(f"url_patterns: {pattern!r} must contain {{id}} exactly once")
            prefixes.append(pattern.split("{id}", 1)[0])
            pieces = [re.escape(piece) for piece in _PLACEHOLDER.split(pattern)]
            body = f"(?P<p{index}>[0-9]{{1,10}})".join(pieces).rstrip("/")
            parts.append(f"(?:{body}/?)")
            self._targets.append(target)
        self._regex = re.compile("|".join(parts)) if parts else None
        #: What every matching path starts with: ``path.startswith(prefixes)`` is
        #: False for a path no pattern can match (a test cheaper than the match).
        self.prefixes = tuple(prefixes)

    def match(self, path: str) -> tuple[str, int] | None:
        if self._regex is None:
            return None
        found = self._regex.fullmatch(path)
        if found is None or found.lastgroup is None:
            return None
        index = int(found.lastgroup[1:])
        value = int(found.group(found.lastgroup))
        if value > 2**31 - 1:
            return None
        return self._targets[index], value


Mode = Literal["opt-out", "opt-in"]
