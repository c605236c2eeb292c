"""Exposures as one row per page view; the change feed; daily popularity.

- ``penchant_exposures``: ``content_type`` names every list of the page view
  ("categories,procedures"), ``lists`` counts them, and ``items`` becomes
  ``{content_type: [id, ...]}``. Rows of the first schema (one list each, items
  ``[[target_type, target_id, position], ...]``) are rewritten in that form.
- ``penchant_changes``: the visitor buckets whose profile changed.
- ``penchant_popular_days``: distinct visitors per item per day.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_BATCH = 1000


def _ids_in_order(items: str) -> list[int]:
    """``[[target_type, target_id, position], ...]`` -> the ids by position."""
    try:
        rows = json.loads(items)
    except ValueError:
        return []
    if not isinstance(rows, list):
        return []
    shown = [
        (row[2], row[1])
        for row in rows
        if isinstance(row, list) and len(row) == 3 and isinstance(row[1], int)
    ]
    return [target_id for _, target_id in sorted(shown, key=lambda pair: pair[0])]


def upgrade() -> None:
    bind = op.get_bind()
    # SQLite rebuilds the table (batch mode) to widen the column; PostgreSQL alters it
    with op.batch_alter_table("penchant_exposures") as batch:
        batch.alter_column(
            "content_type",
            type_=sa.String(64),
            existing_type=sa.String(16),
            existing_nullable=False,
        )
        batch.add_column(sa.Column("lists", sa.Integer, nullable=False, server_default="1"))
    exposures = sa.table(
        "penchant_exposures",
        sa.column("id", sa.Integer),
        sa.column("content_type", sa.String),
        sa.column("items", sa.Text),
    )
    items = exposures.c["items"]  # not .c.items: that is the collection's own method
    last = 0
    while True:
        rows = bind.execute(
            sa.select(exposures.c.id, exposures.c.content_type, items)
            .where(exposures.c.id > last, items.like("[%"))
            .order_by(exposures.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        bind.execute(
            exposures.update()
            .where(exposures.c.id == sa.bindparam("row_id"))
            .values(items=sa.bindparam("new_items")),
            [
                {
                    "row_id": row.id,
                    "new_items": json.dumps(
                        {row.content_type: _ids_in_order(row.items)}, separators=(",", ":")
                    ),
                }
                for row in rows
            ],
        )
        last = rows[-1].id
    op.create_table(
        "penchant_changes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("bucket", sa.Integer, nullable=False),
        sa.Column("changed_at", sa.DateTime, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("idx_changes_changed_at", "penchant_changes", ["changed_at"])
    op.create_table(
        "penchant_popular_days",
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("target_type", sa.String(50), nullable=False),
        sa.Column("target_id", sa.Integer, nullable=False),
        sa.Column("visitors", sa.Integer, nullable=False),
        sa.UniqueConstraint("day", "target_type", "target_id", name="uq_popular_days"),
    )


def downgrade() -> None:
    raise RuntimeError("penchant's migrations go forward only; restore a backup instead")
