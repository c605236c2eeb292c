"""penchant: personalization for anonymous visitors, as WSGI/ASGI middleware."""

from __future__ import annotations

from penchant.compat import PersonalizationEngine
from penchant.config import ConfigError, Settings
from penchant.engine.catalog import Catalog, Category, Item
from penchant.engine.events import Interaction
from penchant.engine.ranking import Reason, Recommendation
from penchant.middleware.personalization import Personalization
from penchant.service import Penchant

__all__ = [
    "Catalog",
    "Category",
    "ConfigError",
    "Interaction",
    "Item",
    "Penchant",
    "Personalization",
    "PersonalizationEngine",
    "Reason",
    "Recommendation",
    "Settings",
]

__version__ = "0.1.0"
