"""SQLite connections are set up for one machine's many readers and one writer."""

from __future__ import annotations

import threading
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
        "cache_size": -2000,  # SQLite's default (KiB) for reading connections
    }


def test_writes_share_one_connection_with_a_larger_cache(tmp_path: Path) -> None:
    """SQLite lets one connection write at a time: the writer keeps one connection,
    and its page cache, from batch to batch; reads use the others."""
    store = Store(f"sqlite:///{tmp_path / 'pool.db'}")
    store.create_all()
    try:
        writers = set()
        for _ in range(5):
            with store.transaction(write=True) as conn:
                writers.add(id(conn.connection.dbapi_connection))
                cache = conn.exec_driver_sql("PRAGMA cache_size").scalar()
        assert len(writers) == 1
        assert cache == -16384  # KiB: 16 MB
        with store.transaction() as conn:
            assert id(conn.connection.dbapi_connection) not in writers
        # a second writer thread waits for the connection, then writes
        done: list[str] = []
        with store.transaction(write=True):
            thread = threading.Thread(
                target=lambda: done.append(store.set_meta_if_absent("probe", "yes"))
            )
            thread.start()
            thread.join(0.3)
            assert done == []  # still waiting
        thread.join(10)
        assert done == ["yes"]
    finally:
        store.dispose()
