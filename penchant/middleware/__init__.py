"""The HTTP side: one sans-I/O core, thin ASGI and WSGI adapters, framework helpers.

Most code needs none of this directly: ``Penchant(...).asgi(app)`` and
``Penchant(...).wsgi(app)`` build the adapters, and views read the request's
:class:`Personalization`.
"""

from __future__ import annotations

from penchant.middleware.asgi import PenchantASGI
from penchant.middleware.personalization import Personalization, current_personalization
from penchant.middleware.wsgi import PenchantWSGI

__all__ = ["PenchantASGI", "PenchantWSGI", "Personalization", "current_personalization"]
