"""Shared pieces of the security tests."""

from __future__ import annotations

import re
from collections.abc import Callable

import sqlalchemy as sa

from penchant import Penchant
from tests.reliability.sites import SiteClient, engine_for

__all__ = ["BROWSER", "SAME_ORIGIN", "TOKEN", "OpenSite", "every_value", "page_token"]

TOKEN = re.compile(r'data-token="([^"]*)"')
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAME_ORIGIN = {"User-Agent": BROWSER, "Accept-Language": "en-GB", "Sec-Fetch-Site": "same-origin"}

OpenSite = Callable[..., tuple[SiteClient, Penchant]]


def page_token(client: SiteClient, headers: dict[str, str] | None = None) -> str:
    """The beacon token the page hands to this visitor's tracker."""
    reply = client.get("/", headers=headers or SAME_ORIGIN)
    found = TOKEN.search(reply.text)
    assert found is not None and found.group(1), reply.text
    return found.group(1)


def every_value(database_url: str) -> list[tuple[str, str, str]]:
    """(table, column, text) of every non-null value of every table, whatever its type."""
    engine = engine_for(database_url)
    found: list[tuple[str, str, str]] = []
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        with engine.connect() as conn:
            for table in metadata.sorted_tables:
                for row in conn.execute(sa.select(table)):
                    for column, value in row._mapping.items():
                        if value is not None:
                            found.append((table.name, str(column), str(value)))
    finally:
        engine.dispose()
    return found
