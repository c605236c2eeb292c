"""``PersonalizationEngine``: the original static API over a default :class:`Penchant`.

Code written against the original keeps working::

    fp = PersonalizationEngine.create_browser_fingerprint(request)
    PersonalizationEngine.track_user_interaction(fp, session_id, "view", "procedure", 3)
    PersonalizationEngine.get_personalized_procedures(fp, limit=6)

The default instance reads the environment on first use;
:meth:`PersonalizationEngine.configure` installs another one.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, ClassVar

from penchant.engine.catalog import Category, Item
from penchant.engine.fingerprint import fingerprint, legacy_fingerprint
from penchant.service import Penchant

__all__ = ["PersonalizationEngine"]


def _request_parts(request: Any) -> tuple[str, str, str]:
    """User-Agent, client address and Accept-Language of a Flask, Starlette or WSGI request."""
    # A WSGI environ; a Starlette request is a Mapping too (of its scope), with headers.
    if isinstance(request, Mapping) and not hasattr(request, "headers"):
        return (
            str(request.get("HTTP_USER_AGENT", "")),
            str(request.get("REMOTE_ADDR", "")),
            str(request.get("HTTP_ACCEPT_LANGUAGE", "")),
        )
    headers = getattr(request, "headers", {}) or {}
    address = getattr(request, "remote_addr", None)
    if address is None:
        client = getattr(request, "client", None)
        address = getattr(client, "host", "") if client is not None else ""
    return (
        str(headers.get("User-Agent", "") or ""),
        str(address or ""),
        str(headers.get("Accept-Language", "") or ""),
    )


class PersonalizationEngine:
    """The original method names and signatures, as static methods."""

    _default: ClassVar[Penchant | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def configure(cls, penchant: Penchant) -> None:
        """Use ``penchant`` for every static call from now on."""
        cls._default = penchant

    @classmethod
    def instance(cls) -> Penchant:
        if cls._default is None:
            with cls._lock:
                if cls._default is None:
                    cls._default = Penchant()
        return cls._default

    @staticmethod
    def create_browser_fingerprint(request: Any) -> str:
        """32 hex characters from ``User-Agent|IP|Accept-Language`` (keyed unless md5 is set).

        This reads the socket address as given; the middleware, which knows the
        trusted proxies, is the better source of a visitor's identity.
        """
        penchant = PersonalizationEngine.instance()
        user_agent, address, language = _request_parts(request)
        if penchant.settings.fingerprint == "md5":
            return legacy_fingerprint(user_agent, address, language)
        return fingerprint(user_agent, address, language, key=penchant.secret)

    @staticmethod
    def track_user_interaction(
        user_id: str,
        session_id: str | None,
        interaction_type: str,
        target_type: str,
        target_id: int | None = None,
        metadata: Mapping[str, object] | None = None,
    ) -> bool:
        """Record one interaction; its category affinities follow when it is written."""
        return PersonalizationEngine.instance().track(
            interaction_type,
            target_type,
            target_id,
            user_id=user_id,
            session_id=session_id,
            extra_data=metadata,
        )

    @staticmethod
    def update_category_affinity(user_id: str, category_id: int, interaction_type: str) -> bool:
        """Move one category's affinity as an interaction of ``interaction_type`` would.

        Recorded as an interaction on the category, so it is kept, exported,
        erased and purged like every other one.
        """
        return PersonalizationEngine.instance().track(
            interaction_type, "category", category_id, user_id=user_id
        )

    @staticmethod
    def get_personalized_categories(user_id: str | None, limit: int = 6) -> list[Category | Item]:
        return _items("categories", user_id, limit)

    @staticmethod
    def get_personalized_procedures(user_id: str | None, limit: int = 6) -> list[Category | Item]:
        return _items("procedures", user_id, limit)

    @staticmethod
    def get_personalized_doctors(user_id: str | None, limit: int = 9) -> list[Category | Item]:
        return _items("doctors", user_id, limit)

    @staticmethod
    def get_popular_categories(limit: int = 6) -> list[Category | Item]:
        return _items("categories", None, limit)

    @staticmethod
    def get_popular_procedures(limit: int = 6) -> list[Category | Item]:
        return _items("procedures", None, limit)

    @staticmethod
    def get_popular_doctors(limit: int = 9) -> list[Category | Item]:
        return _items("doctors", None, limit)


def _items(content_type: str, user_id: str | None, limit: int) -> list[Category | Item]:
    penchant = PersonalizationEngine.instance()
    return [r.item for r in penchant.recommend(content_type, user_id, limit=limit)]
