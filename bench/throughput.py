"""Readings/s of the detector worker against the ceiling of a bare Python consumer, on a real broker.

    .venv/bin/python bench/throughput.py --records 100000 --runs 3

Starts a throwaway Apache Kafka broker, produces N single-reading records (keyed by meter id),
then, on the same topic, measures in each run:
  1. a bare aiokafka consumer that only json-decodes each record (the Python ceiling),
  2. the same consumer running Shouwang's full decode + validation (`decode_reading_message`),
  3. `shouwang worker` (Faust) from a fresh consumer group, timed by its own metrics.
Prints the median of the runs. Nothing here is a test: numbers go to docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shouwang.broker import LocalBroker, free_port, kafka_version
from shouwang.events import decode_reading_message
from shouwang.settings import REPO_ROOT, Settings
from shouwang.topics import Topics
from streams.replay import read_readings
from streams.topics import provision_topics


SLICE = REPO_ROOT / "tests" / "data" / "daiad_slice.csv"


def household_records(records: int, meters: int, batch: int) -> Iterator[tuple[bytes, bytes]]:
    """``records`` Kafka records, round-robin over ``meters`` meters, each meter replaying one of the
    real homes of the shipped DAIAD slice from its own starting hour (so detectors see real
    routines, real silences and their real alert rate, not a synthetic ramp)."""
    with SLICE.open(encoding="utf-8") as lines:
        homes = [sorted(points) for points in read_readings(lines, "Europe/Madrid").meters.values()]
    per_meter = -(-records // meters) * batch
    if per_meter > min(len(home) for home in homes):
        raise SystemExit(f"{per_meter} readings per meter: the slice's homes have {min(map(len, homes))}; "
                         "use more meters or fewer records")
    for i in range(records):
        meter_index, round_index = i % meters, i // meters
        home = homes[meter_index % len(homes)]
        start = (meter_index * 131) % max(1, len(home) - per_meter)
        first = start + round_index * batch
        points = home[first:first + batch]
        meter = f"M-{meter_index:06d}"
        if batch == 1:
            (ts, register), = points
            value = {"meter_id": meter, "ts": ts, "register_l": register}
        else:  # a day (or so) of hourly values in one upload, as NB-IoT meters send them
            value = {"meter_id": meter, "readings": [{"ts": ts, "register_l": register} for ts, register in points]}
        yield meter.encode(), json.dumps(value).encode()


async def produce(bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes]]) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256 * 1024, acks=1)
    await producer.start()
    began = time.perf_counter()
    try:
        pending = []
        for key, value in records:
            pending.append(await producer.send(topic, key=key, value=value))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - began


async def bare_consumer(bootstrap: str, topic: str, records: int, *, validate: bool) -> float:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"bench-{uuid.uuid4().hex[:8]}",
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_bytes=32 * 1024 * 1024)
    await consumer.start()
    seen, began = 0, None
    try:
        while seen < records:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            began = began or time.perf_counter()
            for batch in batches.values():
                for record in batch:
                    if validate:
                        decode_reading_message(record.value)
                    else:
                        json.loads(record.value)
                seen += len(batch)
    finally:
        await consumer.stop()
    return seen / (time.perf_counter() - (began or time.perf_counter()))


def worker_rate(settings: Settings, records: int, log: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOUWANG_")}
    env.update({f"SHOUWANG_{k.upper()}": str(v) for k, v in settings.model_dump(exclude_none=True).items()})
    env["SHOUWANG_LOG_LEVEL"] = "WARNING"
    url = f"http://127.0.0.1:{settings.worker_web_port}/metrics"
    with log.open("wb") as out:
        worker = subprocess.Popen([sys.executable, "-m", "shouwang", "worker"], env=env, stdout=out,
                                  stderr=subprocess.STDOUT)
    try:
        first = None
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            count = _processed(url)
            if count and first is None:
                first = (time.perf_counter(), count)
            if count >= records and first is not None:
                return (count - first[1]) / (time.perf_counter() - first[0])
            time.sleep(0.05)
        raise TimeoutError("the worker did not finish")
    finally:
        worker.terminate()
        worker.wait(timeout=60)


def _processed(url: str) -> float:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            for line in response.read().decode().splitlines():
                if line.startswith("shouwang_worker_readings_processed_total "):
                    return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--meters", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1, help="readings per record (a reading_batch when > 1)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="shouwang-bench-"))
    broker = LocalBroker(home=home / "kafka", lib_dir=REPO_ROOT / "broker" / "lib", port=free_port(),
                         controller_port=free_port(), heap="1g")
    broker.start()
    try:
        settings = Settings(kafka_bootstrap=broker.bootstrap, topic_prefix="bench.", var_dir=home / "var",
                            readings_partitions=8, worker_web_port=free_port())
        provision_topics(settings)
        topic = Topics.from_settings(settings).readings
        seconds = asyncio.run(produce(broker.bootstrap, topic, household_records(args.records, args.meters, args.batch)))
        print(f"Apache Kafka {kafka_version(broker.lib_dir)}; produced {args.records} records of {args.batch} "
              f"readings ({args.meters} meters) in {seconds:.1f} s", flush=True)
        results: dict[str, list[float]] = {"bare aiokafka, json only": [], "bare aiokafka, full validation": [],
                                           "shouwang worker (Faust)": []}
        for run in range(args.runs):
            results["bare aiokafka, json only"].append(
                asyncio.run(bare_consumer(broker.bootstrap, topic, args.records, validate=False)))
            results["bare aiokafka, full validation"].append(
                asyncio.run(bare_consumer(broker.bootstrap, topic, args.records, validate=True)))
            run_settings = settings.model_copy(update={"worker_id": f"bench-worker-{run}"})
            provision_topics(run_settings)  # its table's changelog, like `shouwang topics` does
            readings = worker_rate(run_settings, args.records * args.batch, home / f"w{run}.log")
            results["shouwang worker (Faust)"].append(readings / args.batch)  # records/s, like the others
            print(f"run {run + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in results.items()), flush=True)
        ceiling = statistics.median(results["bare aiokafka, json only"])
        print(f"\n| consumer | records/s (median of {args.runs}) | readings/s | share of the bare consumer |")
        print("|---|---:|---:|---:|")
        for name, rates in results.items():
            median = statistics.median(rates)
            print(f"| {name} | {median:,.0f} | {median * args.batch:,.0f} | {median / ceiling:.0%} |")
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
