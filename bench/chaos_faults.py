"""The fault run's faults (bench/chaos.py): a schedule drawn from a seed, and how each fault is injected
and ended. Faults come one after another, at random moments: the next begins a random gap after the pipeline
caught up from the last one, as the report measures it (bench/chaos_check.py ``caught_up_at``), so that each
fault's recovery is measured on its own and not lengthened by the next fault.

| fault | injected | over when |
|---|---|---|
| ``broker_leader`` | SIGKILL of the broker leading a random readings partition | its process is started again |
| ``controller_leader`` | SIGKILL of the node leading the controller quorum (KRaft) | likewise |
| ``worker_kill`` | SIGKILL of a random worker | it is started again |
| ``worker_pause`` | SIGSTOP of a random worker for longer than its session timeout (10 s) | SIGCONT |
| ``router_kill`` | SIGKILL of the router sending a request a receiver holds open (mid-send) | it is started again |
| ``postgres_restart`` | ``pg_ctl stop -m immediate`` (backends killed, WAL recovery at start) | it is started again |
| ``receiver_503`` | one receiver (a quarter of the recipients) answers 503 to everything | it answers 200 again |
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from bench.chaos_receivers import Receivers
from bench.chaos_stack import Kafka, Postgres, Service, owner_of_connection, wait_until
from cli.cluster import LocalCluster

CLUSTER_KINDS = ("broker_leader", "controller_leader")
KINDS = (
    "broker_leader",
    "worker_kill",
    "worker_pause",
    "router_kill",
    "postgres_restart",
    "receiver_503",
    "controller_leader",
)
WORKER_SESSION_TIMEOUT_S = 10.0  # streams/app.py: broker_session_timeout


@dataclass(frozen=True)
class Profile:
    """How long each fault lasts (seconds, drawn uniformly from each range) and how far apart they come."""

    down_s: tuple[float, float] = (5.0, 15.0)  # a killed process or node until it is started again
    pause_s: tuple[float, float] = (WORKER_SESSION_TIMEOUT_S + 3.0, WORKER_SESSION_TIMEOUT_S + 10.0)
    outage_s: tuple[float, float] = (45.0, 75.0)  # a receiver answering 503
    gap_s: tuple[float, float] = (25.0, 45.0)  # from the pipeline caught up after one fault to the next one's start
    catch_up_wait_s: float = 180.0  # the longest wait for that catch-up (0: none) before the gap begins anyway
    first_at_s: float = 30.0  # the load runs fault-free this long first: the baseline latency
    quiet_tail_s: float = 60.0  # no fault begins later than this before the load ends


@dataclass
class Fault:
    kind: str
    duration_s: float
    target: str = ""
    began: float | None = None  # time.monotonic()
    ended: float | None = None
    note: str = ""
    waited_s: float = 0.0  # before its gap: how long the run waited for the pipeline to catch up from the last

    def as_dict(self, origin: float) -> dict[str, object]:
        return {
            "kind": self.kind,
            "target": self.target,
            "began_s": None if self.began is None else round(self.began - origin, 1),
            "ended_s": None if self.ended is None else round(self.ended - origin, 1),
            "lasted_s": None if self.began is None or self.ended is None else round(self.ended - self.began, 1),
            "note": self.note,
            "waited_for_catch_up_s": round(self.waited_s, 1),
        }


@dataclass
class Schedule:
    """The faults in order and the gap before each: drawn from the seed alone, so a run can be repeated."""

    faults: list[Fault] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)


def draw_schedule(seed: int, load_s: float, profile: Profile, kinds: tuple[str, ...]) -> Schedule:
    """Every kind in turn (a fresh shuffle each round) until the planned time runs out; at least each kind once
    when the run is long enough for it."""
    rng = random.Random(seed)
    schedule = Schedule()
    clock = profile.first_at_s
    pool: list[str] = []
    while kinds:
        if not pool:
            pool = list(kinds)
            rng.shuffle(pool)
        kind = pool.pop()
        duration = rng.uniform(*_range(profile, kind))
        gap = profile.first_at_s if not schedule.faults else rng.uniform(*profile.gap_s)
        start = clock if not schedule.faults else clock + gap
        if start + duration > load_s - profile.quiet_tail_s:
            break
        schedule.faults.append(Fault(kind, round(duration, 1)))
        schedule.gaps.append(round(gap, 1))
        clock = start + duration
    return schedule


def _range(profile: Profile, kind: str) -> tuple[float, float]:
    if kind == "worker_pause":
        return profile.pause_s
    if kind == "receiver_503":
        return profile.outage_s
    return profile.down_s


class Injector:
    """Injects one fault and ends it (blocking: the run calls it in a thread while the load goes on)."""

    def __init__(
        self,
        *,
        rng: random.Random,
        kafka: Kafka,
        readings_topic: str,
        partitions: int,
        workers: list[Service],
        routers: list[Service],
        postgres: Postgres,
        receivers: Receivers,
    ) -> None:
        self.rng = rng
        self.kafka = kafka
        self.readings_topic = readings_topic
        self.partitions = partitions
        self.workers = workers
        self.routers = routers
        self.postgres = postgres
        self.receivers = receivers

    def run(self, fault: Fault) -> None:
        getattr(self, f"_{fault.kind}")(fault)

    def _broker_leader(self, fault: Fault) -> None:
        cluster = self._whole_cluster()
        partition = self.rng.randrange(self.partitions)
        node = cluster.partition_leader(self.readings_topic, partition)
        self._kill_node(fault, cluster, node, f"node {node}, leader of readings partition {partition}")

    def _controller_leader(self, fault: Fault) -> None:
        cluster = self._whole_cluster()
        node = cluster.quorum_leader()
        if node is None:
            raise RuntimeError("the controller quorum has no leader on record")
        self._kill_node(fault, cluster, node, f"node {node}, the controller quorum's leader")

    def _whole_cluster(self) -> LocalCluster:
        """The cluster once every node is back (one node down at a time: two would stop writes, by design)."""
        cluster = self.kafka.cluster
        if cluster is None:
            raise RuntimeError("broker faults need the local cluster")
        cluster.wait_ready(timeout=180.0)
        return cluster

    def _kill_node(self, fault: Fault, cluster: LocalCluster, node: int, target: str) -> None:
        """SIGKILL, and after the fault's time the node's process started again; the fault is over then (the node
        rejoins by itself, catching up its replicas meanwhile: the pipeline must not wait for it)."""
        fault.target = target
        fault.began = time.monotonic()
        cluster.kill(node)
        time.sleep(fault.duration_s)
        cluster.node(node).launch()
        fault.ended = time.monotonic()

    def _worker_kill(self, fault: Fault) -> None:
        worker = self.rng.choice(self.workers)
        fault.target = worker.name
        worker.faulted = True
        fault.began = time.monotonic()
        worker.kill()
        time.sleep(fault.duration_s)
        worker.start()
        worker.faulted = False
        fault.ended = time.monotonic()

    def _worker_pause(self, fault: Fault) -> None:
        worker = self.rng.choice(self.workers)
        fault.target = worker.name
        worker.faulted = True
        fault.began = time.monotonic()
        worker.pause()
        time.sleep(fault.duration_s)
        worker.resume()
        worker.faulted = False
        fault.ended = time.monotonic()

    def _router_kill(self, fault: Fault) -> None:
        """Hold a receiver's requests open, kill the router that is sending one of them, then answer."""
        index = self.rng.randrange(self.receivers.count)
        self.receivers.hold(index, 2.5)  # under the attempt timeout (chaos.py: 4 s)
        victim: Service | None = None
        try:

            def sending() -> bool:
                nonlocal victim
                pids = [pid for router in self.routers if (pid := router.pid) is not None]
                for port in list(self.receivers.in_flight[index]):
                    owner = owner_of_connection(port, self.receivers.port(index), pids)
                    victim = next((r for r in self.routers if owner is not None and r.pid == owner), None)
                    if victim is not None:
                        return True
                return False

            caught = wait_until(sending, timeout=30.0, step=0.05)
            if victim is None:
                victim = self.rng.choice(self.routers)
            fault.target = victim.name
            fault.note = "mid-send" if caught else "no request in flight within 30 s: killed idle"
            victim.faulted = True
            fault.began = time.monotonic()
            victim.kill()
        finally:
            self.receivers.hold(index, 0.0)
        time.sleep(fault.duration_s)
        victim.start()
        victim.faulted = False
        fault.ended = time.monotonic()

    def _postgres_restart(self, fault: Fault) -> None:
        fault.target = "PostgreSQL"
        fault.began = time.monotonic()
        self.postgres.crash()
        time.sleep(fault.duration_s)
        self.postgres.restart()
        fault.ended = time.monotonic()

    def _receiver_503(self, fault: Fault) -> None:
        index = self.rng.randrange(self.receivers.count)
        fault.target = f"receiver {index}"
        fault.began = time.monotonic()
        self.receivers.fail(index, fault.duration_s)
        time.sleep(fault.duration_s)
        fault.ended = time.monotonic()
