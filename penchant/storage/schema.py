"""The tables, as SQLAlchemy Core ``MetaData`` a host app can add to its Alembic setup.

``user_interactions`` and ``user_category_affinity`` keep the original columns,
types and indexes. Additions, each for one stated need:

- ``user_interactions.event_id``: the event's id; unique with ``user_id`` so a
  replayed beacon or flush stores nothing twice.
- ``user_category_affinity.raw_score``: the uncapped decayed sum ranking orders
  by (the capped ``affinity_score`` ties heavy visitors at 1.0).
- ``penchant_meta``, ``penchant_dead_letter``, ``penchant_item_neighbours``:
  the generated secret, rows that could not be stored, item-to-item co-occurrence.
- ``penchant_exposures``: which recommendations a page view showed, by variant (A/B);
  one row per page view (and writer batch), ``lists`` counting its lists.
- ``penchant_popular_days``: distinct visitors per item per day, no visitor
  ids: popular content sums a window of days instead of scanning interactions.
- ``penchant_item_neighbours.networks``: from how many networks (counted per
  day, never named) visitors viewed the pair; a pair seen from one network
  only is not read (see ``penchant.middleware.networks``).
- ``penchant_unshared``: the visitors, per day, who do not count in popular
  content and co-viewed items (their network was over its identity budget).
- ``penchant_changes``: which visitor buckets (a 16-bit hash of the visitor id,
  never the id) had their profile changed, so every process can drop stale
  cached profiles; rows live about an hour.

Every unique key on visitor data leads with ``user_id`` so the tables can be
distributed by visitor.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "changes",
    "dead_letter",
    "exposures",
    "item_neighbours",
    "meta",
    "metadata",
    "popular_days",
    "unshared",
    "user_category_affinity",
    "user_interactions",
]

metadata = MetaData()

user_interactions = Table(
    "user_interactions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String(32), nullable=False),
    Column("session_id", String(64), nullable=False),
    Column("interaction_type", String(50), nullable=False),
    Column("target_type", String(50), nullable=False),
    Column("target_id", Integer, nullable=True),
    Column("extra_data", Text, nullable=True),  # JSON text
    Column("timestamp", DateTime, nullable=False),
    Column("event_id", String(32), nullable=True),
    Index("idx_user_interactions_user_id", "user_id"),
    Index("idx_user_interactions_timestamp", "timestamp"),
    Index("idx_user_interactions_target", "target_type", "target_id"),
    Index("idx_user_interactions_session", "session_id"),
    Index("idx_user_interactions_user_time", "user_id", "timestamp"),
    Index("uq_user_interactions_event", "user_id", "event_id", unique=True),
)

user_category_affinity = Table(
    "user_category_affinity",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String(32), nullable=False),
    Column("category_id", Integer, nullable=False),
    Column("affinity_score", Float, nullable=False, default=0.0),
    Column("last_updated", DateTime, nullable=False),
    Column("raw_score", Float, nullable=False, default=0.0),
    UniqueConstraint("user_id", "category_id", name="unique_user_category"),
    Index("idx_user_category_affinity_user_id", "user_id"),
    Index("idx_user_category_affinity_score", "affinity_score"),
)

meta = Table(
    "penchant_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

dead_letter = Table(
    "penchant_dead_letter",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("failed_at", DateTime, nullable=False),
    Column("error", Text, nullable=False),
    Column("payload", Text, nullable=False),
)

item_neighbours = Table(
    "penchant_item_neighbours",
    metadata,
    Column("item_type", String(50), nullable=False),
    Column("item_id", Integer, nullable=False),
    Column("neighbour_type", String(50), nullable=False),
    Column("neighbour_id", Integer, nullable=False),
    Column("score", Float, nullable=False),
    Column("last_updated", DateTime, nullable=False),
    Column("networks", Integer, nullable=False, server_default="0"),
    UniqueConstraint(
        "item_type", "item_id", "neighbour_type", "neighbour_id", name="uq_item_neighbours"
    ),
)

exposures = Table(
    "penchant_exposures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String(32), nullable=False),
    Column("session_id", String(64), nullable=False),
    Column("page_view_id", String(32), nullable=False),
    Column("variant", String(16), nullable=False),
    # the lists one page view showed, as one row: "categories,doctors,procedures"
    Column("content_type", String(64), nullable=False),
    Column("lists", Integer, nullable=False, server_default="1"),
    # JSON: {content_type: [id, ...]}, each list in the order shown
    Column("items", Text, nullable=False),
    Column("timestamp", DateTime, nullable=False),
    Index("uq_exposures_page_list", "user_id", "page_view_id", "content_type", unique=True),
    Index("idx_exposures_timestamp", "timestamp"),
)

changes = Table(
    "penchant_changes",
    metadata,
    # ids are handed out in commit order (SQLite: AUTOINCREMENT under its one
    # writer; PostgreSQL: under an advisory lock), so "id > last seen" misses nothing
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("bucket", Integer, nullable=False),
    Column("changed_at", DateTime, nullable=False),
    Index("idx_changes_changed_at", "changed_at"),
    sqlite_autoincrement=True,
)

popular_days = Table(
    "penchant_popular_days",
    metadata,
    Column("day", Date, nullable=False),
    Column("target_type", String(50), nullable=False),
    Column("target_id", Integer, nullable=False),
    Column("visitors", Integer, nullable=False),
    UniqueConstraint("day", "target_type", "target_id", name="uq_popular_days"),
)

unshared = Table(
    "penchant_unshared",
    metadata,
    Column("user_id", String(32), nullable=False),
    Column("day", Date, nullable=False),
    UniqueConstraint("user_id", "day", name="uq_unshared"),
    Index("idx_unshared_day", "day"),
)
