"""Every producer the product makes waits for all in-sync replicas and is idempotent; the replication
rules the topics and the local cluster share."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path
from typing import cast

import pytest
from aiokafka import AIOKafkaProducer
from faust.transport.drivers.aiokafka import Producer

from shouwang.durability import DELIVERY, durable_producer, min_insync_replicas, replication_for
from shouwang.settings import REPO_ROOT, Settings
from streams.app import create_app

PRODUCT = ("api", "alerts", "cli", "shouwang", "streams")


def test_replication_follows_the_cluster_up_to_three_copies() -> None:
    assert [replication_for(brokers) for brokers in (0, 1, 2, 3, 5)] == [1, 1, 2, 3, 3]
    # A majority of the copies from three on: one broker may be lost without losing an acknowledged
    # record, and one down never stops writes; with two copies, both would be needed to write.
    assert [min_insync_replicas(copies) for copies in (1, 2, 3, 4, 5)] == [1, 1, 2, 3, 3]


def test_the_product_producer_cannot_be_made_weaker() -> None:
    async def made() -> AIOKafkaProducer:
        return durable_producer("127.0.0.1:9", client_id="t", linger_ms=5)  # not started: no broker needed

    producer = asyncio.run(made())
    # aiokafka's own record of what it was given: all in-sync replicas, and the transaction manager
    # that numbers each batch (how the broker recognises a retried one) only an idempotent producer has.
    assert producer._sender._acks == -1 and producer._txn_manager is not None
    with pytest.raises(ValueError, match="acks are fixed"):
        durable_producer("127.0.0.1:9", client_id="t", acks=1)


def test_no_producer_is_made_without_the_delivery_options() -> None:
    """A producer constructed anywhere in the product is made by ``durable_producer``, or passes
    ``**DELIVERY`` (kafka-python's, in the CLI)."""
    found = []
    for package in PRODUCT:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            source = path.read_text()
            if "Producer" not in source:  # parse only what may make one
                continue
            for node in ast.walk(ast.parse(source, str(path))):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name not in ("AIOKafkaProducer", "KafkaProducer"):
                    continue
                spreads = [kw.value for kw in node.keywords if kw.arg is None]
                if not any(isinstance(v, ast.Name) and v.id == "DELIVERY" for v in spreads):
                    found.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    assert found == [], f"producers made without DELIVERY: {found}"


def test_the_workers_faust_producer_is_idempotent_with_acks_all(tmp_path: Path) -> None:
    app = create_app(Settings(var_dir=tmp_path, kafka_bootstrap="127.0.0.1:9"))  # not started: no broker
    producer = cast(Producer, app.producer)
    # What Faust passes to aiokafka for its own producer and for the threaded one alike.
    options = {**producer._settings_default(), **producer._settings_extra()}
    assert {key: options[key] for key in DELIVERY} == DELIVERY
