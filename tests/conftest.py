"""Session fixtures: a throwaway Apache Kafka broker on free ports, started once for the
whole test session and stopped at the end (tests that need it are marked ``kafka``), and a
three-node cluster likewise, started only if a test asks for it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.broker import LocalBroker, free_port, kafka_version, resolve_jars
from cli.cluster import LocalCluster
from shouwang.settings import REPO_ROOT, Settings
from tests.pg_fixtures import postgres_db_url, postgres_url  # noqa: F401  (fixtures)

LIB_DIR = REPO_ROOT / "broker" / "lib"


# Markers from the fixtures a test uses, so that no test needing a server can be forgotten by
# `make check`, which runs with --no-servers: only the tests that need no broker, database server,
# Prometheus or Chromium.
_SERVER_MARKERS = ("kafka", "postgres", "tools", "slow")
_SERVER_FIXTURES = {"kafka_broker": "kafka", "kafka_cluster": "kafka", "postgres_url": "postgres"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--no-servers",
        action="store_true",
        help="run only the tests that need no Kafka broker, PostgreSQL, Prometheus or Chromium, and are not "
        "marked slow (make check)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for fixture, marker in _SERVER_FIXTURES.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(marker)
    if config.getoption("--no-servers"):
        needs_server = [item for item in items if any(item.get_closest_marker(m) for m in _SERVER_MARKERS)]
        if needs_server:
            config.hook.pytest_deselected(items=needs_server)
            dropped = set(needs_server)
            items[:] = [item for item in items if item not in dropped]


def refuse_servers_when_asked(config: pytest.Config, what: str) -> None:
    """A test that reaches a server under --no-servers lacks its marker: say so instead of starting it."""
    if config.getoption("--no-servers"):
        pytest.fail(f"this test starts {what} but is not marked for it (kafka / postgres / tools)")


def pytest_report_header(config: pytest.Config) -> str:
    return f"Apache Kafka broker for integration tests: {kafka_version(LIB_DIR) or 'jars not resolved yet'}"


@pytest.fixture(scope="session")
def kafka_broker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    refuse_servers_when_asked(request.config, "the Kafka broker")
    resolve_jars(LIB_DIR)
    broker = LocalBroker(
        home=tmp_path_factory.mktemp("kafka"),
        lib_dir=LIB_DIR,
        port=free_port(),
        controller_port=free_port(),
        heap="512m",
    )
    began = time.monotonic()
    broker.start()
    print(f"\nApache Kafka {kafka_version(LIB_DIR)} ready on {broker.bootstrap} in {time.monotonic() - began:.1f} s")
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def kafka_cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """Three KRaft nodes (each a broker and a controller) on free ports: replication 3, min.insync.replicas 2.
    A test that kills a node starts it again before it ends (``LocalCluster.start`` starts those that are down)."""
    refuse_servers_when_asked(request.config, "a Kafka cluster")
    resolve_jars(LIB_DIR)
    # Where `shouwang broker` looks for it with SHOUWANG_VAR_DIR set to the folder above.
    home = tmp_path_factory.mktemp("cluster-var") / "kafka-cluster"
    cluster = LocalCluster.on_free_ports(home, LIB_DIR, nodes=3, heap="384m")
    seconds = cluster.start()
    print(f"\nApache Kafka cluster of 3 nodes ready on {cluster.bootstrap} in {seconds:.1f} s")
    yield cluster
    cluster.stop()


@pytest.fixture
def kafka_settings(kafka_broker: LocalBroker, tmp_path: Path) -> Settings:
    """Settings pointing at the session broker, with topics and a consumer group of this test's own."""
    suffix = uuid.uuid4().hex[:8]
    return Settings(
        kafka_bootstrap=kafka_broker.bootstrap,
        topic_prefix=f"t{suffix}.",
        worker_id=f"worker-{suffix}",
        var_dir=tmp_path / "var",
        worker_web_port=free_port(),
        readings_partitions=4,
        alerts_partitions=2,
    )


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a ``shouwang`` subprocess use these settings."""
    return settings.subprocess_env()
