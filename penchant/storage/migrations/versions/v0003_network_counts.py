"""Shared counts per network: who does not count, and how many networks saw a pair.

- ``penchant_unshared``: (visitor, day) of visitors left out of popular content
  and co-viewed items, their network being over its identity budget.
- ``penchant_item_neighbours.networks``: how many networks the pair was seen
  from. Rows from before count none: a pair is read again once visitors from
  two networks have viewed it (what was stored before could not be told apart
  from a pair made up from one address).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "penchant_unshared",
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.UniqueConstraint("user_id", "day", name="uq_unshared"),
    )
    op.create_index("idx_unshared_day", "penchant_unshared", ["day"])
    with op.batch_alter_table("penchant_item_neighbours") as batch:
        batch.add_column(sa.Column("networks", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("penchant_item_neighbours") as batch:
        batch.drop_column("networks")
    op.drop_index("idx_unshared_day", table_name="penchant_unshared")
    op.drop_table("penchant_unshared")
