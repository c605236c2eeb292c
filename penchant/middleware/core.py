"""The sans-I/O request core shared by the ASGI and WSGI adapters.

The core decides, from :class:`~penchant.middleware.facts.RequestFacts` alone,
who the visitor is and whether they may be tracked (:meth:`Core.identify`),
whether a response is a page view to record (:meth:`Core.on_response_start`), and
answers penchant's own endpoints with plain :class:`~penchant.middleware.facts.Response`
values. The adapters only translate; no behaviour lives in one of them only.

Nothing here may hurt the host application: every failure is logged on the
``personalization`` logger, counted, and turned into "do not track".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from penchant.engine.consent import CONSENT_MAX_AGE, ConsentState, Decision, decide
from penchant.engine.events import TARGET_TYPES, Interaction, new_event_id
from penchant.engine.experiments import Variant
from penchant.engine.fingerprint import (
    FingerprintCache,
    fingerprint,
    hash_identifier,
    legacy_fingerprint,
    truncate_ip,
)
from penchant.engine.privacy import scrub
from penchant.engine.validation import MAX_PATH, RESERVED_METADATA, EventInput, storable_text
from penchant.middleware.backoff import Backoff
from penchant.middleware.facts import (
    HEADER_KEY_CHARS,
    RequestFacts,
    Response,
    bounded_key,
    json_response,
    parse_cookies,
)
from penchant.middleware.identity import (
    CONSENT_COOKIE,
    OPT_OUT_COOKIE,
    ClientAddress,
    Signers,
    UrlPatterns,
    cookie_header,
    cookie_names,
    is_bot,
)
from penchant.middleware.networks import NetworkBudget
from penchant.middleware.personalization import Personalization
from penchant.middleware.ratelimit import RateLimiter, backend_for
from penchant.service import NEIGHBOURS_PER_ITEM, utcnow

if TYPE_CHECKING:
    from penchant.service import Penchant

__all__ = ["Core", "Endpoint", "Visitor", "new_event_id", "stored_path", "stored_paths"]

logger = logging.getLogger("personalization")

_OPT_OUT_NAMES = cookie_names(OPT_OUT_COOKIE)
_CONSENT_NAMES = cookie_names(CONSENT_COOKIE)
_COOKIE_NAMES = (*_OPT_OUT_NAMES, *_CONSENT_NAMES)
# Keys a client may not set in metadata: the server derives them.
_RESERVED = RESERVED_METADATA
#: Seconds between retention runs of one process, and before the first one.
RETENTION_INTERVAL = 3600.0
RETENTION_FIRST_DELAY = 60.0
#: Fingerprints remembered per (User-Agent, IP, Accept-Language) in one process.
FINGERPRINT_CACHE = 8192
#: Stored forms of page paths remembered in one process (scrubbing one costs microseconds).
PATH_CACHE = 4096
#: After the secret could not be read (database down), do not ask again for this long.
SECRET_RETRY = 30.0

Handler = Callable[["Core", RequestFacts, bytes], Response]
# Fetch metadata of a top-level navigation (None: a client too old to send it).
_DOCUMENT = (None, "document")
_NAVIGATE = (None, "navigate")
# Navigations that need no click to count: from the site's own pages, or typed.
_OWN_SITE = (None, "same-origin", "none")
# What a response that used the visitor carries: no shared cache keeps it, and a
# browser's cache asks again when penchant's cookies (opt-out, consent) change.
_PRIVATE = (("Cache-Control", "private"), ("Vary", "Cookie"))
# Seconds since the epoch: a page view's time, made a datetime off the request.
_wall_clock = time.time


class Unavailable(RuntimeError):
    """The secret (kept in the database when not configured) cannot be read right now."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One of penchant's own routes: its handler and what the adapter must provide."""

    name: str
    handler: Handler
    methods: frozenset[str] = frozenset({"GET", "HEAD"})
    needs_body: bool = False
    # Handlers that touch the database run off the event loop in the ASGI adapter.
    blocking: bool = True


#: Most characters of User-Agent, Accept-Language and path a waiting page view
#: keeps as they came (see :meth:`Core.on_response_start`): longer ones are cut.
_HANDED_OVER_CHARS = 2 * HEADER_KEY_CHARS + MAX_PATH


class Visitor:
    """Who is asking, and whether they may be tracked.

    ``user_id`` is None whenever tracking is not allowed: nothing per-visitor is
    derived then. ``identity`` says what the id is ("fingerprint" or "cookie").
    ``cookies`` are Set-Cookie values the response must carry (clearing a
    consent cookie that no longer verifies).
    """

    __slots__ = (
        "_core",
        "_session_id",
        "_variant",
        "consent",
        "cookies",
        "decision",
        "identity",
        "user_id",
    )

    def __init__(
        self,
        core: Core,
        decision: Decision,
        user_id: str | None = None,
        identity: str | None = None,
        consent: ConsentState = "absent",
        cookies: tuple[str, ...] = (),
    ) -> None:
        self._core = core
        self.decision = decision
        self.user_id = user_id
        self.identity = identity
        self.consent: ConsentState = consent
        self.cookies = cookies
        self._session_id: str | None = None
        self._variant: Variant | None = None

    @property
    def tracking_allowed(self) -> bool:
        return self.decision.allowed and self.user_id is not None

    @property
    def reason(self) -> str:
        return self.decision.reason

    @property
    def session_id(self) -> str | None:
        """The visitor's current session (derived on first use: it moves the session clock)."""
        if self._session_id is None and self.user_id is not None:
            self._session_id = self._core.penchant.session_id(self.user_id)
        return self._session_id

    def session_at(self, now: datetime) -> str | None:
        """:attr:`session_id`, derived (on first use) at ``now``: the request's clock reading."""
        if self._session_id is None and self.user_id is not None:
            self._session_id = self._core.penchant.session_id(self.user_id, now)
        return self._session_id

    @property
    def variant(self) -> Variant:
        if self._variant is None:
            self._variant = self._core.penchant.variant(self.user_id)
        return self._variant


class Core:
    """Everything the adapters share; built once per wrapped application."""

    def __init__(self, penchant: Penchant, *, monotonic: Callable[[], float] | None = None) -> None:
        from penchant.middleware import endpoints

        s = penchant.settings
        self.penchant = penchant
        self.settings = s
        self.prefix = s.prefix
        self._prefix_slash = s.prefix + "/"
        for _, target in s.url_patterns:
            if target not in TARGET_TYPES or target == "page":
                raise ValueError(f"url_patterns: unknown target type {target!r}")
        self.patterns = UrlPatterns(s.url_patterns)
        # Read by every page view's hand-over: bound once.
        self._target_prefixes = self.patterns.prefixes
        self._defer_work = penchant.defer_work
        self.client_address = ClientAddress(s.trusted_proxies)
        self.static_prefixes = tuple(s.static_prefixes)
        # Never a page view: static files and penchant's own routes, in one test.
        self._not_pages = (*self.static_prefixes, self._prefix_slash)
        self._limiter: RateLimiter | None = None
        self._privacy_limiter: RateLimiter | None = None
        # One limiter store (Redis or memory) for the beacon limits and the identity budget.
        self._counters = backend_for(s)
        self.networks: NetworkBudget | None = None
        if s.network_identity_budget or s.network_daily_identities:
            shared = penchant.shared_counts
            if isinstance(shared, NetworkBudget):  # a second adapter over one service
                self.networks = shared
            else:
                self.networks = NetworkBudget(
                    self._counters,
                    per_hour=s.network_identity_budget,
                    per_day=s.network_daily_identities,
                )
                penchant.count_shared_by(self.networks)
        self.routes = endpoints.routes()
        # The service's timer (Penchant(timer=...)) unless told otherwise.
        self._monotonic = monotonic = monotonic or penchant.timer
        self._lock = threading.Lock()
        self._signers: Signers | None = None
        self._secret_retry_at = 0.0
        self._next_purge = monotonic() + RETENTION_FIRST_DELAY
        # Returning visitors skip the HMAC; kept in memory only, like the request itself.
        legacy = s.fingerprint == "md5"
        self.fingerprints = FingerprintCache(
            FINGERPRINT_CACHE, truncate=s.truncate_ip, legacy=legacy
        )
        self._legacy = legacy
        self._fingerprint_of: Callable[[str, str, str], str] | None = None
        # The decision of every request without penchant's cookies, Sec-GPC or DNT: made once.
        self._plain_decision = decide(
            mode=s.consent,
            enabled=s.enabled,
            honor_gpc=s.honor_gpc,
            honor_dnt=s.honor_dnt,
        )
        self.errors = 0
        self._private = s.cache_private
        # Operator credentials (dashboard, health): addresses that keep guessing wait.
        self.backoff = Backoff(timer=penchant.timer)
        self._proxy_warned = False

    # ------------------------------------------------------------ accounting
    def failed(self, what: str) -> None:
        """Log the current exception and count it; the request goes on untouched."""
        with self._lock:
            self.errors += 1
        logger.exception("penchant %s failed; the request continues without it", what)

    def count_dropped(self, reason: str, n: int = 1) -> None:
        """Events refused at the HTTP layer go into the writer's books as dropped."""
        if n <= 0:
            return
        try:
            self.penchant.writer.count_dropped(reason, n)
        except Exception:
            self.failed("accounting")

    def stats(self) -> dict[str, object]:
        out: dict[str, object] = {"middleware_errors": self.errors}
        if self._limiter is not None:
            out["rate_limits"] = self._limiter.stats().as_dict()
        return out

    # -------------------------------------------------------------- secrets
    def _guard(self) -> None:
        # (The clock is read only after a failure: most processes never have one.)
        if self._secret_retry_at and self._monotonic() < self._secret_retry_at:
            raise Unavailable("secret unavailable; retrying later")

    def secret(self) -> bytes:
        self._guard()
        try:
            return self.penchant.secret
        except Exception:
            self._secret_retry_at = self._monotonic() + SECRET_RETRY
            raise

    def signers(self) -> Signers:
        if self._signers is None:
            self._guard()
            try:
                secrets = self.penchant.secrets
            except Exception:
                self._secret_retry_at = self._monotonic() + SECRET_RETRY
                raise
            penchant = self.penchant
            # Late-bound: a clock swapped on the service (tests) is the one signatures use.
            self._signers = Signers(secrets, lambda: penchant.clock())
        return self._signers

    # ------------------------------------------------------------- identity
    def client_ip(self, facts: RequestFacts) -> str:
        return self._address(facts.peer, facts.forwarded_for)

    def _address(self, peer: str, forwarded_for: str | None) -> str:
        """The client's address; says once when a proxy's header is not believed."""
        if not forwarded_for:
            return peer
        if not self._proxy_warned and not self.client_address.trusts(peer):
            self._proxy_warned = True
            logger.warning(
                "X-Forwarded-For arrived from a peer that is not in trusted_proxies: it is "
                "ignored, and if the site runs behind a proxy every visitor shares the "
                "proxy's address (one fingerprint, one rate limit). List the proxy in "
                "PENCHANT_TRUSTED_PROXIES. (Said once per process.)"
            )
        return self.client_address(peer, forwarded_for)

    def _fingerprint(self, facts: RequestFacts) -> str:
        return self._fingerprint_parts(
            facts.user_agent, facts.peer, facts.forwarded_for, facts.accept_language
        )

    def _fingerprint_parts(
        self, user_agent: str, peer: str, forwarded_for: str | None, accept_language: str
    ) -> str:
        ip = self._address(peer, forwarded_for) if forwarded_for else peer
        # Huge values are cut and digested: the cache's keys stay small (one per value).
        if len(user_agent) > HEADER_KEY_CHARS:
            user_agent = bounded_key(user_agent)
        if len(accept_language) > HEADER_KEY_CHARS:
            accept_language = bounded_key(accept_language)
        lookup = self._fingerprint_of
        if lookup is None:
            # Bound once: a service's secret does not change after it is first read.
            key = b"" if self._legacy else self.secret()
            lookup = self._fingerprint_of = self.fingerprints.for_key(key)
        return lookup(user_agent, ip, accept_language)

    def _compute_fingerprint(self, user_agent: str, ip: str, accept_language: str) -> str:
        """The fingerprint of these inputs, uncached (``ip`` as stored: truncated or not)."""
        if self.settings.fingerprint == "md5":
            return legacy_fingerprint(user_agent, ip, accept_language)
        return fingerprint(user_agent, ip, accept_language, key=self.secret())

    def consent_of(
        self, facts: RequestFacts, cookies: dict[str, str] | None = None
    ) -> tuple[ConsentState, str | None]:
        """The consent cookie's state and, when it verifies, the random visitor id in it."""
        if cookies is None:
            cookies = parse_cookies(facts.cookie, _CONSENT_NAMES)
        raw = cookies.get(_CONSENT_NAMES[0])
        if not raw and not facts.secure:
            # Over HTTPS only the __Host- cookie: a sibling subdomain or a plain-HTTP
            # response can plant the unprefixed one (the opt-out cookie is read under
            # both names: a planted opt-out can only stop tracking)
            raw = cookies.get(_CONSENT_NAMES[1])
        if not raw:
            return "absent", None
        return self.signers().read_consent(raw, CONSENT_MAX_AGE)

    def identify(self, facts: RequestFacts) -> Visitor:
        """The visitor of a request: identity, tracking decision, variant (lazy)."""
        s = self.settings
        try:
            cookie = facts.cookie
            if self._plain(facts):
                # None of penchant's cookies (the host's own do not count) and no signal.
                decision = self._plain_decision
                if not decision.allowed:
                    return Visitor(self, decision)
                return Visitor(self, decision, self._fingerprint(facts), "fingerprint")
            cookies = parse_cookies(cookie, _COOKIE_NAMES)
            opted_out = _opt_out_flag(cookies)
            consent: ConsentState = "absent"
            consent_id: str | None = None
            if s.consent == "opt-in" and s.enabled:
                consent, consent_id = self.consent_of(facts, cookies)
            decision = decide(
                mode=s.consent,
                enabled=s.enabled,
                opted_out=opted_out,
                gpc=facts.sec_gpc,
                dnt=facts.dnt,
                honor_gpc=s.honor_gpc,
                honor_dnt=s.honor_dnt,
                consent=consent,
            )
            # A consent cookie that no longer verifies is cleared rather than resent forever.
            clear = tuple(self.clear_cookie(CONSENT_COOKIE, facts)) if consent == "invalid" else ()
            if not decision.allowed:
                return Visitor(self, decision, consent=consent, cookies=clear)
            if consent_id is not None:
                user_id = hash_identifier(consent_id, key=self.secret())
                return Visitor(self, decision, user_id, "cookie", consent, clear)
            return Visitor(self, decision, self._fingerprint(facts), "fingerprint", consent, clear)
        except Unavailable:
            return Visitor(self, Decision(False, "error"))
        except Exception:
            self.failed("identification")
            return Visitor(self, Decision(False, "error"))

    @staticmethod
    def _plain(facts: RequestFacts) -> bool:
        """No privacy signal and none of penchant's cookies: the decision is the site's."""
        cookie = facts.cookie
        return (
            facts.sec_gpc is None
            and facts.dnt is None
            and OPT_OUT_COOKIE not in cookie
            and CONSENT_COOKIE not in cookie
        )

    def identity_of(self, facts: RequestFacts) -> tuple[str, str] | None:
        """The stored identity of this request whatever its signals (for erasure and export).

        A fingerprint in opt-out mode, the consent cookie's id in opt-in mode (None
        without a valid one).
        """
        if self.settings.consent == "opt-in":
            state, consent_id = self.consent_of(facts)
            if state != "valid" or consent_id is None:
                return None
            return hash_identifier(consent_id, key=self.secret()), "cookie"
        return self._fingerprint(facts), "fingerprint"

    def identities_of(self, facts: RequestFacts) -> tuple[tuple[str, ...], str] | None:
        """:meth:`identity_of` under every accepted secret, newest first: after a key
        rotation the visitor's older rows are stored under the ids of older keys, and
        erasure and export must reach them too."""
        found = self.identity_of(facts)
        if found is None:
            return None
        user_id, kind = found
        older = self.penchant.secrets[1:]
        if not older or self._legacy:
            return (user_id,), kind
        if kind == "cookie":
            _, consent_id = self.consent_of(facts)
            assert consent_id is not None
            others = [hash_identifier(consent_id, key=key) for key in older]
        else:
            ip = self.client_ip(facts)
            if self.settings.truncate_ip:
                ip = truncate_ip(ip)
            others = [
                fingerprint(facts.user_agent, ip, facts.accept_language, key=key) for key in older
            ]
        return tuple(dict.fromkeys([user_id, *others])), kind

    def clear_cookie(self, name: str, facts: RequestFacts) -> list[str]:
        return [cookie_header(name, "", secure=facts.secure, max_age=0)]

    def set_cookie(self, name: str, value: str, facts: RequestFacts) -> str:
        return cookie_header(name, value, secure=facts.secure, max_age=CONSENT_MAX_AGE)

    # ------------------------------------------------------------ page views
    def own_path(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self._prefix_slash)

    def record_view(
        self,
        facts: RequestFacts,
        visitor: Visitor,
        event_id: str | None = None,
        now: datetime | None = None,
    ) -> bool:
        """Queue the page view (never blocks: the writer stores it in the background).

        What ``Penchant.track("view", ...)`` does, with the request's one clock
        reading (``now``, default the service's clock) for the session and the
        timestamp.
        """
        return self._record_path(facts.path, visitor, event_id, now)

    def _record_path(
        self, path: str, visitor: Visitor, event_id: str | None, now: datetime | None
    ) -> bool:
        user_id = visitor.user_id
        if user_id is None:
            return False
        matched = self.patterns.match(path)
        if self._monotonic() >= self._next_purge:
            self.maybe_purge()
        penchant = self.penchant
        if not self.settings.enabled:
            return False
        if now is None:
            now = penchant.clock()
        session_id = visitor.session_at(now)
        if matched is None:
            target_type, target_id = "page", None
            extra: dict[str, object] | None = {"path": stored_path(path)}
        else:
            (target_type, target_id), extra = matched, None
        try:
            return penchant.submit(
                Interaction(
                    user_id,
                    session_id or penchant.session_id(user_id, now),
                    "view",
                    target_type,
                    target_id,
                    now,
                    event_id or new_event_id(),
                    extra,
                )
            )
        except Exception:
            logger.exception("tracking failed")
            return False

    def on_response_start(
        self, personalization: Personalization, status: int, content_type: str
    ) -> list[tuple[str, str]]:
        """Called by both adapters when the host's response starts.

        Hands the page view, when it is one, to the writer's thread (see
        :meth:`record_deferred`); returns headers to add (cookies). Never raises.
        A request without penchant's cookies or a privacy signal needs nothing
        more of this thread: who the visitor is, and whether the agent is a
        crawler, is worked out there (:meth:`record_plain`). A page whose path
        may have a catalog target can move the visitor's profile, so the next
        read of a profile takes it first (read-your-writes); any other page
        waits for the writer.
        """
        try:
            if personalization._started:
                return []
            personalization._started = True
            facts = personalization.facts
            # Set when the host asked for the visitor (recommendations, script_tag()):
            # the response is then this visitor's, and no shared cache may keep it.
            visitor = personalization._visitor
            path = facts.path
            # A page view: a GET navigation answered 2xx with HTML, not static,
            # penchant's own or a prefetch (the crawler check comes later), and
            # the visitor's own: from the site itself or typed (Sec-Fetch-Site
            # same-origin or none), or from another site by the visitor's click
            # (Sec-Fetch-User: ?1), never another site's script walking them
            # through pages. Then, inline as _plain() is, since this runs for
            # every response: no privacy signal and none of penchant's cookies.
            if (
                facts.method == "GET"
                and 200 <= status < 300
                and (
                    content_type.startswith("text/html") or content_type[:9].lower() == "text/html"
                )
                and not path.startswith(self._not_pages)
                and path != self.prefix
                and ((facts.sec_purpose is None and facts.purpose is None) or not facts.prefetch)
                and facts.sec_fetch_dest in _DOCUMENT
                and facts.sec_fetch_mode in _NAVIGATE
                and (facts.sec_fetch_site in _OWN_SITE or facts.sec_fetch_user == "?1")
            ):
                cookie = facts.cookie
                if (
                    visitor is None
                    and facts.sec_gpc is None
                    and facts.dnt is None
                    and (
                        not cookie
                        or (OPT_OUT_COOKIE not in cookie and CONSENT_COOKIE not in cookie)
                    )
                ):
                    if self._plain_decision.allowed:
                        # Only the few values record_plain() needs wait, not the
                        # request's facts (a full hand-over holds thousands), and
                        # each of them bounded: a queue of waiting views holds
                        # no more for a client's 15 KB of headers.
                        agent, language = facts.user_agent, facts.accept_language
                        if len(agent) + len(language) + len(path) > _HANDED_OVER_CHARS:
                            # Cut as the fingerprint cuts them (the same visitor);
                            # a long agent is checked for a crawler now, whole.
                            if is_bot(agent):
                                return []
                            agent, language = bounded_key(agent), bounded_key(language)
                            path = path[:MAX_PATH]
                        clock = self.penchant.clock
                        self._defer_work(
                            (
                                self.record_plain,
                                agent,
                                facts.peer,
                                facts.forwarded_for,
                                language,
                                path,
                                _wall_clock() if clock is utcnow else clock(),
                                personalization._page_view_id,
                            ),
                            path.startswith(self._target_prefixes),
                        )
                    return []
                if not is_bot(facts.user_agent):
                    seen = personalization.visitor
                    if seen.tracking_allowed:
                        self.penchant.defer_work(
                            (
                                self.record_deferred,
                                seen,
                                facts.peer,
                                facts.forwarded_for,
                                path[:MAX_PATH],
                                personalization._page_view_id,
                                self.penchant.clock(),
                            ),
                            path.startswith(self.patterns.prefixes),
                        )
                    if visitor is None:  # worked out for the page view only
                        return [("Set-Cookie", value) for value in seen.cookies]
            if visitor is None:
                return []
            headers = [("Set-Cookie", value) for value in visitor.cookies]
            if self._private:
                headers += _PRIVATE
            return headers
        except Exception:
            self.failed("page view recording")
            return []

    def record_plain(
        self,
        user_agent: str,
        peer: str,
        forwarded_for: str | None,
        accept_language: str,
        path: str,
        at: datetime | float,
        page_view_id: str | None,
    ) -> bool:
        """:meth:`record_deferred` for what :meth:`on_response_start` kept: the
        decision is the site's (:meth:`identify` would make the same)."""
        try:
            if is_bot(user_agent):
                return False
            user_id = self._fingerprint_parts(user_agent, peer, forwarded_for, accept_language)
            visitor = Visitor(self, self._plain_decision, user_id, "fingerprint")
            if isinstance(at, float):
                at = datetime.fromtimestamp(at, UTC).replace(tzinfo=None)
            if self.networks is not None:
                ip = self.client_address(peer, forwarded_for) if forwarded_for else peer
                self.judge(user_id, ip, at)
            return self._record_path(path, visitor, page_view_id, at)
        except Unavailable:
            return False
        except Exception:
            self.failed("page view recording")
            return False

    def record_deferred(
        self,
        visitor: Visitor,
        peer: str,
        forwarded_for: str | None,
        path: str,
        page_view_id: str | None,
        at: datetime,
    ) -> bool:
        """The second half of :meth:`on_response_start`, on the writer's thread, for
        a visitor worked out on the request (the view asked, or the request carries
        penchant's cookies or a privacy signal): the event, timed when the
        response started. What waits is the visitor and a few bounded values,
        not the request."""
        try:
            if self.networks is not None and visitor.user_id is not None:
                self.judge(visitor.user_id, self._address(peer, forwarded_for), at)
            return self._record_path(path, visitor, page_view_id, at)
        except Exception:
            self.failed("page view recording")
            return False

    def submit_event(self, visitor: Visitor, event: EventInput) -> bool:
        """Queue one checked event (from the beacon or a view) for a tracked visitor."""
        if visitor.user_id is None:
            return False
        target_type, target_id = event.target_type, event.target_id
        extra: dict[str, object] = {
            key: scrub(value) if isinstance(value, str) else value
            for key, value in event.metadata.items()
            if key not in _RESERVED
        }
        if event.interaction_type == "view" and target_type == "page" and event.path:
            matched = self.patterns.match(event.path)
            if matched is not None:
                target_type, target_id = matched
        if target_type == "page" and event.path:
            extra["path"] = scrub(event.path)
        return self.penchant.track(
            event.interaction_type,
            target_type,
            target_id,
            user_id=visitor.user_id,
            session_id=visitor.session_id,
            extra_data=extra or None,
            event_id=event.event_id or new_event_id(),
        )

    def page_token(self, visitor: Visitor) -> str:
        try:
            return self.signers().page_token(visitor.user_id)
        except Exception:
            return ""

    @property
    def limiter(self) -> RateLimiter:
        """Per-visitor and per-IP limits, keyed with the site's secret (built on first use)."""
        if self._limiter is None:
            limiter = RateLimiter.from_settings(
                self.settings, secret=self.secret(), backend=self._counters
            )
            with self._lock:
                if self._limiter is None:
                    self._limiter = limiter
        return self._limiter

    @property
    def privacy_limiter(self) -> RateLimiter:
        """Erase, export and opt-out requests per client address (``privacy_rate_limit``
        a minute), shared through Redis like the beacon's limits (built on first use)."""
        if self._privacy_limiter is None:
            limiter = RateLimiter(
                {"privacy": self.settings.privacy_rate_limit},
                backend=self._counters,  # the one store of the beacon limits and budgets
                secret=self.secret(),
            )
            with self._lock:
                if self._privacy_limiter is None:
                    self._privacy_limiter = limiter
        return self._privacy_limiter

    def privacy_allowed(self, facts: RequestFacts) -> bool:
        """Whether this address may erase or export once more within the minute."""
        return self.privacy_limiter.allow(self.client_ip(facts), kind="privacy")

    def admitted(self, facts: RequestFacts, visitor: Visitor, n: int) -> int:
        """How many of a beacon's ``n`` events fit within the visitor's and the IP's
        limits; the visitor is judged by the identity budget too (:meth:`judge`)."""
        ip = self.client_ip(facts)
        if self.networks is not None and visitor.user_id is not None and n > 0:
            self.judge(visitor.user_id, ip, self.penchant.clock())
        return self.limiter.admit_beacon(visitor=visitor.user_id, ip=ip, cost=n)

    def judge(self, user_id: str, ip: str, at: datetime) -> None:
        """Whether this visitor counts in popular content and co-viewed items today
        (:class:`~penchant.middleware.networks.NetworkBudget`); never raises."""
        networks = self.networks
        if networks is None:
            return
        try:
            networks.judge(user_id, ip, at)
        except Exception:
            self.failed("identity budget")

    # ------------------------------------------------------------ retention
    def maybe_purge(self) -> bool:
        """Start a retention run in the background when one is due (at most hourly)."""
        now = self._monotonic()
        if now < self._next_purge:
            return False
        with self._lock:
            if now < self._next_purge:
                return False
            self._next_purge = now + RETENTION_INTERVAL
        threading.Thread(target=self.purge_expired, name="penchant-retention", daemon=True).start()
        return True

    def purge_expired(self) -> Any:
        """Delete what is older than the retention window; trim co-viewed items."""
        before = self.penchant.clock() - timedelta(days=self.settings.retention_days)
        try:
            result = self.penchant.store.purge(before)
            # co-occurrence grows with every pair seen: keep each item's best neighbours
            self.penchant.store.trim_neighbours(NEIGHBOURS_PER_ITEM)
        except Exception as exc:
            logger.warning("retention run failed: %s", exc)
            return None
        logger.debug("retention removed %s", result)
        return result

    # ------------------------------------------------------------ endpoints
    def endpoint(self, facts: RequestFacts) -> Endpoint | None:
        """Penchant's own route for this request, or None to pass it to the host app."""
        path = facts.path
        if not path.startswith(self._prefix_slash):
            return None
        sub = path[len(self.prefix) :]
        if sub.startswith("/recommendations/"):
            return self.routes.get("/recommendations/")
        return self.routes.get(sub)

    def handle(self, endpoint: Endpoint, facts: RequestFacts, body: bytes) -> Response:
        """Run one endpoint; a failure is a 500 from penchant, never an exception."""
        if facts.method not in endpoint.methods:
            allow = ", ".join(sorted(endpoint.methods))
            return json_response(405, {"error": f"method: use {allow}"}, headers=[("Allow", allow)])
        try:
            response = endpoint.handler(self, facts, body)
        except Exception:
            self.failed(f"endpoint {endpoint.name}")
            return json_response(500, {"error": "internal error"})
        if facts.method == "HEAD":
            return Response(response.status, response.headers, b"")
        return response

    def refuse_length(self, facts: RequestFacts) -> Response | None:
        """The answer to a body that must not be read: ``400`` for a ``Content-Length``
        that is not a number, ``413`` over ``max_body_bytes``; None to read it."""
        declared = facts.content_length
        if declared is None:
            return None
        declared = declared.strip()
        if not (declared.isascii() and declared.isdigit()):
            self.count_dropped("invalid")
            return json_response(400, {"error": "content-length: not a number"})
        if int(declared) > self.settings.max_body_bytes:
            return self.too_large()
        return None

    def too_large(self) -> Response:
        self.count_dropped("invalid")
        limit = self.settings.max_body_bytes
        return json_response(
            413, {"error": f"body: larger than {limit} bytes"}, headers=[("Connection", "close")]
        )

    def personalization(self, facts: RequestFacts) -> Personalization:
        return Personalization(self, facts)


def stored_path(path: str) -> str:
    """A page's path as stored: storable, with e-mail addresses and phone numbers scrubbed.

    Only the first ``MAX_PATH`` characters are kept, and only they are the cache's
    key: a client sending huge paths cannot make the cache hold more.
    """
    return _stored_path(path[:MAX_PATH])


@lru_cache(maxsize=PATH_CACHE)
def _stored_path(path: str) -> str:
    return scrub(storable_text(path))


#: The cache of :func:`stored_path` (``cache_info()``, ``cache_clear()``), keyed by cut paths.
stored_paths = _stored_path


def _opt_out_flag(cookies: dict[str, str]) -> bool | None:
    """True when opted out; None when the cookie is there but unreadable (no tracking)."""
    value = cookies.get(_OPT_OUT_NAMES[0])
    if value is None:
        value = cookies.get(_OPT_OUT_NAMES[1])
    if value is None or value == "0":
        return False
    return True if value == "1" else None
