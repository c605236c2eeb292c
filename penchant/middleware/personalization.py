"""The ``personalization`` object every request carries.

Lazy: creating it costs nothing, identifying the visitor happens on first use,
and nothing is queried unless a view asks for recommendations. Reachable as
``scope["penchant.personalization"]`` / ``request.state.personalization``
(ASGI), ``environ["penchant.personalization"]`` (WSGI), and
:func:`current_personalization` (a context variable) while a request runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING

from penchant.engine.events import new_event_id
from penchant.engine.validation import InvalidEvent, validate_event
from penchant.service import _Reading

if TYPE_CHECKING:
    from penchant.engine.consent import ConsentState
    from penchant.engine.events import JSONScalar
    from penchant.engine.experiments import Variant
    from penchant.engine.ranking import Recommendation
    from penchant.middleware.core import Core, Visitor
    from penchant.middleware.facts import RequestFacts

__all__ = ["Personalization", "bind", "current_personalization", "unbind"]

logger = logging.getLogger("personalization")

_current: ContextVar[Personalization | None] = ContextVar("penchant_personalization", default=None)


def current_personalization() -> Personalization | None:
    """The personalization of the request being handled, if any."""
    return _current.get()


# The context variable's own methods (no Python call of ours around them, per request):
#: ``bind(personalization)`` makes it current while the host app handles its request.
bind: Callable[[Personalization | None], Token[Personalization | None]] = _current.set
#: ``unbind(token)`` restores what was current before ``bind``.
unbind: Callable[[Token[Personalization | None]], None] = _current.reset


class Personalization:
    """Recommendations and server-side tracking for the visitor of one request."""

    __slots__ = (
        "_cache",
        "_context",
        "_core",
        "_page_view_id",
        "_reading",
        "_started",
        "_visitor",
        "facts",
    )

    def __init__(self, core: Core, facts: RequestFacts) -> None:
        self._core = core
        self.facts = facts
        self._visitor: Visitor | None = None
        # Made by the first list asked for: most requests ask for none.
        self._cache: dict[tuple[str, int | None], list[Recommendation]] | None = None
        self._context: tuple[str, int] | bool | None = False
        self._started = False
        self._page_view_id: str | None = None
        self._reading: _Reading | None = None

    # ---------------------------------------------------------------- visitor
    @property
    def visitor(self) -> Visitor:
        if self._visitor is None:
            self._visitor = self._core.identify(self.facts)
        return self._visitor

    @property
    def fingerprint(self) -> str | None:
        """The visitor's id (a keyed fingerprint or a hashed cookie id); None when not tracked."""
        return self.visitor.user_id

    @property
    def session_id(self) -> str | None:
        return self.visitor.session_id

    @property
    def tracking_allowed(self) -> bool:
        return self.visitor.tracking_allowed

    @property
    def reason(self) -> str:
        """Why tracking is or is not allowed: allowed, opted_out, gpc, dnt, no_consent, ..."""
        return self.visitor.reason

    @property
    def consent(self) -> ConsentState:
        return self.visitor.consent

    @property
    def variant(self) -> Variant:
        """``personalized`` or ``holdout`` (the holdout sees popular content)."""
        return self.visitor.variant

    @property
    def context(self) -> tuple[str, int] | None:
        """The current page's target, from the URL patterns (for contextual content)."""
        if self._context is False:
            self._context = self._core.patterns.match(self.facts.path)
        return self._context  # type: ignore[return-value]

    # -------------------------------------------------------- recommendations
    def recommendations(self, content_type: str, limit: int | None = None) -> list[Recommendation]:
        """Ranked content for this visitor; popular (or contextual) content when not tracked."""
        key = (content_type, limit)
        cache = self._cache
        if cache is None:
            cache = self._cache = {}
        cached = cache.get(key)
        if cached is not None:
            return cached
        visitor = self.visitor
        penchant = self._core.penchant
        user_id = visitor.user_id if visitor.tracking_allowed else None
        variant = visitor.variant if user_id is not None else None
        reading = self._reading
        try:
            if reading is None:
                # one reading (catalog, popular content, clock, profile) for the page's lists
                reading = self._reading = _Reading(penchant, user_id)
            found = penchant._recommend(
                content_type, user_id, limit, variant, self.context, reading
            )
        except ValueError:
            raise
        except Exception:
            self._core.failed("recommendation")
            found = []
        cache[key] = found
        if found and user_id is not None and variant is not None:
            session_id = visitor.session_id
            if session_id:
                # what this page view showed, by variant: the holdout comparison's denominator
                penchant.record_exposure(
                    user_id=user_id,
                    session_id=session_id,
                    page_view_id=self.page_view_id,
                    variant=variant,
                    content_type=content_type,
                    recommendations=found,
                    at=reading.now if reading is not None else None,
                )
        return found

    @property
    def page_view_id(self) -> str:
        """The id of this request's page view (its stored ``event_id`` when recorded)."""
        if self._page_view_id is None:
            self._page_view_id = new_event_id()
        return self._page_view_id

    def categories(self, limit: int | None = None) -> list[Recommendation]:
        return self.recommendations("categories", limit)

    def procedures(self, limit: int | None = None) -> list[Recommendation]:
        return self.recommendations("procedures", limit)

    def doctors(self, limit: int | None = None) -> list[Recommendation]:
        return self.recommendations("doctors", limit)

    def packages(self, limit: int | None = None) -> list[Recommendation]:
        return self.recommendations("packages", limit)

    # -------------------------------------------------------------- tracking
    def track(
        self,
        interaction_type: str,
        target_type: str,
        target_id: int | None = None,
        metadata: Mapping[str, JSONScalar] | None = None,
        *,
        path: str | None = None,
        event_id: str | None = None,
    ) -> bool:
        """Record a server-side event for this visitor; never raises.

        Returns False when it is not recorded: the visitor may not be tracked, or
        the event breaks a rule (logged on the ``personalization`` logger).
        """
        try:
            event = validate_event(
                {
                    "interaction_type": interaction_type,
                    "target_type": target_type,
                    "target_id": target_id,
                    "event_id": event_id,
                    "path": path,
                    "metadata": dict(metadata) if metadata is not None else None,
                },
                max_metadata_bytes=self._core.settings.max_metadata_bytes,
            )
        except InvalidEvent as exc:
            logger.warning("server-side event not recorded: %s", exc)
            return False
        visitor = self.visitor
        if not visitor.tracking_allowed:
            return False
        try:
            self._cache = None
            self._reading = None  # the next list reads the profile with this event
            return self._core.submit_event(visitor, event)
        except Exception:
            self._core.failed("server-side tracking")
            return False

    def script_tag(self, *, nonce: str | None = None) -> str:
        """The ``<script>`` tag of the tracker for this page (safe HTML)."""
        try:
            from penchant.tracker_js.serve import script_tag

            visitor = self.visitor
            core = self._core
            return script_tag(
                prefix=self.facts.root + core.prefix,
                token=core.page_token(visitor) if visitor.tracking_allowed else "",
                off=not visitor.tracking_allowed,
                allow_webdriver=core.settings.allow_webdriver,
                nonce=nonce,
            )
        except Exception:
            self._core.failed("script tag")
            return ""

    @property
    def privacy_url(self) -> str:
        """The visitor's privacy page (opt-out, opt-in, erasure, export)."""
        return f"{self.facts.root}{self._core.prefix}/privacy"

    def __repr__(self) -> str:
        state = "unidentified" if self._visitor is None else self._visitor.reason
        return f"<Personalization {self.facts.method} {self.facts.path} {state}>"
