"""The embedded broker's lifecycle against the real thing (its own broker, not the session's); a local
cluster's configuration and the commands that find it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from cli.broker import BrokerError, LocalBroker, free_port, kafka_version, new_cluster_id, port_answers
from cli.cluster import LocalCluster, cluster_from_settings
from shouwang.settings import Settings
from tests.conftest import LIB_DIR

pytestmark = pytest.mark.kafka


def test_jars_are_apache_kafka_4() -> None:
    version = kafka_version(LIB_DIR)
    assert version is not None and version.startswith("4.")


def test_formats_once_starts_stops_and_restarts(tmp_path: Path, kafka_broker: LocalBroker) -> None:
    broker = LocalBroker(
        home=tmp_path / "k", lib_dir=LIB_DIR, port=free_port(), controller_port=free_port(), heap="256m"
    )
    assert not broker.is_formatted() and not broker.is_running()
    broker.start()
    try:
        assert broker.is_formatted()
        meta = (broker.data_dir / "meta.properties").read_text()
        pid = broker.pid()
        assert pid is not None and port_answers("127.0.0.1", broker.port)
        assert "Kafka Server started" in broker.server_log.read_text()
    finally:
        assert broker.stop()
    assert not broker.is_running() and not broker.pid_file.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not port_answers("127.0.0.1", broker.port)
    broker.start()  # second start reuses the formatted storage: same cluster id
    try:
        assert (broker.data_dir / "meta.properties").read_text() == meta
    finally:
        broker.stop()
    assert broker.stop() is False


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        broker = LocalBroker(home=tmp_path / "k", lib_dir=LIB_DIR, port=port, controller_port=free_port())
        with pytest.raises(BrokerError, match=f"port {port} is already in use"):
            broker.start()


def test_missing_jars_are_a_clear_error(tmp_path: Path) -> None:
    broker = LocalBroker(home=tmp_path / "k", lib_dir=tmp_path / "nolib", port=free_port(), controller_port=free_port())
    with pytest.raises(BrokerError, match="no Kafka jars"):
        broker.start()


def test_cluster_ids_never_start_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # kafka-storage reads "-t -w…" as an option: one cluster id in 64 used to fail to format.
    draws = iter([b"\xfb" + bytes(15), bytes(16)])  # the first encodes to "-w…", the second to "AAA…"
    monkeypatch.setattr("cli.broker.secrets.token_bytes", lambda _n: next(draws))
    assert new_cluster_id() == "A" * 22
    monkeypatch.undo()
    ids = {new_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000 and not any(i.startswith("-") for i in ids)


def _cluster(home: Path) -> LocalCluster:
    return LocalCluster(home, LIB_DIR, ((20001, 20002), (20003, 20004), (20005, 20006)))


def test_a_cluster_node_knows_the_quorum_and_replicates_kafkas_own_topics(tmp_path: Path) -> None:
    cluster = _cluster(tmp_path / "c")
    node = cluster.node(2)
    node.write_config()
    props = dict(line.split("=", 1) for line in node.properties_file.read_text().splitlines())
    assert props["node.id"] == "2"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:20002,2@127.0.0.1:20004,3@127.0.0.1:20006"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:20003,CONTROLLER://127.0.0.1:20004"
    assert props["log.dirs"] == str(tmp_path / "c" / "node-2" / "data")
    for key in ("offsets.topic.replication.factor", "transaction.state.log.replication.factor"):
        assert props[key] == "3"
    assert props["transaction.state.log.min.isr"] == props["min.insync.replicas"] == "2"
    assert props["default.replication.factor"] == "3"
    # One cluster id, made at the first start, for every node's format; none before, and no node formats without it.
    assert node.cluster_id is None
    with pytest.raises(BrokerError, match="needs the cluster's id"):
        node.format()
    assert cluster.bootstrap == "127.0.0.1:20001,127.0.0.1:20003,127.0.0.1:20005"


def test_a_cluster_needs_distinct_ports_and_an_odd_quorum(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match="distinct ports"):
        LocalCluster(tmp_path, LIB_DIR, ((20001, 20002), (20001, 20004), (20005, 20006)))
    with pytest.raises(BrokerError, match="3 or 5 nodes"):
        LocalCluster(tmp_path, LIB_DIR, ((20001, 20002), (20003, 20004)))
    with pytest.raises(ValidationError, match="1, 3 or 5"):
        Settings(broker_nodes=2)
    three = Settings(broker_nodes=3, broker_port=29092, broker_controller_port=29093)
    assert three.bootstrap_servers == "127.0.0.1:29092,127.0.0.1:29094,127.0.0.1:29096"  # any node finds the rest
    assert cluster_from_settings(three, 3).ports == ((29092, 29093), (29094, 29095), (29096, 29097))


def _shouwang(var_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOUWANG_")}
    env.update(SHOUWANG_VAR_DIR=str(var_dir), SHOUWANG_BROKER_LIB_DIR=str(LIB_DIR), SHOUWANG_BROKER_PORT="29192")
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_status_and_stop_find_a_cluster_by_its_folder(tmp_path: Path) -> None:
    """The bookkeeping only (layout file, pid files, signals), with sleeping stand-ins named like the
    broker for two of the three nodes; a real cluster's start and status: tests/integration/test_cluster.py."""
    cluster = _cluster(tmp_path / "kafka-cluster")
    cluster.save_layout()
    stand_ins = []
    for node in cluster.nodes[:2]:
        node.home.mkdir(parents=True)
        stand_in = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(120)", "kafka.Kafka"], start_new_session=True
        )
        node.pid_file.write_text(f"{stand_in.pid}\n")
        stand_ins.append(stand_in)
    reapers = [threading.Thread(target=s.wait, daemon=True) for s in stand_ins]  # `stop` waits for them to go
    for reaper in reapers:
        reaper.start()
    status = _shouwang(tmp_path, "broker", "status")
    assert status.returncode == 1
    assert f"node 1 pid {stand_ins[0].pid}, node 2 pid {stand_ins[1].pid}" in status.stderr
    assert "down: node 3" in status.stderr and cluster.bootstrap in status.stderr
    stopped = _shouwang(tmp_path, "broker", "stop")
    assert stopped.returncode == 0 and stopped.stdout.strip() == "stopped", stopped.stderr
    for reaper in reapers:
        reaper.join(timeout=10)
    assert [s.returncode for s in stand_ins] == [-signal.SIGTERM, -signal.SIGTERM]
    assert cluster.running() == [] and not any(node.pid_file.exists() for node in cluster.nodes)


def test_kafkas_classes_are_archived_once_and_mapped_after(tmp_path: Path) -> None:
    """Which archive flag a broker's JVM gets, and what becomes of the archive it writes (no JVM here:
    that a JVM maps it was measured, docs/RELIABILITY.md)."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "kafka_2.13-4.1.1.jar").write_bytes(b"jar")
    broker = LocalBroker(home=tmp_path / "k", lib_dir=lib, port=free_port(), controller_port=free_port())
    broker.home.mkdir()
    dump = broker.home / "kafka-classes.jsa.new"
    assert broker._class_archive_flags(dump=True) == [f"-XX:ArchiveClassesAtExit={dump}"]  # none yet: write one
    assert broker._class_archive_flags(dump=False) == []
    dump.write_bytes(b"half")
    broker._keep_class_dump(complete=False)  # killed while writing it: dropped
    assert not dump.exists() and not broker.class_archive.exists()
    dump.write_bytes(b"classes")
    broker._keep_class_dump(complete=True)  # stopped cleanly: it becomes the archive of these jars
    assert broker.class_archive.read_bytes() == b"classes" and not dump.exists()
    assert broker._class_archive_flags(dump=True) == [f"-XX:SharedArchiveFile={broker.class_archive}"]
    os.utime(lib / "kafka_2.13-4.1.1.jar", (time.time() + 60, time.time() + 60))  # a newer jar: made again
    assert broker._class_archive_flags(dump=True) == [f"-XX:ArchiveClassesAtExit={dump}"]
