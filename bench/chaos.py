"""The fault run: Shouwang under load on a three-broker Kafka cluster, with two workers, two routers and
PostgreSQL, while faults are injected at random moments from a seeded schedule; then the invariants.

    .venv/bin/python bench/chaos.py                                # 15 minutes of load, seed 1
    .venv/bin/python bench/chaos.py --minutes 30 --seed 7 --json var/chaos-7.json
    .venv/bin/python bench/chaos.py --short --minutes 1 --meters 300   # the short form (in tests/chaos/)

The stack: a local cluster from the broker's jars (3 KRaft nodes, topics with 3 replicas and
min.insync.replicas 2; ``--nodes 1``: one broker and no broker faults), a throwaway PostgreSQL server, two
``shouwang worker`` and two ``shouwang router`` processes, and webhook receivers on loopback that record every
POST with its ``webhook-id``. The load (bench/chaos_load.py): ``--meters`` households' hourly readings, one
event hour per tick (``--tick-s``), each household enrolled with a family member and its cell's grid worker
subscribed, and bursts on a meter of each readings partition every tick, whose ``spike`` alerts (raised and
resolved) are known in advance. Faults (bench/chaos_faults.py) come one after another: each a random gap
after the pipeline caught up from the last.

At the end, each a number in the report: every alert the same readings give without a fault was raised
(alerts topic) and every notification reached every subscriber (receivers); no (alert, transition,
recipient) under two webhook-ids; duplicates with one webhook-id counted; each meter's final state (its
changelog's newest value) equal to the fault-free replay's (readings not reflected counted); the time from
each fault to the pipeline caught up (bench/chaos_check.py says how that is measured). Webhook retries run
on a compressed schedule (``RETRY_SCHEDULE``): a receiver down for a minute here stands for one down for
ten minutes or more under the product's schedule. Nothing here is a test: figures go to docs/RELIABILITY.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts.db import Store
from alerts.secret_box import secret_box
from bench.chaos_check import (
    TYPES,
    AlertRef,
    Key,
    caught_up_so_far,
    check_alerts,
    check_notifications,
    check_states,
    expected_notifications,
    normal_latency,
    recovery,
)
from bench.chaos_faults import CLUSTER_KINDS, Fault, Injector, Profile, draw_schedule
from bench.chaos_load import TZ, Load, Probe, comparable_state, last_reading_ts, replay
from bench.chaos_options import RETRY_SCHEDULE, SHORT, parse
from bench.chaos_receivers import Receivers
from bench.chaos_report import collect, find_left_out, invariants_hold, probe_times, timeline
from bench.chaos_samples import Sampler, metrics_page, worker_figures
from bench.chaos_stack import Kafka, Postgres, Service, enrol, start_kafka
from cli.broker import LocalBroker, free_port, resolve_jars
from cli.cluster import LocalCluster
from shouwang.durability import durable_producer, replication_for
from shouwang.settings import REPO_ROOT, Settings
from shouwang.topics import Topics
from streams.topic_provisioning import provision_topics
from tests.kafka_helpers import wait_http

LIB_DIR = REPO_ROOT / "broker" / "lib"
RECEIVERS = 4


STUCK_S = 60.0  # a worker alive that processes nothing this long while the load flows is stuck
SAMPLE_S = 5.0  # how often the workers' figures and the processes' CPU are sampled for the report


def log(message: str) -> None:
    print(f"{datetime.now(UTC):%H:%M:%S} {message}", file=sys.stderr, flush=True)


class ChaosRun:
    def __init__(self, args: argparse.Namespace, kafka: Kafka | None) -> None:
        self.args = args
        self.kafka_given = kafka
        self.home = Path(args.run_dir or tempfile.mkdtemp(prefix="shouwang-chaos-"))
        self.home.mkdir(parents=True, exist_ok=True)
        self.rng = random.Random(args.seed)
        self.receivers = Receivers(RECEIVERS)
        self.postgres = Postgres()
        self.services: list[Service] = []
        self.probes: list[tuple[Probe, float]] = []  # each probe and when its record was sent
        self.records: list[tuple[bytes, bytes]] = []
        self.readings_sent = 0
        self.invalid_sent = 0
        self.unexpected_exits: list[str] = []
        self.stuck: list[str] = []  # workers that processed nothing for STUCK_S while alive
        self.loading = False
        self.send_retries = 0
        self.faults_left_out = 0
        self.origin = 0.0

    # -- the stack ------------------------------------------------------------------------------------------

    def start(self) -> None:
        began = time.monotonic()
        if self.kafka_given is not None:
            self.kafka = self.kafka_given
        else:
            resolve_jars(LIB_DIR)
            self.kafka = start_kafka(self.home / "kafka", LIB_DIR, nodes=self.args.nodes)
        suffix = uuid.uuid4().hex[:8]
        self.settings = Settings(
            kafka_bootstrap=self.kafka.bootstrap,
            topic_prefix=f"chaos{suffix}.",
            worker_id=f"chaos-worker-{suffix}",
            router_id=f"chaos-router-{suffix}",
            var_dir=self.home / "var",
            readings_partitions=self.args.partitions,
            alerts_partitions=4,
            replication_factor=replication_for(self.kafka.size),
            household_tz=TZ,
            offline_check_s=3600.0,  # event time is in March 2026: the wall clock would find every meter silent
            database_url=self.postgres.start(),
            webhook_allow_hosts="127.0.0.0/8",
            webhook_retry_schedule=RETRY_SCHEDULE,
            webhook_timeout_s=4.0,
            webhook_lease_s=6.0,
        )
        self.postgres_synchronous_commit = self.postgres.synchronous_commit()
        self.topics = Topics.from_settings(self.settings)
        provision_topics(self.settings)
        store = Store(str(self.settings.database_url))  # migrated before any router starts
        env = self.settings.subprocess_env()
        logs = self.home / "logs"
        logs.mkdir(exist_ok=True)
        self.workers = [
            Service(f"worker-{n}", ["worker"], {**env, "SHOUWANG_WORKER_WEB_PORT": str(free_port())}, logs)
            for n in (1, 2)
        ]
        self.routers = [
            Service(f"router-{n}", ["router"], {**env, "SHOUWANG_ROUTER_METRICS_PORT": str(free_port())}, logs)
            for n in (1, 2)
        ]
        self.services = [*self.workers, *self.routers]
        for service in self.services:
            service.start()
        self.subscribers = enrol(store, secret_box(self.settings), self.receivers, self._load().meters)  # meanwhile
        store.close()
        for service in self.services:
            key = "SHOUWANG_WORKER_WEB_PORT" if service in self.workers else "SHOUWANG_ROUTER_METRICS_PORT"
            wait_http(f"http://127.0.0.1:{service.env[key]}/metrics", timeout=120, process=service.process)
        for worker in self.workers:  # both in the group and recovered, so the baseline is a calm one
            self._wait_log(worker, "Worker ready", 120)
        log(f"stack up in {time.monotonic() - began:.0f} s: Kafka {self.kafka.bootstrap} ({self.kafka.size} node(s))")

    def _wait_log(self, service: Service, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in service.log.read_text(errors="replace"):
            if time.monotonic() > deadline or service.process is None or service.process.poll() is not None:
                raise RuntimeError(f"{service.name}: no {text!r} in its log: {service.tail()}")
            time.sleep(0.3)

    def _load(self) -> Load:
        return Load(self.args.meters, self.args.partitions, seed=self.args.seed, probes_per_tick=self.args.probes)

    def stop(self) -> dict[str, int | None]:
        codes = {service.name: service.stop() for service in self.services}
        self.receivers.stop()
        self.postgres.stop()
        if self.kafka_given is None:
            self.kafka.broker.stop()
        if not self.args.keep and not self.args.run_dir:
            shutil.rmtree(self.home, ignore_errors=True)
        return codes

    # -- the run --------------------------------------------------------------------------------------------

    async def produce(self, load: Load, ticks: int) -> None:
        producer = durable_producer(self.settings.bootstrap_servers, client_id="chaos-load", linger_ms=20)
        await producer.start()
        try:
            for number in range(ticks):
                await asyncio.sleep(max(0.0, self.origin + number * self.args.tick_s - time.monotonic()))
                tick = load.tick(number)
                sent = time.monotonic()
                await self._send_all(producer, tick.records)
                self.records.extend(tick.records)
                self.probes.extend((probe, sent) for probe in tick.probes)
                self.readings_sent += tick.readings
                self.invalid_sent += tick.invalid
        finally:
            await producer.stop()

    async def _send_all(self, producer: Any, records: list[tuple[bytes, bytes]]) -> None:
        """Every record acknowledged by the in-sync replicas before the next tick: a record that failed is sent
        again (its meter has no later one in flight, so its readings stay in order)."""
        pending = records
        while pending:
            futures: list[Any] = []
            for key, value in pending:
                try:
                    futures.append(await producer.send(self.topics.readings, key=key, value=value))
                except Exception as exc:  # noqa: BLE001 - e.g. no leader for the moment: sent again below
                    futures.append(exc)
            results = await asyncio.gather(
                *(f for f in futures if not isinstance(f, Exception)), return_exceptions=True
            )
            outcomes = iter(results)
            failed = [
                record
                for record, future in zip(pending, futures, strict=True)
                if isinstance(future, Exception) or isinstance(next(outcomes), Exception)
            ]
            if failed:
                self.send_retries += len(failed)
                await asyncio.sleep(0.5)
            pending = failed

    async def inject(self, injector: Injector, faults: list[Fault], gaps: list[float], profile: Profile) -> None:
        """The faults in turn, each gap after the catch-up from the last fault; one that would end in the quiet
        tail is left out (the schedule, drawn without those waits, plans more than fit)."""
        last_end = self.origin + self.args.minutes * 60 - profile.quiet_tail_s
        for number, (fault, gap) in enumerate(zip(faults, gaps, strict=True)):
            if number and profile.catch_up_wait_s:
                fault.waited_s = await self._catch_up(faults[0], faults[number - 1], profile.catch_up_wait_s)
            await asyncio.sleep(gap)
            if profile.catch_up_wait_s and time.monotonic() + fault.duration_s > last_end:  # pushed by the waits
                self.faults_left_out = len(faults) - number
                log(f"{self.faults_left_out} planned faults left out: the load ends before they would")
                return
            log(f"fault: {fault.kind} for {fault.duration_s:.0f} s")
            await asyncio.to_thread(injector.run, fault)
            log(f"  {fault.target} back after {(fault.ended or 0) - (fault.began or 0):.0f} s")

    async def _catch_up(self, first: Fault, last: Fault, longest_s: float) -> float:
        """Seconds until the pipeline caught up from ``last`` as the report measures it (``caught_up_so_far``),
        at most ``longest_s``: one that does not catch up shows in the recovery figures, not as a hung run."""
        began = time.monotonic()
        accepted: dict[Key, float] = {}
        seen = 0
        while time.monotonic() - began < longest_s:
            posts = self.receivers.posts[seen:]
            seen += len(posts)
            for post in posts:
                if post.alert_id and 200 <= post.status < 300:
                    accepted.setdefault((post.alert_id, post.type, post.recipient), post.received)
            bursts = [(probe.partition, sent, self._burst_keys(probe)) for probe, sent in list(self.probes)]
            if caught_up_so_far(bursts, accepted, first.began or 0.0, last.began or 0.0):
                break
            await asyncio.sleep(1.0)
        waited = time.monotonic() - began
        if waited >= 2.0:
            log(f"  caught up after {waited:.0f} s")
        return waited

    def _burst_keys(self, probe: Probe) -> list[Key]:
        """The notifications that make a burst through: its raise and its all-clear to each subscriber."""
        recipients = self.subscribers[probe.meter]
        return [(probe.alert_id, kind, recipient) for kind in TYPES.values() for recipient in recipients]

    async def watch(self, stop: asyncio.Event) -> None:
        """A process that exits when no fault was meant to stop it is a finding: recorded and started again. So is
        a worker alive that processes nothing for ``STUCK_S`` while the load flows: its threads' stacks are
        asked for (bench/chaos_process.py), recorded with its log's end, and it is killed and started again."""
        progress: dict[str, tuple[float | None, float]] = {}  # worker -> (readings processed, since when)
        sampled = 0.0
        while not stop.is_set():
            if time.monotonic() - sampled >= SAMPLE_S:
                sampled = time.monotonic()
                await asyncio.to_thread(self._sample, sampled)
            for service in self.services:
                if not service.faulted and service.died():
                    self.unexpected_exits.append(f"{service.name} exited with {service.exits[-1]}: {service.tail(800)}")
                    log(f"{service.name} exited unexpectedly ({service.exits[-1]}); started again")
                    service.start()
            now = time.monotonic()
            for worker in self.workers:
                if worker.faulted or worker.pid is None or not self.loading:
                    progress.pop(worker.name, None)
                    continue
                page = await asyncio.to_thread(metrics_page, worker.env["SHOUWANG_WORKER_WEB_PORT"])
                count = None if page is None else worker_figures(page, self.topics.readings)["processed"]
                last, since = progress.get(worker.name, (None, now))
                if count is not None and count != last:
                    progress[worker.name] = (count, now)
                elif now - since > STUCK_S:
                    await asyncio.to_thread(self._unstick, worker)
                    progress.pop(worker.name, None)
                else:
                    progress[worker.name] = (last, since)
            await asyncio.sleep(1.0)

    def _sample(self, now: float) -> None:
        """Each worker's figures and each process's CPU (bench/chaos_samples.py), for the report."""
        pids: dict[str, int | None] = {service.name: service.pid for service in self.services}
        cluster = self.kafka.cluster
        for node in cluster.nodes if cluster is not None else ():
            pids[f"kafka-{node.node_id}"] = node.pid()
        pids["run"] = os.getpid()  # the load, the receivers and this watch
        pages = {
            worker.name: None if worker.pid is None else metrics_page(worker.env["SHOUWANG_WORKER_WEB_PORT"])
            for worker in self.workers
        }
        self.sampler.sample(now, pages, pids)

    def _unstick(self, worker: Service) -> None:
        worker.faulted = True
        worker.signal(signal.SIGUSR1)
        time.sleep(2.0)
        self.stuck.append(f"{worker.name} processed nothing for {STUCK_S:.0f} s: {worker.tail(6000)}")
        log(f"{worker.name} processed nothing for {STUCK_S:.0f} s; its stacks are in its log; started again")
        worker.kill()
        worker.start()
        worker.faulted = False

    async def drive(self) -> list[Fault]:
        load = self._load()
        ticks = int(self.args.minutes * 60 / self.args.tick_s)
        kinds = tuple(k for k in self.args.faults if self.kafka.cluster is not None or k not in CLUSTER_KINDS)
        profile = SHORT if self.args.short else Profile()
        schedule = draw_schedule(self.args.seed, ticks * self.args.tick_s, profile, kinds)
        injector = Injector(
            rng=random.Random(self.args.seed + 1),
            kafka=self.kafka,
            readings_topic=self.topics.readings,
            partitions=self.args.partitions,
            workers=self.workers,
            routers=self.routers,
            postgres=self.postgres,
            receivers=self.receivers,
        )
        log(f"load: {ticks} ticks of {self.args.tick_s} s; {len(schedule.faults)} faults planned")
        stop = asyncio.Event()
        self.origin = time.monotonic()
        self.sampler = Sampler(self.origin, self.topics.readings)
        watch = asyncio.create_task(self.watch(stop))
        self.loading = True
        await asyncio.gather(self.produce(load, ticks), self.inject(injector, schedule.faults, schedule.gaps, profile))
        self.loading = False
        log(f"load over: {self.readings_sent} readings, {len(self.probes)} bursts; waiting for the pipeline")
        began = time.monotonic()
        await asyncio.to_thread(self._drain)
        log(f"pipeline through in {time.monotonic() - began:.0f} s")
        if self.kafka.cluster is not None:  # a node killed last is whole again before the topics are read
            await asyncio.to_thread(self.kafka.restart)
        stop.set()
        await watch
        return schedule.faults

    def _drain(self) -> None:
        """Until every burst's all-clear reached each subscriber (or the drain time is up), then a few seconds
        for any late duplicate."""
        owed: dict[str, int] = {}
        for probe, _ in self.probes:
            for recipient in self.subscribers[probe.meter]:
                owed[recipient] = owed.get(recipient, 0) + 1
        deadline = time.monotonic() + self.args.drain_s
        while time.monotonic() < deadline:
            told: dict[str, set[str]] = {}
            for post in list(self.receivers.posts):
                if post.type == "alert.resolved" and 200 <= post.status < 300 and post.alert_id:
                    told.setdefault(post.recipient, set()).add(post.alert_id)
            if all(len(told.get(recipient, ())) >= count for recipient, count in owed.items()):
                break
            time.sleep(1.0)
        time.sleep(self.args.settle_s)

    # -- the invariants -------------------------------------------------------------------------------------

    def report(
        self,
        faults: list[Fault],
        exit_codes: dict[str, int | None],
        seen_alerts: list[Any],
        changelog: dict[str, bytes],
        dead_letters: int,
        ran_s: float,
    ) -> dict[str, Any]:
        settings = self.settings
        began = time.monotonic()
        expected = replay(settings, self.records)
        log(f"fault-free replay of {len(self.records)} records in {time.monotonic() - began:.0f} s")
        refs = [AlertRef(a.alert_id, a.event, a.meter_id or "") for a in expected.alerts.values()]
        wanted = expected_notifications(refs, self.subscribers)
        posts = list(self.receivers.posts)
        if self.home.exists():  # a kept run folder: every POST, for a look after the run
            with (self.home / "posts.jsonl").open("w") as out:
                for post in posts:
                    out.write(json.dumps({**post.__dict__, "received": round(post.received - self.origin, 3)}) + "\n")
        notifications = check_notifications(wanted, posts)
        alerts = check_alerts(
            set(expected.alerts),
            [(v["alert_id"], v["event"], raw) for raw, v in ((r.value, json.loads(r.value)) for r in seen_alerts)],
        )
        comparable = {m: comparable_state(settings, s) for m, s in changelog.items() if m in expected.states}
        final_last = {m: last_reading_ts(settings, s) for m, s in changelog.items() if m in expected.states}
        states = check_states(
            expected.states,
            expected.last_ts,
            expected.readings_of,
            final_last,
            comparable,
            find_left_out(settings, self.records, expected.states, expected.last_ts, final_last, comparable),
        )
        probes, unknown_probes = probe_times(
            expected, self.probes, self.subscribers, notifications.first_accepted, seen_alerts
        )
        injected = [f for f in faults if f.began is not None and f.ended is not None]
        first_fault = min((f.began for f in injected if f.began is not None), default=float("inf"))
        baseline, normal = normal_latency(probes, first_fault)
        recovered = recovery([(f.began or 0.0, f.ended or 0.0) for f in injected], probes, normal)
        table = []
        for fault, (from_start, from_end) in zip(injected, recovered, strict=True):
            table.append({**fault.as_dict(self.origin), "caught_up_after_s": from_start, "after_restored_s": from_end})
        latencies = sorted(p.latency for p in probes if p.latency is not None)
        worst_end = [r[1] for r in recovered if r[1] is not None]
        result: dict[str, Any] = {
            "seed": self.args.seed,
            "ran_s": round(ran_s),
            "load_minutes": self.args.minutes,
            "kafka_nodes": self.kafka.size,
            "tick_s": self.args.tick_s,
            "bursts_per_tick": self.args.probes,
            "retry_schedule": RETRY_SCHEDULE,
            "meters": self.args.meters,
            "readings_partitions": self.args.partitions,
            "records_sent": len(self.records),
            "readings_sent": self.readings_sent,
            "valid_readings": expected.readings,
            "invalid_records_sent": self.invalid_sent,
            "dead_letters_from_readings": dead_letters,
            "sends_retried": self.send_retries,
            "bursts": len(self.probes),
            "bursts_without_alert_in_replay": unknown_probes,
            "faults_injected": len(injected),
            "faults_left_out": self.faults_left_out,
            "faults": table,
            **alerts,
            **notifications.summary(),
            **states,
            "latency_baseline_median_s": round(baseline, 2),
            "latency_caught_up_below_s": round(normal, 2),
            "latency_p50_s": round(latencies[len(latencies) // 2], 2) if latencies else None,
            "latency_max_s": round(latencies[-1], 2) if latencies else None,
            "longest_recovery_after_restored_s": max(worst_end, default=0.0),
            "longest_recovery_from_fault_s": max((r[0] or 0.0 for r in recovered), default=0.0),
            "never_caught_up": sum(r[0] is None for r in recovered),
            "latency_timeline": timeline(probes, self.origin),
            "unexpected_exits": self.unexpected_exits,
            "stuck_workers": self.stuck,
            "samples": self.sampler.samples,
            "postgres_synchronous_commit": self.postgres_synchronous_commit,
            "exit_codes": exit_codes,
        }
        result["invariants_hold"] = invariants_hold(result)
        return result


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None, *, kafka: LocalBroker | LocalCluster | None = None) -> dict[str, Any]:
    """Run it; ``kafka``: a broker or cluster already running (the test session's), else one is started."""
    args = parse(argv, (__doc__ or "").split("\n\n")[0])
    if kafka is None:  # run as a script: SIGTERM stops it as Ctrl-C does, its processes and servers with it
        signal.signal(signal.SIGTERM, _interrupt)
    run = ChaosRun(args, None if kafka is None else Kafka(kafka))
    began = time.monotonic()
    exit_codes: dict[str, int | None] = {}
    try:
        run.start()
        faults = asyncio.run(run.drive())
        ran_s = time.monotonic() - run.origin
        for service in run.services:  # stopped before the topics are read: nothing more comes in
            service.signal(signal.SIGTERM)
        for service in run.services:
            exit_codes[service.name] = service.stop()
        log("reading the alerts, the state changelog and the dead letters back")
        collected = collect(run.settings.bootstrap_servers, run.topics, run.settings.worker_id)
    finally:
        exit_codes.update({k: v for k, v in run.stop().items() if k not in exit_codes})
    result = run.report(faults, exit_codes, *collected, ran_s=ran_s)
    result["wall_s"] = round(time.monotonic() - began)
    text = json.dumps(result, indent=2, default=str)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    print(text)
    return result


if __name__ == "__main__":
    outcome = main()
    sys.exit(0 if outcome["invariants_hold"] else 1)
