"""The fault run's stack (bench/chaos.py): Kafka (a local three-node cluster, or one broker), a throwaway
PostgreSQL, two workers and two routers as `shouwang` processes, and the processes' restarts.

Every process runs in its own process group, so a signal reaches it and nothing else; each start gets a
log file of its own (``worker-1.3.log``: worker 1's third start), kept for reading after the run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from alerts import admin
from alerts.db import Store
from alerts.secret_box import SecretBox
from bench.chaos_load import TZ
from bench.chaos_receivers import Receivers
from cli.broker import LocalBroker, free_port
from cli.cluster import LocalCluster
from tests.pg import ThrowawayPostgres

PROCESS = Path(__file__).resolve().parent / "chaos_process.py"  # `python -m cli` that dumps its stacks on SIGUSR1


class Kafka:
    """The run's Kafka: a local cluster (broker faults possible) or a single broker (none)."""

    def __init__(self, broker: LocalBroker | LocalCluster) -> None:
        self.broker = broker

    @property
    def bootstrap(self) -> str:
        return str(self.broker.bootstrap)

    @property
    def cluster(self) -> LocalCluster | None:
        return self.broker if isinstance(self.broker, LocalCluster) else None

    @property
    def size(self) -> int:
        return self.broker.size if isinstance(self.broker, LocalCluster) else 1

    def restart(self) -> None:
        """Start the nodes that are down and wait until the cluster is whole again."""
        self.broker.start(timeout=180.0)


def start_kafka(home: Path, lib_dir: Path, *, nodes: int) -> Kafka:
    broker: LocalBroker | LocalCluster
    if nodes == 1:
        broker = LocalBroker(home=home, lib_dir=lib_dir, port=free_port(), controller_port=free_port(), heap="512m")
    else:
        broker = LocalCluster.on_free_ports(home, lib_dir, nodes=nodes, heap="512m")
    broker.start()
    return Kafka(broker)


@dataclass
class Service:
    """One `shouwang` process (``python -m cli ARGS``), restartable; ``starts`` counts its lives."""

    name: str
    args: list[str]
    env: dict[str, str]
    logs: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    paused: bool = False
    faulted: bool = False  # a fault has it down on purpose: the run's watch leaves it alone
    exits: list[int] = field(default_factory=list)  # exit codes of lives that ended on their own

    @property
    def log(self) -> Path:
        return self.logs / f"{self.name}.{self.starts}.log"

    @property
    def pid(self) -> int | None:
        return None if self.process is None or self.process.poll() is not None else self.process.pid

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError(f"{self.name} is already running")
        self.starts += 1
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(PROCESS), *self.args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def signal(self, sig: signal.Signals) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing is flushed, nothing is committed, no group is left."""
        self.signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait()

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self.signal(signal.SIGCONT)
        self.paused = False

    def died(self) -> bool:
        """Whether it exited without being told to (checked by the run between faults)."""
        if self.process is not None and self.process.poll() is not None:
            self.exits.append(self.process.returncode)
            self.process = None
            return True
        return False

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.process is None:
            return None
        if self.paused:
            self.resume()
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no log)"


class Postgres:
    """The run's PostgreSQL (tests/pg.py's throwaway server), which a fault stops and starts again."""

    def __init__(self) -> None:
        self.server = ThrowawayPostgres(dbname="shouwang_chaos")

    def start(self) -> str:
        self.server.start()
        # The deployment's setting (PostgreSQL's default), where the throwaway server has it off for speed: a
        # commit is on disk (here: in the operating system's cache) before the router commits the event's Kafka
        # offset. Off, a crash loses the last commits, whose offsets are already committed: alerts' rows and
        # notifications gone (the fault run lost 4 all-clears that way before this).
        with psycopg.connect(self.server.conninfo(), autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET synchronous_commit = on")
            conn.execute("SELECT pg_reload_conf()")
        return self.server.url

    def synchronous_commit(self) -> str:
        with psycopg.connect(self.server.conninfo(), autocommit=True) as conn:
            row = conn.execute("SHOW synchronous_commit").fetchone()
        return str(row[0]) if row else ""

    def crash(self) -> None:
        """``pg_ctl stop -m immediate``: every backend killed at once, recovery from the WAL at the next start."""
        self._pg_ctl("-m", "immediate", "-w", "-t", "60", "stop")

    def restart(self) -> None:
        self._pg_ctl("-l", str(self.server.log_file), "-w", "-t", "120", "start")

    def _pg_ctl(self, *args: str) -> None:
        # tests/pg.py runs its binaries as the unprivileged user when we are root: its own runner does that.
        result = self.server._run("pg_ctl", "-D", self.server.data_dir, *args, timeout=150)
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl {' '.join(args)} failed: {(result.stdout + result.stderr).strip()[-500:]}")

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.server.stop()


CELLS = 20


def enrol(store: Store, box: SecretBox, receivers: Receivers, meters: Sequence[str]) -> dict[str, list[str]]:
    """A household per meter in one of ``CELLS`` grid cells; its family member and the cell's grid worker
    subscribed, each a webhook on one of the receivers. Returns each meter's subscribers."""
    now = datetime.now(UTC)
    subscribers: dict[str, list[str]] = {}

    def recipient(session: Any, name: str, role: str, receiver: int) -> Any:
        person, secret = admin.create_recipient(
            session, name=name, role=role, webhook_url=receivers.url(receiver, name), allow=["127.0.0.0/8"], box=box
        )
        receivers.secrets[name] = secret or ""
        return person

    with store.transaction() as session:
        for cell in range(CELLS):
            grid = recipient(session, f"grid-{cell:02d}", "grid_worker", cell % receivers.count)
            admin.subscribe(session, grid, grid_cell=f"C{cell:02d}")
        for number, meter in enumerate(meters):
            cell = number % CELLS
            home = admin.create_household(
                session,
                name=f"Home {meter}",
                timezone=TZ,
                grid_cell=f"C{cell:02d}",
                consent_given_by="the elder",
                consent_given_at=now - timedelta(days=1),
                consent_scope="alerts",
            )
            admin.add_meter(session, home, meter_id=meter)
            family = recipient(session, f"fam-{meter}", "family", number % receivers.count)
            admin.subscribe(session, family, household_id=home.id)
            subscribers[meter] = [f"fam-{meter}", f"grid-{cell:02d}"]
    return subscribers


def owner_of_connection(client_port: int, server_port: int, pids: list[int]) -> int | None:
    """The pid among ``pids`` holding the loopback TCP connection from ``client_port`` to ``server_port``
    (read from /proc: the router that is sending the request a receiver holds now)."""
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            next(lines)
            for line in lines:
                parts = line.split()
                local, remote = int(parts[1].rsplit(":", 1)[1], 16), int(parts[2].rsplit(":", 1)[1], 16)
                if local == client_port and remote == server_port:
                    inode = parts[9]
                    break
        if inode is not None:
            break
    if inode is None:
        return None
    wanted = f"socket:[{inode}]"
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == wanted:
                        return pid
    return None


def wait_until(condition: object, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(step)
    return False
