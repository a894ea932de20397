"""Engine, sessions and migrations of the alert store.

SQLite (WAL, foreign keys on, a busy timeout) is the embedded default under ``var/``;
PostgreSQL is the deployment database. The schema is owned by Alembic: every process that
opens the store runs ``upgrade head`` first, which is a no-op when it is current.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import CursorResult, Engine, Update, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK_ID = 0x5357_4D47  # PostgreSQL advisory lock key of the schema upgrade (any constant of our own)


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # FULL: a commit survives an OS crash or power loss too (NORMAL may lose the last ones), and the router
    # commits the Kafka offset right after the database commit, so a lost commit would be a lost alert.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    """Bring the database to the newest schema, one process at a time."""
    with _one_upgrade_at_a_time(url):
        command.upgrade(alembic_config(url), "head")


@contextmanager
def _one_upgrade_at_a_time(url: str) -> Iterator[None]:
    """Processes started together on a new database (``make up`` starts the router and the API at once) would
    each create the tables, and all but one would fail on "table already exists": they take turns, the next
    finding the schema current. SQLite: a lock on a file beside the database; PostgreSQL: an advisory lock."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.database and parsed.database != ":memory:":
        database = Path(parsed.database)
        database.parent.mkdir(parents=True, exist_ok=True)
        with database.with_name(f"{database.name}.upgrade-lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed, or the process ends
            yield
    elif backend == "postgresql":
        engine = create_engine(url, poolclass=NullPool)
        try:
            with engine.connect() as connection:  # the lock is the session's: it ends with the connection
                connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_ID})
                yield
        finally:
            engine.dispose()
    else:
        yield


class Store:
    """The database handle a process keeps: an engine and a session factory."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        if migrate:
            upgrade(url)
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back on error."""
        with self.sessions.begin() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()


# PostgreSQL settings that trade a committed transaction for speed. The router commits a Kafka offset right after
# its database commit: with any of these off, a database crash can undo a commit whose offset is already past, and
# the alerts in it are lost for good (the fault run lost 4 all-clears so, docs/RELIABILITY.md).
_DURABLE_POSTGRES = {
    "synchronous_commit": "a crash of the database server loses its last commits",
    "fsync": "a crash of the machine can lose or corrupt commits",
    "full_page_writes": "a crash of the machine can corrupt the database",
}


def durability_warnings(engine: Engine) -> list[str]:
    """What in the database's settings can lose a commit the store made (PostgreSQL; SQLite's are set above)."""
    if engine.dialect.name != "postgresql":
        return []
    warnings = []
    with engine.connect() as connection:
        for setting, risk in _DURABLE_POSTGRES.items():
            value = connection.execute(text(f"SHOW {setting}")).scalar_one()
            if str(value).lower() == "off":
                warnings.append(f"PostgreSQL's {setting} is off: {risk}, and with them alerts already taken from Kafka")
    return warnings


def rows_changed(session: Session, statement: Update) -> int:
    """How many rows an UPDATE changed: conditional leases rely on it."""
    result = cast("CursorResult[Any]", session.execute(statement))  # an UPDATE's result is a cursor result
    return result.rowcount
