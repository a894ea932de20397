"""CLI commands that talk to Kafka directly: send a reading, send raw lines, tail a topic."""

from __future__ import annotations

import base64
import json
import sys
import time
from datetime import UTC, datetime
from typing import Annotated

import typer
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from shouwang.deadletter import read_headers
from shouwang.durability import DELIVERY
from shouwang.events import EventError, MeterFlag, MeterReading, encode, validate_reading_message
from shouwang.settings import get_settings
from shouwang.topics import Topics


def _producer() -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=get_settings().bootstrap_servers, client_id="shouwang-cli", **DELIVERY)


def send_reading(
    meter_id: Annotated[str, typer.Argument(help="Meter id, e.g. SZ-FT-000123")],
    register_l: Annotated[float, typer.Argument(help="Cumulative register in litres")],
    ts: Annotated[str | None, typer.Option(help="ISO 8601 time with offset (default: now)")] = None,
    flag: Annotated[list[MeterFlag] | None, typer.Option(help="A status flag the meter reports")] = None,
) -> None:
    """Validate one reading and produce it to the readings topic, keyed by meter id."""
    data = {
        "meter_id": meter_id,
        "register_l": register_l,
        "ts": ts or datetime.now(UTC).isoformat(timespec="seconds"),
        "flags": [f.value for f in flag or []],
    }
    try:
        reading = validate_reading_message(data)
    except EventError as exc:
        raise typer.BadParameter(str(exc)) from exc
    assert isinstance(reading, MeterReading)
    producer = _producer()
    metadata = producer.send(
        Topics.from_settings(get_settings()).readings, key=reading.meter_id.encode(), value=encode(reading)
    ).get(timeout=30)
    producer.close()
    typer.echo(f"sent to {metadata.topic}[{metadata.partition}]@{metadata.offset}")


def send_raw(
    key: Annotated[str | None, typer.Option(help="Kafka key for every line")] = None,
    topic: Annotated[str, typer.Option(help="readings, incidents or alerts")] = "readings",
) -> None:
    """Produce each line of standard input as it is (no validation): for integration tests."""
    names = Topics.from_settings(get_settings())
    target = {"readings": names.readings, "incidents": names.incidents, "alerts": names.alerts}.get(topic)
    if target is None:
        raise typer.BadParameter(f"unknown topic {topic!r}; use readings, incidents or alerts")
    producer = _producer()
    count = 0
    for line in sys.stdin.buffer:
        producer.send(target, key=key.encode() if key else None, value=line.rstrip(b"\n"))
        count += 1
    producer.flush(timeout=30)
    producer.close()
    typer.echo(f"sent {count} records to {target}", err=True)


def tail(
    topic: Annotated[str, typer.Argument(help="alerts, deadletter, readings or incidents")],
    from_beginning: Annotated[bool, typer.Option(help="Start at the oldest record")] = True,
    max_records: Annotated[int, typer.Option("--max", help="Stop after this many")] = 0,
    timeout: Annotated[float, typer.Option(help="Stop after this many seconds idle (0: never)")] = 0,
) -> None:
    """Print a topic's records as JSON lines (dead letters with their reason)."""
    names = Topics.from_settings(get_settings())
    name = getattr(names, topic, None)
    if name is None:
        raise typer.BadParameter("choose alerts, deadletter, readings or incidents")
    consumer = KafkaConsumer(
        bootstrap_servers=get_settings().bootstrap_servers, enable_auto_commit=False, client_id="shouwang-tail"
    )
    partitions = [TopicPartition(name, p) for p in sorted(consumer.partitions_for_topic(name) or [])]
    if not partitions:
        raise typer.BadParameter(f"topic {name} does not exist; run `shouwang topics`")
    consumer.assign(partitions)
    (consumer.seek_to_beginning if from_beginning else consumer.seek_to_end)(*partitions)
    seen, idle_since = 0, time.monotonic()
    try:
        while not max_records or seen < max_records:
            batch = consumer.poll(timeout_ms=500)
            if not batch:
                if timeout and time.monotonic() - idle_since > timeout:
                    break
                continue
            idle_since = time.monotonic()
            for records in batch.values():
                for record in records:
                    typer.echo(json.dumps(_record_as_json(record), ensure_ascii=False))
                    seen += 1
    finally:
        consumer.close()


def _record_as_json(record: object) -> dict[str, object]:
    value: bytes | None = getattr(record, "value", None)
    key: bytes | None = getattr(record, "key", None)
    entry: dict[str, object] = {
        "partition": getattr(record, "partition", None),
        "offset": getattr(record, "offset", None),
        "key": key.decode("utf-8", "replace") if key else None,
    }
    headers = read_headers(getattr(record, "headers", None))
    if headers:
        entry["headers"] = headers
    try:
        entry["value"] = json.loads(value) if value is not None else None
    except (ValueError, UnicodeDecodeError):
        entry["value_base64"] = base64.b64encode(value or b"").decode()
    return entry
