"""The embedded broker's lifecycle against the real thing (its own broker, not the session's)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from cli.broker import BrokerError, LocalBroker, free_port, kafka_version, new_cluster_id, port_answers
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
