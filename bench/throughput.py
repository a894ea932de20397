"""The detector worker on a real broker: throughput against a bare consumer, state, recovery, latency.

    .venv/bin/python bench/throughput.py                      # the full benchmark: 3 runs and the state phases
    .venv/bin/python bench/throughput.py --batch 1 --records 50000 --meters 5000 --no-state-phases

Starts a throwaway Apache Kafka broker (8 readings partitions) and, in one run of this script:
  1. produces ``--records`` records of ``--batch`` hourly readings each, round-robin over
     ``--meters`` meters, each meter replaying a real home of the shipped DAIAD slice (so the
     detectors see learned routines and real alert rates);
  2. ``--runs`` times over that topic: a bare aiokafka consumer that only json-decodes each record
     (the ceiling of a Python consumer here), the same consumer with Shouwang's full decode and
     validation, the worker's own work alone in this process (no Kafka, no Faust), and
     ``shouwang worker`` (Faust, all detectors, state in its table) from a fresh consumer group,
     timed by its own metrics, with its CPU per reading; medians are printed. ``--compare-with``
     also runs another checkout's worker after each run's, and prints their ratio;
  3. state phases: ``--state-meters`` more meters (one record each) go through the last worker, then
     its changelog is read for the state bytes per meter, and a new worker process recovers every
     meter's state from it: time until it answers a probe reading, probes lost, peak RSS;
  4. latency: the recovered worker gets a steady ``--rate`` readings/s for ``--seconds`` (the
     meters' next days, plus 20 probe readings/s flagged as bursts) and each probe is timed from
     its send to its `spike` alert on the alerts topic; median and p99.
Nothing here is a test: the figures go to docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.worker_phases import (
    PROCESSED,
    cpu_seconds,
    metric,
    peak_rss_mb,
    quantile,
    recovery,
    start_worker,
    state_bytes,
    steady_load,
    stop_worker,
)
from cli.broker import LocalBroker, free_port, kafka_version
from shouwang.reading_points import decode_reading_points
from shouwang.settings import REPO_ROOT, Settings
from shouwang.topics import Topics
from streams.detection import bank_factory
from streams.processing import ReadingProcessor, SourceRecord
from streams.replay import read_readings
from streams.topic_provisioning import provision_topics

SLICE = REPO_ROOT / "tests" / "data" / "daiad_slice.csv"


def household_records(
    records: int, meters: int, batch: int, *, first_round: int = 0, prefix: str = "M"
) -> Iterator[tuple[bytes, bytes]]:
    """``records`` Kafka records, round-robin over ``meters`` meters, each meter replaying one of the
    real homes of the shipped DAIAD slice from its own starting hour (so detectors see real
    routines, real silences and their real alert rate, not a synthetic ramp)."""
    with SLICE.open(encoding="utf-8") as lines:
        homes = [sorted(points) for points in read_readings(lines, "Europe/Madrid").meters.values()]
    per_meter = (first_round + -(-records // meters)) * batch
    if per_meter > min(len(home) for home in homes):
        raise SystemExit(
            f"{per_meter} readings per meter: the slice's homes have {min(map(len, homes))}; "
            "use more meters or fewer records"
        )
    for i in range(records):
        meter_index, round_index = i % meters, first_round + i // meters
        home = homes[meter_index % len(homes)]
        start = (meter_index * 131) % max(1, len(home) - per_meter)
        first = start + round_index * batch
        points = home[first : first + batch]
        meter = f"{prefix}-{meter_index:06d}"
        if batch == 1:
            ((ts, register),) = points
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
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=32 * 1024 * 1024,
    )
    await consumer.start()
    seen, began = 0, None
    try:
        while seen < records:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            began = began or time.perf_counter()
            for batch in batches.values():
                for record in batch:
                    if validate:
                        decode_reading_points(record.value)
                    else:
                        json.loads(record.value)
                seen += len(batch)
    finally:
        await consumer.stop()
    return seen / (time.perf_counter() - (began or time.perf_counter()))


def processor_rate(settings: Settings, records: list[tuple[bytes, bytes]]) -> float:
    """Records/s of the worker's own work alone, in this process, no Kafka and no Faust: decode,
    validate, the meter's detector bank from its state and back (states kept in a dict). No
    worker that runs the detectors on one core can be faster than this."""
    processor, states = ReadingProcessor(bank_factory(settings)), {}
    began = time.process_time()
    for offset, (key, value) in enumerate(records):
        outcome = processor.process(SourceRecord("bench", 0, offset, key, value), states.get(key))
        states[key] = outcome.state
    return len(records) / (time.process_time() - began)


def worker_rate(settings: Settings, readings: int, log: Path, code: Path | None = None) -> tuple[float, float, float]:
    """Readings/s of a worker that processes ``readings`` readings from its group's position, the
    worker's CPU µs per reading over the same stretch (steadier than the rate on a
    busy machine: time spent waiting for a core is not counted), and its peak RSS in MB."""
    url = f"http://127.0.0.1:{settings.worker_web_port}/metrics"
    worker = start_worker(settings, log, code=code)
    try:
        first = None
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline and worker.poll() is None:
            count = metric(url, PROCESSED)
            if count and first is None:
                first = (time.perf_counter(), count, cpu_seconds(worker.pid))
            if count >= readings and first is not None:
                done = count - first[1]
                return (
                    done / (time.perf_counter() - first[0]),
                    (cpu_seconds(worker.pid) - first[2]) / done * 1e6,
                    peak_rss_mb(worker.pid),
                )
            time.sleep(0.5)  # a scrape costs the worker CPU: not too often
        raise TimeoutError(f"the worker did not finish (see {log})")
    finally:
        stop_worker(worker)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=40_000)
    parser.add_argument("--meters", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=24, help="readings per record (a reading_batch when > 1)")
    parser.add_argument("--state-meters", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=2_000, help="offered readings/s in the latency phase")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--no-state-phases", action="store_true", help="only the throughput runs")
    parser.add_argument(
        "--compare-with",
        type=Path,
        metavar="CHECKOUT",
        help="also run the worker of another checkout (e.g. `git worktree add /tmp/base <commit>`) "
        "after each run's worker, on the same records",
    )
    parser.add_argument(
        "--store", default="memory://", choices=["memory://", "rocksdb://"], help="the worker's table store"
    )
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="shouwang-bench-"))
    broker = LocalBroker(
        home=home / "kafka",
        lib_dir=REPO_ROOT / "broker" / "lib",
        port=free_port(),
        controller_port=free_port(),
        heap="1g",
    )
    broker.start()
    try:
        settings = Settings(
            kafka_bootstrap=broker.bootstrap,
            topic_prefix="bench.",
            var_dir=home / "var",
            readings_partitions=8,
            worker_web_port=free_port(),
            worker_store=args.store,
        )
        provision_topics(settings)
        topics = Topics.from_settings(settings)
        records = list(household_records(args.records, args.meters, args.batch))
        seconds = asyncio.run(produce(broker.bootstrap, topics.readings, records))
        print(
            f"Apache Kafka {kafka_version(broker.lib_dir)}; produced {args.records:,} records of {args.batch} "
            f"readings ({args.meters:,} meters, {args.records // args.meters} records each) in {seconds:.1f} s",
            flush=True,
        )
        results: dict[str, list[float]] = {
            "bare aiokafka, json only": [],
            "bare aiokafka, full validation": [],
            "the worker's own work alone (no Kafka, no Faust)": [],
            "shouwang worker (Faust), all detectors": [],
        }
        if args.compare_with:
            results[f"the worker of {args.compare_with}"] = []
        rss: list[float] = []
        cpu_per_reading: list[float] = []
        for run in range(args.runs):
            results["bare aiokafka, json only"].append(
                asyncio.run(bare_consumer(broker.bootstrap, topics.readings, args.records, validate=False))
            )
            results["bare aiokafka, full validation"].append(
                asyncio.run(bare_consumer(broker.bootstrap, topics.readings, args.records, validate=True))
            )
            results["the worker's own work alone (no Kafka, no Faust)"].append(processor_rate(settings, records))
            run_settings = settings.model_copy(update={"worker_id": f"bench-worker-{run}"})
            provision_topics(run_settings)  # its table's changelog, like `shouwang topics` does
            readings, cpu, peak = worker_rate(run_settings, args.records * args.batch, home / f"w{run}.log")
            results["shouwang worker (Faust), all detectors"].append(readings / args.batch)  # records/s
            cpu_per_reading.append(cpu)
            rss.append(peak)
            if args.compare_with:
                base_settings = settings.model_copy(update={"worker_id": f"bench-base-{run}"})
                provision_topics(base_settings)
                base_readings, _, _ = worker_rate(
                    base_settings, args.records * args.batch, home / f"b{run}.log", code=args.compare_with
                )
                results[f"the worker of {args.compare_with}"].append(base_readings / args.batch)
            print(
                f"run {run + 1}: "
                + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in results.items())
                + f"; worker CPU {cpu:.1f} µs per reading",
                flush=True,
            )
        ceiling = statistics.median(results["bare aiokafka, json only"])
        print(f"\n| consumer | records/s (median of {args.runs}) | readings/s | share of the bare consumer |")
        print("|---|---:|---:|---:|")
        for name, rates in results.items():
            median = statistics.median(rates)
            print(f"| {name} | {median:,.0f} | {median * args.batch:,.0f} | {median / ceiling:.1%} |")
        if args.compare_with:  # each run's two workers ran back to back: their ratio is steadier than either
            ratios = [
                ours / theirs
                for ours, theirs in zip(
                    results["shouwang worker (Faust), all detectors"],
                    results[f"the worker of {args.compare_with}"],
                    strict=True,
                )
            ]
            print(
                f"\nthis worker against that of {args.compare_with}: {statistics.median(ratios):.2f}× "
                f"(median of the runs' ratios: {', '.join(f'{ratio:.2f}' for ratio in ratios)})"
            )
        print(
            f"\nworker CPU {statistics.median(cpu_per_reading):.1f} µs per reading; "
            f"peak RSS {statistics.median(rss):.0f} MB ({args.meters:,} meters)",
            flush=True,
        )
        if not args.no_state_phases:
            state_phases(args, settings.model_copy(update={"worker_id": f"bench-worker-{args.runs - 1}"}), home)
    finally:
        broker.stop()


def state_phases(args: argparse.Namespace, settings: Settings, home: Path) -> None:
    topics = Topics.from_settings(settings)
    bootstrap = settings.bootstrap_servers
    asyncio.run(
        produce(
            bootstrap, topics.readings, household_records(args.state_meters, args.state_meters, args.batch, prefix="S")
        )
    )
    # The last throughput worker's group resumes after its records: only the new meters are left.
    fresh_rate, _, _ = worker_rate(settings, args.state_meters * args.batch, home / "w-state.log")
    print(f"{args.state_meters:,} new meters, one record each: {fresh_rate:,.0f} readings/s", flush=True)
    changelog = f"{settings.worker_id}-meter-state-changelog"
    meters, median_bytes = asyncio.run(state_bytes(bootstrap, changelog, settings.readings_partitions))
    print(f"state: {meters:,} meters in {changelog}, median {median_bytes:,.0f} bytes per meter", flush=True)
    result, worker = recovery(settings, home / "w-recovery.log", topics.readings, topics.alerts)
    try:
        print(
            f"recovery of {meters:,} meters: first probe answered {result.seconds_to_first_alert:.1f} s after "
            f"the process started; probes sent during recovery {result.probes_sent}, lost {result.probes_lost}; "
            f"peak RSS {result.peak_rss_mb:.0f} MB",
            flush=True,
        )
        load = household_records(
            int(args.rate * args.seconds / args.batch) + args.meters,
            args.meters,
            args.batch,
            first_round=args.records // args.meters,
        )
        probes = asyncio.run(
            steady_load(
                bootstrap,
                topics.readings,
                topics.alerts,
                load,
                readings_per_record=args.batch,
                rate=args.rate,
                seconds=args.seconds,
            )
        )
        latencies = probes.latencies_ms()
        print(
            f"latency at {args.rate:,.0f} readings/s offered for {args.seconds:.0f} s: {len(latencies)} of "
            f"{len(probes.sent)} probes answered; median {statistics.median(latencies):.1f} ms, "
            f"p99 {quantile(latencies, 0.99):.1f} ms, max {max(latencies):.1f} ms; "
            f"peak RSS {peak_rss_mb(worker.pid):.0f} MB",
            flush=True,
        )
    finally:
        stop_worker(worker)


if __name__ == "__main__":
    main()
