"""The privacy tests reuse the middleware tests' host sites and fixtures."""

from __future__ import annotations

from tests.middleware.conftest import host, open_site, site, sqlite_url

__all__ = ["host", "open_site", "site", "sqlite_url"]
