"""Framework helpers: ``request.personalization`` where the framework allows it.

- Starlette / FastAPI: ``request.state.personalization`` works as is; FastAPI
  views can also declare ``p: Personalization = Depends(personalization_dependency)``.
- Flask: :func:`init_flask` wraps ``app.wsgi_app`` and gives the request class a
  ``personalization`` attribute.
- Any ASGI app: ``scope["penchant.personalization"]``; any WSGI app:
  ``environ["penchant.personalization"]``; anywhere in a request:
  :func:`~penchant.middleware.personalization.current_personalization`.

Frameworks are imported only when a helper is used: none is a dependency.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from penchant.middleware.personalization import Personalization, current_personalization

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

    from penchant.service import Penchant
else:
    try:
        # FastAPI reads the dependency's annotation to inject the connection.
        from starlette.requests import HTTPConnection
    except ImportError:  # pragma: no cover - Starlette is only needed by its users
        HTTPConnection = object

__all__ = [
    "Personalization",
    "current_personalization",
    "init_flask",
    "personalization_dependency",
    "personalization_of",
]

SCOPE_KEY = "penchant.personalization"


def personalization_of(request: Any) -> Personalization | None:
    """The personalization of a request object, ASGI scope or WSGI environ."""
    for attribute in ("scope", "environ"):
        holder = getattr(request, attribute, None)
        if isinstance(holder, Mapping):
            found = holder.get(SCOPE_KEY)
            return found if isinstance(found, Personalization) else None
    if isinstance(request, Mapping):
        found = request.get(SCOPE_KEY)
        return found if isinstance(found, Personalization) else None
    return None


def personalization_dependency(connection: HTTPConnection) -> Personalization:
    """FastAPI dependency: ``p: Personalization = Depends(personalization_dependency)``."""
    found = connection.scope.get(SCOPE_KEY)
    if not isinstance(found, Personalization):
        raise RuntimeError("penchant is not installed: wrap the app with Penchant(...).asgi(app)")
    return found


def init_flask(app: Any, penchant: Penchant) -> Any:
    """Wrap a Flask app: ``request.personalization`` in every view. Returns the app."""
    app.wsgi_app = penchant.wsgi(app.wsgi_app)
    base = app.request_class

    class PersonalizedRequest(base):  # type: ignore[misc, valid-type]
        @property
        def personalization(self) -> Personalization | None:
            found = self.environ.get(SCOPE_KEY)
            return found if isinstance(found, Personalization) else None

    app.request_class = PersonalizedRequest
    app.extensions["penchant"] = penchant
    return app
