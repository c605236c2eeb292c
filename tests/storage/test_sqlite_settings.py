"""SQLite connections are set up for one machine's many readers and one writer."""

from __future__ import annotations

from pathlib import Path

from penchant.storage.store import Store


def test_sqlite_file_connections_use_wal_and_infrequent_checkpoints(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'settings.db'}")
    store.create_all()
    with store.engine.connect() as conn:
        settings = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in (
                "journal_mode",
                "synchronous",
                "wal_autocheckpoint",
                "mmap_size",
                "cache_size",
            )
        }
    store.dispose()
    assert settings == {
        "journal_mode": "wal",
        "synchronous": 1,  # NORMAL: no fsync per commit in WAL mode, never corrupt
        "wal_autocheckpoint": 10000,
        "mmap_size": 268435456,
        "cache_size": -16384,  # KiB: 16 MB of cached pages per connection
    }


def test_the_connection_returned_last_is_handed_out_next(tmp_path: Path) -> None:
    """One thread's transactions one after another keep one connection (and its
    page cache), even after other connections were opened."""
    store = Store(f"sqlite:///{tmp_path / 'pool.db'}")
    store.create_all()
    try:
        with store.engine.connect() as a, store.engine.connect() as b:
            opened = {id(a.connection.dbapi_connection), id(b.connection.dbapi_connection)}
        assert len(opened) == 2
        seen = []
        for _ in range(5):
            with store._begin(write=True) as conn:
                seen.append(id(conn.connection.dbapi_connection))
        assert len(set(seen)) == 1 and seen[0] in opened
    finally:
        store.dispose()
