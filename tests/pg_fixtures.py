"""Pytest fixtures for a real PostgreSQL server: ``postgres_url`` starts a throwaway cluster once per
session (tests/pg.py) and yields the SQLAlchemy URL of its database ``shouwang_test``;
``postgres_db_url`` gives each test a fresh database of its own, dropped afterwards.

Use them by importing them into a conftest (or a test module)::

    from tests.pg_fixtures import postgres_db_url, postgres_url  # noqa: F401

When PostgreSQL cannot be started the fixtures fail (they never skip)."""

from __future__ import annotations

import contextlib
import subprocess
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.pg import ThrowawayPostgres


def _conninfo(url: str, dbname: str) -> str:
    """A libpq connection string for database ``dbname`` of the server at SQLAlchemy URL ``url``."""
    u = make_url(url)
    return psycopg.conninfo.make_conninfo(host=u.host, port=u.port, user=u.username, dbname=dbname, connect_timeout=10)


@pytest.fixture(scope="session")
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """SQLAlchemy URL (``postgresql+psycopg://…``) of a database on a throwaway PostgreSQL server
    started for this session; the server and its files are removed at the end."""
    if request.config.getoption("--no-servers"):
        pytest.fail("this test starts PostgreSQL but is not marked for it (postgres)")
    server = ThrowawayPostgres()
    began = time.monotonic()
    error = None
    try:
        server.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        error = str(exc)
    if error is not None:  # fail, never skip: a skipped store test would be counted as passing
        pytest.fail(f"cannot start the throwaway PostgreSQL server for the tests: {error}", pytrace=False)
    print(f"\nPostgreSQL ready at {server.url} in {time.monotonic() - began:.1f} s")
    try:
        yield server.url
    finally:
        server.stop()


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """Create an empty database ``t_<random>`` on the server at ``server_url`` and yield its SQLAlchemy
    URL; drop it on exit, terminating any connections still open to it."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = _conninfo(server_url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_db_url(postgres_url: str) -> Iterator[str]:
    """SQLAlchemy URL of a fresh, empty database of this test's own on the session server; dropped
    afterwards, with any connections the test left open terminated."""
    with fresh_database(postgres_url) as url:
        yield url
