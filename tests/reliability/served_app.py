"""The small site wrapped by penchant, as an importable ASGI app for real uvicorn processes.

Configured by the environment of the process: ``DATABASE_URL`` and
``PENCHANT_SECRET_KEY`` as usual, plus ``PENCHANT_TEST_SETTINGS``, a JSON object
of any further :class:`~penchant.Settings` fields.
"""

from __future__ import annotations

import json
import os

from penchant import Penchant
from tests.harness import small_catalog, starlette_site

__all__ = ["app", "penchant"]

penchant = Penchant(
    catalog=small_catalog(),
    **json.loads(os.environ.get("PENCHANT_TEST_SETTINGS", "{}")),
)
app = penchant.asgi(starlette_site())
