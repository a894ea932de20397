"""The embedded SQLite store is durable by default: WAL, and synchronous=FULL (a commit survives an OS
crash or a power loss, not just a process crash); a PostgreSQL set to trade commits for speed is named by the
router when it starts."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import text

from alerts.db import Store, durability_warnings
from alerts.router import Router
from shouwang.settings import Settings


def test_sqlite_commits_are_durable(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        with store.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    finally:
        store.close()


@pytest.mark.postgres
def test_a_postgresql_that_can_lose_commits_is_named_by_the_router_at_its_start(
    postgres_db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The test session's server runs with fsync, full_page_writes and synchronous_commit off, for speed.
    store = Store(postgres_db_url)
    try:
        named = durability_warnings(store.engine)
        assert [w.split(" is off")[0] for w in named] == [
            "PostgreSQL's synchronous_commit",
            "PostgreSQL's fsync",
            "PostgreSQL's full_page_writes",
        ]
    finally:
        store.close()
    # synchronous_commit is a session's own setting: asked for, it is on, and no longer named.
    separator = "&" if "?" in postgres_db_url else "?"
    durable = Store(f"{postgres_db_url}{separator}options=-csynchronous_commit%3Don", migrate=False)
    try:
        assert not any("synchronous_commit" in w for w in durability_warnings(durable.engine))
    finally:
        durable.close()
    with caplog.at_level(logging.WARNING, logger="alerts.router"):
        router = Router(Settings(var_dir=tmp_path, database_url=postgres_db_url))
        router.store.close()
    assert "PostgreSQL's synchronous_commit is off" in caplog.text


def test_sqlite_has_nothing_to_name(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        assert durability_warnings(store.engine) == []
    finally:
        store.close()
