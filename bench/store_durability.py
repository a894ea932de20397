"""What bench/router_throughput.py and bench/api_throughput.py share: the store's durability setting switched
for one run, a PostgreSQL server that flushes its commits, fresh databases from a template, the machine.

SQLite commits with ``synchronous=FULL`` (alerts/db.py). A bench measures the cost against ``NORMAL`` (the
setting before) by adding its own connect listener to one engine, after the store's: the product's code is
not changed, and the run reads the setting back from a connection to show it took.

The throwaway PostgreSQL of the tests (tests/pg.py) runs with fsync and synchronous_commit off, for speed;
a benchmark of commits must not: ``durable_postgres`` turns them back on (PostgreSQL's defaults) and keeps
the cluster on a disk, not in /dev/shm, where a flush costs nothing.
"""

from __future__ import annotations

import os
import platform
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, event, make_url, text

from tests.pg import ThrowawayPostgres

# synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA (SQLite's numbering)
SQLITE_SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def use_sqlite_synchronous(engine: Engine, mode: str) -> None:
    """Every new connection of ``engine`` commits with ``PRAGMA synchronous=<mode>``: a listener added after
    the store's own, so it has the last word. Only this engine; the product's default is untouched."""
    if mode not in ("FULL", "NORMAL"):
        raise ValueError(f"synchronous={mode}: FULL or NORMAL")

    def pragma(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA synchronous={mode}")
        cursor.close()

    event.listen(engine, "connect", pragma)


def durability_of(engine: Engine) -> str:
    """The setting a connection of ``engine`` really commits with, read back from the database."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            value = connection.execute(text("PRAGMA synchronous")).scalar_one()
            return f"synchronous={SQLITE_SYNCHRONOUS.get(int(value), value)}"
        commit = connection.execute(text("SHOW synchronous_commit")).scalar_one()
        fsync = connection.execute(text("SHOW fsync")).scalar_one()
        return f"synchronous_commit={commit}, fsync={fsync}"


def durable_postgres() -> ThrowawayPostgres:
    """A throwaway server (tests/pg.py) on a disk, with fsync, full_page_writes and synchronous_commit on."""
    server = ThrowawayPostgres(base_dir=Path(tempfile.gettempdir()))
    server.start()
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        for name in ("fsync", "full_page_writes", "synchronous_commit"):
            conn.execute(f"ALTER SYSTEM SET {name} = on")  # all three take effect on a reload
        conn.execute("SELECT pg_reload_conf()")
    return server


def postgres_settings(url: str) -> dict[str, str]:
    with psycopg.connect(_conninfo(url, "postgres"), autocommit=True) as conn:
        names = ("server_version", "fsync", "synchronous_commit", "full_page_writes", "data_directory")
        values: dict[str, str] = {}
        for name in names:
            row = conn.execute(f"SHOW {name}").fetchone()
            values[name] = str(row[0]) if row else "?"
    return values


def _conninfo(url: str, dbname: str) -> str:
    parsed = make_url(url)
    return psycopg.conninfo.make_conninfo(
        host=parsed.host, port=parsed.port, user=parsed.username, dbname=dbname, connect_timeout=10
    )


def new_postgres_database(server_url: str, *, template: str | None = None, commit: str | None = None) -> str:
    """A new database on the server at ``server_url`` (a copy of ``template`` when given; with
    ``synchronous_commit`` set for every connection to it when ``commit`` is given); its SQLAlchemy URL."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_conninfo(server_url, "postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        if commit is not None:
            if commit not in ("on", "off"):
                raise ValueError(f"synchronous_commit={commit}: on or off")
            conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = {commit}')
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    with psycopg.connect(_conninfo(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def copy_sqlite(template: Path, target: Path) -> str:
    """A copy of a (checkpointed, closed) SQLite store; its URL."""
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


def machine() -> dict[str, Any]:
    """What the figures were measured on: cores, CPU, memory, load at the start, SQLite's version, the
    file system of the temporary directory (where the SQLite stores and the PostgreSQL cluster live)."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cores": os.cpu_count(),
        "cpu": model or platform.processor(),
        "memory_gb": round(memory_gb),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "tmp_filesystem": _filesystem(Path(tempfile.gettempdir())),
    }


def _filesystem(path: Path) -> str:
    """The mount type holding ``path`` (from /proc/mounts: the longest mount point that contains it)."""
    best, kind = "", "?"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            _device, mount, fstype, *_ = line.split()
            if str(path.resolve()).startswith(mount) and len(mount) > len(best):
                best, kind = mount, fstype
    except OSError:
        pass
    return kind


def fsync_ms(directory: Path, *, times: int = 20) -> float:
    """The disk's pace: median milliseconds to write 4 KB to a file in ``directory`` and fsync it (what a
    commit that waits for the disk waits for, at least)."""
    path = directory / f".fsync-probe-{os.getpid()}"
    spent = []
    try:
        with path.open("wb") as file:
            for _ in range(times):
                began = time.perf_counter()
                file.write(os.urandom(4096))
                file.flush()
                os.fsync(file.fileno())
                spent.append((time.perf_counter() - began) * 1000)
    finally:
        path.unlink(missing_ok=True)
    return round(statistics.median(spent), 2)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Run-by-run ratios: the two of one repetition ran back to back, so their ratio is steadier than either."""
    return [a / b for a, b in zip(numerators, denominators, strict=True) if b]
