"""penchant's Alembic migrations (``env.py``, ``versions/``).

Run through :mod:`penchant.storage.schema_version`, never by hand.
"""
