"""Shared helpers of the demo tests: serve the marketplace on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from demo_app import create_app
from demo_app.server import serve_in_thread
from penchant import Penchant

SECRET = "demo-test-secret-0123456789abcdef0123"
PASSWORD = "demo test password"
BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)


@contextmanager
def running_demo(database_url: str, **settings: Any) -> Iterator[tuple[str, Penchant]]:
    """Yield (base URL, Penchant) while the demo serves; it closes on exit."""
    app, penchant = create_app(
        database_url=database_url,
        secret_key=SECRET,
        dashboard_password=PASSWORD,
        **settings,
    )
    try:
        with serve_in_thread(app) as base:
            yield base, penchant
    finally:
        penchant.close()
