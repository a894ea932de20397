"""The embedded Apache Kafka broker: one KRaft node (broker + controller) from Maven jars.

``LocalBroker`` formats the storage on first start, launches ``kafka.Kafka`` in its own
process group, waits until the broker answers a metadata request, and stops it with SIGTERM
(SIGKILL only if it will not go). Jars come from ``broker/pom.xml`` via Maven. The same class is
one node of a local cluster (``cli/cluster.py``): its node id, the quorum's voters, the cluster
id and the replication of Kafka's own topics are then given.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from shouwang.durability import min_insync_replicas
from shouwang.settings import REPO_ROOT

POM = REPO_ROOT / "broker" / "pom.xml"
_KAFKA_JAR = re.compile(r"^kafka_2\.13-(?P<version>\d+\.\d+\.\d+)\.jar$")


class BrokerError(RuntimeError):
    """The local broker could not be prepared, started or stopped."""


def resolve_jars(lib_dir: Path, *, pom: Path = POM) -> None:
    """Copy the broker's runtime jars into ``lib_dir`` with Maven unless already there."""
    if kafka_version(lib_dir) is not None:
        return
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError("Maven (mvn) is not installed; `make up` installs it, or run `apt-get install maven`")
    lib_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={lib_dir}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or kafka_version(lib_dir) is None:
        tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
        raise BrokerError("Maven could not resolve the broker jars: " + " | ".join(tail))


def kafka_version(lib_dir: Path) -> str | None:
    """The Apache Kafka version of the jars in ``lib_dir``, or None if they are missing."""
    if not lib_dir.is_dir():
        return None
    for jar in lib_dir.iterdir():
        match = _KAFKA_JAR.match(jar.name)
        if match:
            return match.group("version")
    return None


def new_cluster_id() -> str:
    """16 random bytes, base64url without padding: the form ``kafka-storage`` expects. Never one
    that starts with "-", which its command line reads as an option (1 in 64 would fail to format),
    as Kafka's own ``Uuid.randomUuid`` avoids."""
    while True:
        cluster_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def port_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A loopback port that is free now and stays free until someone listens on it.

    Picked below the kernel's ephemeral range: a port the kernel handed out for `bind(0)` can be
    taken by any outgoing connection (Kafka clients open many) before the caller binds it.
    """
    low, _high = _ephemeral_range()
    generator = secrets.SystemRandom()
    for _ in range(200):
        port = generator.randrange(20000, max(20001, min(low, 32768)))
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket() as sock:  # a crowded range: fall back to the kernel's choice
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class LocalBroker:
    """One KRaft node (broker and controller) whose state lives in ``home``: alone, or one of a
    local cluster when ``voters`` names the whole controller quorum."""

    home: Path
    lib_dir: Path
    port: int
    controller_port: int
    heap: str = "768m"
    host: str = "127.0.0.1"
    node_id: int = 1
    voters: str = ""  # controller.quorum.voters, `id@host:port,…`; empty: this node alone
    cluster_id: str | None = None  # formatted with this id; None: a new one (a single node)
    replicas: int = 1  # replication of Kafka's own topics (offsets, transactions): the cluster's size
    extra_config: tuple[tuple[str, str], ...] = ()  # further server properties (a cluster's timeouts)
    jvm_options: tuple[str, ...] = ()

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def pid_file(self) -> Path:
        return self.home / "broker.pid"

    @property
    def properties_file(self) -> Path:
        return self.home / "server.properties"

    @property
    def server_log(self) -> Path:
        return self.log_dir / "server.log"

    def _classpath(self) -> str:
        return str(self.lib_dir / "*")

    def _java(self) -> str:
        java = shutil.which("java")
        if java is None:
            raise BrokerError(
                "Java 17+ is required for the local Kafka broker (`apt-get install openjdk-17-jre-headless`)"
            )
        return java

    def write_config(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        replicas, min_isr = str(self.replicas), str(min_insync_replicas(self.replicas))
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.voters or f"{self.node_id}@{self.host}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "offsets.topic.replication.factor": replicas,
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": min_isr,
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": min_isr,
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            "log.retention.check.interval.ms": "60000",
            **dict(self.extra_config),
        }
        text = "".join(f"{key}={value}\n" for key, value in props.items())
        self.properties_file.write_text(text)
        (self.home / "log4j2.properties").write_text(_LOG4J2_PROPERTIES)

    def is_formatted(self) -> bool:
        return (self.data_dir / "meta.properties").exists()

    def format(self) -> None:
        if self.voters and self.cluster_id is None:  # a node formatted alone could never join the others
            raise BrokerError(f"node {self.node_id} of a cluster needs the cluster's id to be formatted")
        result = subprocess.run(
            [
                self._java(),
                "-cp",
                self._classpath(),
                *self._class_archive_flags(dump=False),
                *self._log_flags(),
                "kafka.tools.StorageTool",
                "format",
                "-t",
                self.cluster_id or new_cluster_id(),
                "-c",
                str(self.properties_file),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            detail = result.stderr.strip() or result.stdout.strip()
            raise BrokerError(f"formatting {self.data_dir} failed: {detail}")

    @property
    def class_archive(self) -> Path:
        """Kafka's classes as the JVM had them loaded, shared by every broker of these jars (CDS)."""
        return self.lib_dir / "kafka-classes.jsa"

    @property
    def _class_dump(self) -> Path:
        return self.home / "kafka-classes.jsa.new"

    def _class_archive_flags(self, *, dump: bool) -> list[str]:
        """Map the class archive if it is current; else have this broker write one when it stops.

        A JVM loads and verifies Kafka's classes one by one at every start: about half of a start's CPU,
        which three nodes starting on two cores wait for. A JVM that cannot use the archive (another Java,
        other jars) ignores it and loads them as before; one older than the newest jar is made again."""
        archive = self.class_archive
        jars = [jar.stat().st_mtime for jar in self.lib_dir.glob("*.jar")]
        if archive.exists() and archive.stat().st_size > 0 and archive.stat().st_mtime >= max(jars, default=0):
            return [f"-XX:SharedArchiveFile={archive}"]
        if dump:
            self._class_dump.unlink(missing_ok=True)
            return [f"-XX:ArchiveClassesAtExit={self._class_dump}"]
        return []

    def _keep_class_dump(self, *, complete: bool) -> None:
        """Put the archive a stopped broker wrote in its place (atomically: other brokers may be reading
        it, or writing theirs); drop one a killed broker may have left half written."""
        dump = self._class_dump
        if not dump.exists():
            return
        if complete and dump.stat().st_size > 0:
            with contextlib.suppress(OSError):  # a read-only jar folder: start without it next time
                staged = self.class_archive.with_name(f"{self.class_archive.name}.{secrets.token_hex(4)}")
                shutil.copyfile(dump, staged)
                os.replace(staged, self.class_archive)
        dump.unlink(missing_ok=True)

    def _log_flags(self) -> list[str]:
        return [f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}", f"-Dkafka.logs.dir={self.log_dir}"]

    def pid(self) -> int | None:
        """The broker's pid if its process is alive."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid if _is_kafka_process(pid) else None

    def is_running(self) -> bool:
        return self.pid() is not None

    def start(self, *, timeout: float = 90.0) -> float:
        """Start the broker (formatting first if needed); return seconds until it answered."""
        if self.is_running():
            self.wait_ready(timeout=timeout)
            return 0.0
        began = time.monotonic()
        process = self.launch()
        try:
            self.wait_ready(timeout=timeout, process=process)
        except BrokerError:
            self.stop()
            raise
        return time.monotonic() - began

    def launch(self) -> subprocess.Popen[bytes]:
        """Start the broker's process (formatting first if needed) without waiting for it: a node
        of a cluster answers only once a majority of the quorum runs."""
        if kafka_version(self.lib_dir) is None:
            raise BrokerError(f"no Kafka jars in {self.lib_dir}; run `make broker-jars`")
        for port in (self.port, self.controller_port):
            if port_answers(self.host, port):
                raise BrokerError(
                    f"port {port} is already in use; set SHOUWANG_BROKER_PORT / "
                    "SHOUWANG_BROKER_CONTROLLER_PORT or stop what listens there"
                )
        self.write_config()
        if not self.is_formatted():
            self.format()
        console = (self.log_dir / "console.log").open("ab")
        process = subprocess.Popen(
            [
                self._java(),
                "-Xms128m" if self.voters else "-Xms256m",
                f"-Xmx{self.heap}",
                "-XX:+UseG1GC",
                "-Djava.awt.headless=true",
                *self.jvm_options,
                *self._class_archive_flags(dump=True),
                *self._log_flags(),
                "-cp",
                self._classpath(),
                "kafka.Kafka",
                str(self.properties_file),
            ],
            stdout=console,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the terminal reaches us, and we stop it cleanly
        )
        console.close()
        self.pid_file.write_text(f"{process.pid}\n")
        return process

    def wait_ready(self, *, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
        """Block until the broker answers a metadata request with itself as a live broker."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_exited(process)
            if port_answers(self.host, self.port) and live_brokers(self.bootstrap):
                return
            time.sleep(0.25)
        raise BrokerError(
            f"the broker did not answer on {self.bootstrap} within {timeout:.0f} s; see {self.server_log}"
        )

    def check_exited(self, process: subprocess.Popen[bytes] | None) -> None:
        """Raise, with the log's last lines, if the broker's process has exited."""
        if process is not None and process.poll() is not None:
            raise BrokerError(
                f"the broker (node {self.node_id}) exited with code {process.returncode}; "
                f"last lines of {self.server_log}: {self._log_tail()}"
            )

    def kill(self) -> bool:
        """SIGKILL the broker, as a crash would; True if one was running."""
        pid = self.pid()
        if pid is None:
            return False
        _signal_group(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        self._keep_class_dump(complete=False)
        return True

    def signal_stop(self) -> None:
        """Ask the broker to stop (SIGTERM) without waiting for it."""
        pid = self.pid()
        if pid is not None:
            _signal_group(pid, signal.SIGTERM)

    def stop(self, *, timeout: float = 30.0) -> bool:
        """Stop the broker; True if one was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            self._keep_class_dump(complete=True)  # it stopped by itself (a cluster's stop signals all first)
            return False
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        killed = _alive(pid)
        if killed:
            _signal_group(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        self._keep_class_dump(complete=not killed)
        return True

    def _log_tail(self, lines: int = 5) -> str:
        for path in (self.server_log, self.log_dir / "console.log"):
            if path.exists():
                tail = path.read_text(errors="replace").strip().splitlines()[-lines:]
                return " | ".join(tail)
        return "(no log)"


def _alive(pid: int) -> bool:
    try:
        waited_pid, _ = os.waitpid(pid, os.WNOHANG)
        if waited_pid == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _is_kafka_process(pid: int) -> bool:
    """Guard against a stale pid file naming an unrelated process."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc: trust the pid file
    return b"kafka.Kafka" in cmdline


def live_brokers(bootstrap: str) -> set[int]:
    """The ids of the brokers the cluster's metadata lists as live (empty if it does not answer)."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000, client_id="shouwang-readiness")
    except (KafkaError, OSError, ValueError):
        return set()
    try:
        cluster = admin.describe_cluster()
        return {int(broker["broker_id"]) for broker in cluster.get("brokers", []) if not broker.get("is_fenced")}
    except (KafkaError, OSError, ValueError):
        return set()
    finally:
        admin.close()


_LOG4J2_PROPERTIES = """\
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.filePattern = ${sys:kafka.logs.dir}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
"""
