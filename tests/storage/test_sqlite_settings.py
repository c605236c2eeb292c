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
            for name in ("journal_mode", "synchronous", "wal_autocheckpoint", "mmap_size")
        }
    store.dispose()
    assert settings == {
        "journal_mode": "wal",
        "synchronous": 1,  # NORMAL: no fsync per commit in WAL mode, never corrupt
        "wal_autocheckpoint": 10000,
        "mmap_size": 268435456,
    }
