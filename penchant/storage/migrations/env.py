"""Alembic's environment for penchant's own schema.

Run only through :mod:`penchant.storage.schema_version`, which hands over a
connection already inside a locked transaction: every migration of one upgrade
commits together or not at all, and concurrent upgraders wait for each other.
"""

from __future__ import annotations

from alembic import context

from penchant.storage.schema import metadata
from penchant.storage.schema_version import VERSION_TABLE

if context.is_offline_mode():
    raise RuntimeError("penchant's migrations run against a database, not as SQL scripts")

context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
