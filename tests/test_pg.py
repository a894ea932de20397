"""The PostgreSQL fixtures run a real server: SQL round trips, and per-test databases that are isolated
from each other and dropped afterwards."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests import pg_fixtures
from tests.pg import ThrowawayPostgres
from tests.pg_fixtures import _conninfo, fresh_database

# the fixtures, made visible here (harmless once tests/conftest.py imports them too)
postgres_url = pg_fixtures.postgres_url
postgres_db_url = pg_fixtures.postgres_db_url

_seen: dict[str, str] = {}  # database names handed to earlier tests of this module


def _databases(url: str) -> set[str]:
    with psycopg.connect(_conninfo(url, "postgres")) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


def _tables(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            sql = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            return list(conn.execute(text(sql)).scalars())
    finally:
        engine.dispose()


def test_session_server_is_real_postgresql(postgres_url: str) -> None:
    url = make_url(postgres_url)
    assert (url.drivername, url.host, url.database) == ("postgresql+psycopg", "127.0.0.1", "shouwang_test")
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert "PostgreSQL" in conn.execute(text("SELECT version()")).scalar_one()
            assert conn.execute(text("SHOW listen_addresses")).scalar_one() == "127.0.0.1"
            assert conn.execute(text("SHOW server_encoding")).scalar_one() == "UTF8"
            assert conn.execute(text("SHOW fsync")).scalar_one() == "off"
    finally:
        engine.dispose()


def test_create_insert_and_read_back(postgres_db_url: str) -> None:
    _seen["first"] = make_url(postgres_db_url).database or ""
    engine = create_engine(postgres_db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE alerts (id serial PRIMARY KEY, meter text NOT NULL, note text)"))
            conn.execute(
                text("INSERT INTO alerts (meter, note) VALUES (:m, :n)"),
                [{"m": "m-1", "n": "无用水 12 小时"}, {"m": "m-2", "n": None}],
            )
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, meter, note FROM alerts ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [(1, "m-1", "无用水 12 小时"), (2, "m-2", None)]
    finally:
        engine.dispose()


def test_next_test_gets_a_fresh_empty_database(postgres_url: str, postgres_db_url: str) -> None:
    mine = make_url(postgres_db_url).database
    assert mine is not None and mine.startswith("t_") and mine in _databases(postgres_url)
    assert _tables(postgres_db_url) == []
    if "first" in _seen:  # the previous test's database is another one, and it is gone
        assert _seen["first"] != mine
        assert _seen["first"] not in _databases(postgres_url)


def test_two_databases_are_isolated_and_dropped(postgres_url: str) -> None:
    with fresh_database(postgres_url) as a, fresh_database(postgres_url) as b:
        names = {make_url(a).database, make_url(b).database}
        assert len(names) == 2 and names <= _databases(postgres_url)
        engine_a, engine_b = create_engine(a), create_engine(b)
        try:
            with engine_a.begin() as conn:
                conn.execute(text("CREATE TABLE t (x int)"))
                conn.execute(text("INSERT INTO t VALUES (1)"))
            with engine_b.begin() as conn:
                conn.execute(text("CREATE TABLE t (x int)"))
                conn.execute(text("INSERT INTO t VALUES (2), (3)"))
            with engine_a.connect() as conn:
                assert list(conn.execute(text("SELECT x FROM t")).scalars()) == [1]
            with engine_b.connect() as conn:
                assert list(conn.execute(text("SELECT x FROM t ORDER BY x")).scalars()) == [2, 3]
        finally:
            engine_a.dispose()
            engine_b.dispose()
        # a connection still open when the database is dropped is terminated, not waited for
        left_open = psycopg.connect(_conninfo(a, make_url(a).database or ""))
    try:
        assert not names & _databases(postgres_url)
        with pytest.raises(psycopg.OperationalError):
            left_open.execute("SELECT 1")
    finally:
        left_open.close()


@pytest.mark.postgres
def test_throwaway_server_stops_and_cleans_up() -> None:
    server = ThrowawayPostgres(dbname="other_db").start()
    root = server.root
    assert root is not None and (root / "data" / "PG_VERSION").exists()
    assert "other_db" in _databases(server.url)
    server.stop()
    assert not root.exists() and server.port is None
    server.stop()  # idempotent
