"""Radiant: the demo marketplace that shows penchant at work (``python -m demo_app``)."""

from __future__ import annotations

from demo_app.app import URL_PATTERNS, create_app
from demo_app.catalog import build_catalog

__all__ = ["URL_PATTERNS", "build_catalog", "create_app"]
