"""The embedded SQLite store is durable by default: WAL, and synchronous=FULL (a commit survives an OS
crash or a power loss, not just a process crash); a PostgreSQL set to trade commits for speed is named by the
router when it starts; processes started together on a new database each find the schema made, once."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from alerts.db import Store, durability_warnings
from alerts.router import Router
from shouwang.settings import REPO_ROOT, Settings

UPGRADE = "import sys; from alerts.db import upgrade; upgrade(sys.argv[1])"


def _upgrade_together(url: str, count: int = 4) -> None:
    """``count`` processes that each bring the new database at ``url`` to the schema at once, as ``make up``
    starts the router and the API; each must succeed, and the schema be there once."""
    processes = [
        subprocess.Popen([sys.executable, "-c", UPGRADE, url], cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    failed = [error[-600:] for process in processes if process.wait(timeout=120) and (error := process.stderr.read())]
    assert failed == [], failed
    store = Store(url, migrate=False)
    with store.transaction() as session:
        assert len(session.execute(text("SELECT version_num FROM alembic_version")).all()) == 1
    store.close()


def test_processes_started_together_on_a_new_sqlite_store_take_turns_at_the_schema(tmp_path: Path) -> None:
    _upgrade_together(f"sqlite:///{tmp_path / 'var' / 'new.db'}")


@pytest.mark.postgres
def test_processes_started_together_on_a_new_postgresql_database_take_turns_at_the_schema(
    postgres_db_url: str,
) -> None:
    _upgrade_together(postgres_db_url)


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
