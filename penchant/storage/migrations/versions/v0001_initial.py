"""The first schema: the original two tables (with penchant's additions), meta,
dead letters, co-occurrence, and exposures as one row per list.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_interactions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("interaction_type", sa.String(50), nullable=False),
        sa.Column("target_type", sa.String(50), nullable=False),
        sa.Column("target_id", sa.Integer, nullable=True),
        sa.Column("extra_data", sa.Text, nullable=True),
        sa.Column("timestamp", sa.DateTime, nullable=False),
        sa.Column("event_id", sa.String(32), nullable=True),
    )
    op.create_index("idx_user_interactions_user_id", "user_interactions", ["user_id"])
    op.create_index("idx_user_interactions_timestamp", "user_interactions", ["timestamp"])
    op.create_index(
        "idx_user_interactions_target", "user_interactions", ["target_type", "target_id"]
    )
    op.create_index("idx_user_interactions_session", "user_interactions", ["session_id"])
    op.create_index(
        "idx_user_interactions_user_time", "user_interactions", ["user_id", "timestamp"]
    )
    op.create_index(
        "uq_user_interactions_event", "user_interactions", ["user_id", "event_id"], unique=True
    )
    op.create_table(
        "user_category_affinity",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("category_id", sa.Integer, nullable=False),
        sa.Column("affinity_score", sa.Float, nullable=False),
        sa.Column("last_updated", sa.DateTime, nullable=False),
        sa.Column("raw_score", sa.Float, nullable=False),
        sa.UniqueConstraint("user_id", "category_id", name="unique_user_category"),
    )
    op.create_index("idx_user_category_affinity_user_id", "user_category_affinity", ["user_id"])
    op.create_index(
        "idx_user_category_affinity_score", "user_category_affinity", ["affinity_score"]
    )
    op.create_table(
        "penchant_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "penchant_dead_letter",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("failed_at", sa.DateTime, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_table(
        "penchant_item_neighbours",
        sa.Column("item_type", sa.String(50), nullable=False),
        sa.Column("item_id", sa.Integer, nullable=False),
        sa.Column("neighbour_type", sa.String(50), nullable=False),
        sa.Column("neighbour_id", sa.Integer, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("last_updated", sa.DateTime, nullable=False),
        sa.UniqueConstraint(
            "item_type", "item_id", "neighbour_type", "neighbour_id", name="uq_item_neighbours"
        ),
    )
    op.create_table(
        "penchant_exposures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("page_view_id", sa.String(32), nullable=False),
        sa.Column("variant", sa.String(16), nullable=False),
        sa.Column("content_type", sa.String(16), nullable=False),
        # JSON: [[target_type, target_id, position], ...]
        sa.Column("items", sa.Text, nullable=False),
        sa.Column("timestamp", sa.DateTime, nullable=False),
    )
    op.create_index(
        "uq_exposures_page_list",
        "penchant_exposures",
        ["user_id", "page_view_id", "content_type"],
        unique=True,
    )
    op.create_index("idx_exposures_timestamp", "penchant_exposures", ["timestamp"])


def downgrade() -> None:
    raise RuntimeError("penchant's migrations go forward only; restore a backup instead")
