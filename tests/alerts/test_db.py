"""The embedded SQLite store is durable by default: WAL, and synchronous=FULL (a commit survives an OS
crash or a power loss, not just a process crash)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from alerts.db import Store


def test_sqlite_commits_are_durable(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        with store.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    finally:
        store.close()
