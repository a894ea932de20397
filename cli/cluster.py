"""A local Apache Kafka cluster from the same jars: three (or five) KRaft nodes on this machine, each a
broker and a controller, with their own ports and data folders under one home.

The nodes form a static controller quorum (``controller.quorum.voters`` names every node) and are
formatted once, each with the cluster's one id (kept in ``cluster.id``). They are started together
(no node answers before a majority of the quorum runs) and the cluster is ready when every node's
metadata lists every broker, which the active controller grants only once the quorum has a leader,
and a quorum leader is on record. Kafka's own topics get three replicas and min.insync.replicas 2.
``kill`` is a crash (SIGKILL) of one node, for the reliability tests; ``start`` starts whichever
nodes are down, and a killed node rejoins with its data.
"""

from __future__ import annotations

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cli.broker import BrokerError, LocalBroker, free_port, live_brokers, new_cluster_id, port_answers
from shouwang.durability import min_insync_replicas, replication_for
from shouwang.settings import Settings

LAYOUT_FILE = "cluster.json"

# A killed broker is noticed by the controller when its heartbeats stop: its partitions get new
# leaders after the session timeout (Kafka's default 9 s, 2 s heartbeats). A local cluster runs on one
# machine, where a node is never far: a shorter session makes a failover take seconds, not ten.
_FAILOVER = {
    "broker.session.timeout.ms": "6000",
    "broker.heartbeat.interval.ms": "1000",
    "replica.lag.time.max.ms": "10000",
}
# A cluster node needs less than a lone broker: the heap is the cluster's, and C1 alone compiles
# enough for a local cluster while three JVMs start on two cores.
_JVM_OPTIONS = ("-XX:TieredStopAtLevel=1", "-XX:CICompilerCount=1", "-XX:ParallelGCThreads=1")


@dataclass(frozen=True)
class PartitionState:
    leader: int  # -1 while none
    replicas: list[int]
    isr: list[int]


@dataclass(frozen=True)
class LocalCluster:
    """Nodes 1…N whose state lives in ``home/node-<n>``; ``ports`` is (client, controller) per node."""

    home: Path
    lib_dir: Path
    ports: tuple[tuple[int, int], ...]
    heap: str = "512m"
    host: str = "127.0.0.1"

    @classmethod
    def on_free_ports(cls, home: Path, lib_dir: Path, *, nodes: int = 3, heap: str = "512m") -> LocalCluster:
        return cls(home, lib_dir, tuple((free_port(), free_port()) for _ in range(nodes)), heap)

    @classmethod
    def load(cls, home: Path, lib_dir: Path) -> LocalCluster | None:
        """The cluster last started under ``home`` (its layout is kept there), or None."""
        try:
            layout = json.loads((home / LAYOUT_FILE).read_text())
            return cls(home, lib_dir, tuple((int(c), int(k)) for c, k in layout["ports"]), str(layout["heap"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save_layout(self) -> None:
        """Keep the nodes' ports in the cluster's folder, where ``load`` (`shouwang broker status|stop`) finds them."""
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / LAYOUT_FILE).write_text(json.dumps({"ports": [list(p) for p in self.ports], "heap": self.heap}))

    def __post_init__(self) -> None:
        every = [port for pair in self.ports for port in pair]
        if len(set(every)) != len(every):
            raise BrokerError(f"the cluster's nodes need distinct ports, got {self.ports}")
        if len(self.ports) not in (3, 5):
            raise BrokerError(
                f"a local cluster has 3 or 5 nodes (a majority of the quorum must be up), not {self.size}"
            )

    @property
    def size(self) -> int:
        return len(self.ports)

    @property
    def node_ids(self) -> list[int]:
        return list(range(1, self.size + 1))

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{self.host}:{client}" for client, _ in self.ports)

    @property
    def data_dir(self) -> Path:
        return self.home

    @property
    def voters(self) -> str:
        return ",".join(f"{n}@{self.host}:{ctrl}" for n, (_, ctrl) in zip(self.node_ids, self.ports, strict=True))

    def node(self, node_id: int) -> LocalBroker:
        client, controller = self.ports[node_id - 1]
        replicas = replication_for(self.size)
        return LocalBroker(
            home=self.home / f"node-{node_id}",
            lib_dir=self.lib_dir,
            port=client,
            controller_port=controller,
            heap=self.heap,
            host=self.host,
            node_id=node_id,
            voters=self.voters,
            cluster_id=self.cluster_id(),
            replicas=replicas,
            extra_config=(
                ("default.replication.factor", str(replicas)),
                ("min.insync.replicas", str(min_insync_replicas(replicas))),
                *_FAILOVER.items(),
            ),
            jvm_options=_JVM_OPTIONS,
        )

    @property
    def nodes(self) -> list[LocalBroker]:
        return [self.node(n) for n in self.node_ids]

    def cluster_id(self) -> str | None:
        """The cluster's one id, made at its first start (every node is formatted with it); None before."""
        path = self.home / "cluster.id"
        return path.read_text().strip() if path.exists() else None

    def _make_cluster_id(self) -> None:
        if self.cluster_id() is None:
            self.home.mkdir(parents=True, exist_ok=True)
            (self.home / "cluster.id").write_text(new_cluster_id() + "\n")

    def running(self) -> list[int]:
        """The ids of the nodes whose process is alive."""
        return [node.node_id for node in self.nodes if node.is_running()]

    def is_running(self) -> bool:
        """Every node runs (``start`` starts those that do not)."""
        return len(self.running()) == self.size

    def pid(self) -> int | None:
        """The first running node's pid (the CLI's status line names them all)."""
        return next((pid for node in self.nodes if (pid := node.pid()) is not None), None)

    def start(self, *, timeout: float = 120.0) -> float:
        """Start the nodes that are down, together, and wait until the cluster is whole; return the
        seconds it took. A node that fails to start stops the ones this call started."""
        began = time.monotonic()
        self.save_layout()
        self._make_cluster_id()
        launched: dict[int, subprocess.Popen[bytes]] = {}
        down = [node for node in self.nodes if not node.is_running()]
        self._format(down)
        try:
            for node in down:
                launched[node.node_id] = node.launch()
            self.wait_ready(timeout=timeout, processes=launched)
        except BaseException:  # a failure, or Ctrl-C while waiting: leave nothing half started
            for node_id in launched:
                self.node(node_id).stop()
            raise
        return time.monotonic() - began

    @staticmethod
    def _format(nodes: list[LocalBroker]) -> None:
        """Format the nodes that never ran, side by side: each format is a JVM's start-up."""
        new = [node for node in nodes if not node.is_formatted()]
        for node in new:
            node.write_config()
        with ThreadPoolExecutor(max_workers=max(1, len(new))) as pool:
            list(pool.map(lambda node: node.format(), new))

    def wait_ready(self, *, timeout: float, processes: dict[int, subprocess.Popen[bytes]] | None = None) -> None:
        """Block until every node answers with every broker live and the quorum has a leader."""
        processes = processes or {}
        everyone = set(self.node_ids)
        deadline = time.monotonic() + timeout
        waiting = list(self.nodes)
        while time.monotonic() < deadline:
            for node in waiting:
                node.check_exited(processes.get(node.node_id))
            waiting = [
                node
                for node in waiting
                if not port_answers(node.host, node.port) or live_brokers(node.bootstrap) != everyone
            ]
            if not waiting and self.quorum_leader() is not None:
                return
            time.sleep(0.5)
        late = ", ".join(str(node.node_id) for node in waiting) or "none (no quorum leader on record)"
        raise BrokerError(
            f"the cluster on {self.bootstrap} was not whole within {timeout:.0f} s; nodes not answering with "
            f"every broker: {late}; see {self.home}/node-*/logs/server.log"
        )

    def kill(self, node_id: int) -> bool:
        """SIGKILL one node, as a crash would; True if it was running."""
        return self.node(node_id).kill()

    def stop(self, *, timeout: float = 30.0) -> bool:
        """Stop every node (SIGTERM to all at once: each hands its partitions over while the quorum
        still runs); True if any was running."""
        nodes = [node for node in self.nodes if node.is_running()]
        for node in nodes:
            node.signal_stop()
        deadline = time.monotonic() + timeout
        for node in nodes:
            node.stop(timeout=max(1.0, deadline - time.monotonic()))
        return bool(nodes)

    def quorum_leader(self) -> int | None:
        """The node that leads the controller quorum, from the newest epoch the nodes have on record
        (each node keeps its view in ``__cluster_metadata-0/quorum-state``), or None while there is none."""
        newest: tuple[int, int] | None = None
        for node in self.nodes:
            try:
                state = json.loads((node.data_dir / "__cluster_metadata-0" / "quorum-state").read_text())
                epoch, leader = int(state["leaderEpoch"]), int(state["leaderId"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if leader >= 0 and (newest is None or epoch > newest[0]):
                newest = (epoch, leader)
        return None if newest is None else newest[1]

    def partition_leader(self, topic: str, partition: int = 0) -> int:
        """The broker that leads ``topic``'s ``partition`` now."""
        return self.describe_partition(topic, partition).leader

    def describe_partition(self, topic: str, partition: int = 0) -> PartitionState:
        """Who leads one partition, who holds its replicas and who of them is in sync, now."""
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="shouwang-cluster")
        try:
            (described,) = admin.describe_topics([topic])
        finally:
            admin.close()
        for item in described["partitions"]:
            if int(item["partition_index"]) == partition:
                return PartitionState(int(item["leader_id"]), list(item["replica_nodes"]), list(item["isr_nodes"]))
        raise BrokerError(f"{topic} has no partition {partition}")


def cluster_from_settings(settings: Settings, nodes: int) -> LocalCluster:
    """The local cluster of ``nodes`` under SHOUWANG_VAR_DIR: the one running there if any runs (its
    layout is kept in its folder, and a node that is down must come back on its own ports), or the one
    the settings' ports describe (``Settings.embedded_ports``)."""
    home = settings.var_dir / "kafka-cluster"
    running = LocalCluster.load(home, settings.broker_lib_dir)
    if running is not None and running.size == nodes and running.running():
        return running
    ports = settings.model_copy(update={"broker_nodes": nodes}).embedded_ports
    if max(port for pair in ports for port in pair) > 65535:
        raise BrokerError(f"{nodes} nodes need ports up to SHOUWANG_BROKER_PORT + {2 * (nodes - 1)}: lower it")
    return LocalCluster(home, settings.broker_lib_dir, tuple(ports), settings.broker_heap)
