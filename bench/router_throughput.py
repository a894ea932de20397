"""The router's store: alert events per second through its pipeline, deliveries per second to a receiver.

    .venv/bin/python bench/router_throughput.py                  # 3 repetitions, SQLite and PostgreSQL
    .venv/bin/python bench/router_throughput.py --quick          # a smoke run (seconds)
    .venv/bin/python bench/router_throughput.py --json var/router.json --no-postgres

Four stores, every one measured in every repetition:
  - SQLite with ``synchronous=FULL`` (now, alerts/db.py) and with ``NORMAL`` (before);
  - PostgreSQL (a throwaway server on this disk, fsync on), ``synchronous_commit`` on (the default) and off.
Each repetition gives every store a fresh copy of one template: migrated, ``--households`` homes in 10 grid
cells, each with a meter and a family member subscribed, a grid worker per cell; every recipient a Standard
Webhook pointing at one receiver.

- **Alert events/s**: ``--events`` alert events (raises, each resolved ``--lag`` events later: a raise tells
  the family and the grid worker, a resolve sends them the all-clear) through ``Router.handle``, the code the
  router runs for each Kafka message, one transaction per event. The events are fed in this process, not
  read from Kafka: the consumer's fetch and its offset commit after each event are not in the figure (nor the
  router's log line per event: logging is not configured here). The stores take 10 events each in turn, so a
  busy spell of the machine falls on all of them alike.
- **Deliveries/s**: then each store's real ``OutboxDispatcher``, built as ``Router.run`` builds it (the pinned
  HTTP client, per-endpoint concurrency, a lease renewed before each send and the result recorded in
  transactions of their own), sends every delivery the events recorded (two per event) to a receiver in
  another process on 127.0.0.1 that answers 204 (HTTP/1.1, kept alive). The stores' dispatchers take a pass
  (claim what is due, send it, record the results) each in turn until a pass finds nothing; every delivery
  must end delivered.

This process's CPU time per event and per delivery is reported too (not the database server's). Medians of
``--runs`` repetitions and the run-by-run ratios go to docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import ConsumerRecord
from pydantic import SecretStr
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts import admin
from alerts.action_links import ActionLinkSigner, LinkMaker
from alerts.db import Store
from alerts.models import Delivery, utcnow
from alerts.outbox import OutboxConfig, OutboxDispatcher
from alerts.policy import parse_duration
from alerts.router import Router
from alerts.secret_box import SecretBox, new_key, secret_keys
from alerts.statuses import DeliveryStatus
from alerts.webhooks import EndpointLimiter, make_client, parse_schedule
from bench.store_durability import (
    copy_sqlite,
    drop_postgres_database,
    durability_of,
    durable_postgres,
    fsync_ms,
    machine,
    median,
    new_postgres_database,
    postgres_settings,
    ratios,
    use_sqlite_synchronous,
)
from shouwang.events import AlertEvent, AlertKind, Explanation, Severity, alert_id_for, encode
from shouwang.settings import Settings

CELLS = 10
CHUNK = 10  # events each store handles in its turn
LOOPBACK = "127.0.0.0/8"
# A receiver in its own process (the router's process must not also serve the POSTs): 204 to every POST,
# HTTP/1.1 so the dispatcher's connections are kept alive; GET answers how many POSTs came.
RECEIVER = r"""
import http.server, sys, threading
count, lock = 0, threading.Lock()
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        global count
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with lock:
            count += 1
        self.send_response(204); self.send_header("Content-Length", "0"); self.end_headers()
    def do_GET(self):
        body = str(count).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args): pass
class Server(http.server.ThreadingHTTPServer):
    daemon_threads, request_queue_size = True, 256  # every delivery of a pass may connect at once
server = Server(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


@dataclass(frozen=True)
class Variant:
    name: str
    backend: str  # sqlite | postgresql
    setting: str  # FULL / NORMAL (SQLite's synchronous), on / off (PostgreSQL's synchronous_commit)


@dataclass
class Measured:
    variant: Variant
    events_per_s: list[float] = field(default_factory=list)
    deliveries_per_s: list[float] = field(default_factory=list)
    cpu_ms_per_event: list[float] = field(default_factory=list)  # this process's: the database server's is not in it
    cpu_ms_per_delivery: list[float] = field(default_factory=list)
    durability: str = ""


SQLITE_VARIANTS = (
    Variant("SQLite, synchronous=FULL (now)", "sqlite", "FULL"),
    Variant("SQLite, synchronous=NORMAL (before)", "sqlite", "NORMAL"),
)
POSTGRES_VARIANTS = (
    Variant("PostgreSQL, synchronous_commit=on (default)", "postgresql", "on"),
    Variant("PostgreSQL, synchronous_commit=off", "postgresql", "off"),
)


def start_receiver() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    port = int(process.stdout.readline())
    return process, f"http://127.0.0.1:{port}"


def received(base_url: str) -> int:
    return int(httpx.get(base_url, timeout=5).text)


def seed(store: Store, box: SecretBox, households: int, hook: str) -> list[str]:
    """The template's world; returns the meters, one per household."""
    meters: list[str] = []
    with store.transaction() as session:

        def webhook(name: str, role: str) -> Any:
            recipient, _ = admin.create_recipient(
                session, name=name, role=role, webhook_url=hook, allow=(LOOPBACK,), require_https=False, box=box
            )
            return recipient

        for cell in range(CELLS):
            admin.subscribe(session, webhook(f"Grid worker C{cell}", "grid_worker"), grid_cell=f"C{cell}")
        admin.subscribe(session, webhook("Supervisor", "supervisor"), community="BENCH")
        for index in range(households):
            home = admin.create_household(
                session,
                name=f"Home {index}",
                timezone="Asia/Shanghai",
                grid_cell=f"C{index % CELLS}",
                community="BENCH",
                address=f"{index} Lianhua Road",
                consent_given_by=f"Resident {index}",
                consent_given_at=utcnow() - timedelta(days=30),
                consent_scope="water-use alerts to family and grid worker",
            )
            meter = f"BM-{index:05d}"
            admin.add_meter(session, home, meter_id=meter)
            admin.subscribe(session, webhook(f"Family {index}", "family"), household_id=home.id)
            meters.append(meter)
    return meters


def episodes(meters: list[str], events: int, lag: int) -> list[AlertEvent]:
    """Raises and, ``lag`` events later, their resolves: as many of each (the last raises resolved at the end)."""
    start = utcnow() - timedelta(hours=3)
    out: list[AlertEvent] = []
    pending: list[AlertEvent] = []

    def episode(index: int, transition: str) -> AlertEvent:
        meter, since = meters[index % len(meters)], start + timedelta(seconds=index)
        return AlertEvent(
            alert_id=alert_id_for(meter, AlertKind.CONTINUOUS_FLOW, since),
            event=transition,  # type: ignore[arg-type]
            meter_id=meter,
            kind=AlertKind.CONTINUOUS_FLOW,
            severity=Severity.HIGH,
            since=since,
            at=since + timedelta(hours=1 if transition == "raised" else 2),
            explanation=Explanation(zh="自 02:10 起持续用水", en="water running since 02:10"),
            facts={"litres_per_hour": 42.5},
        )

    for index in range(events // 2):
        out.append(episode(index, "raised"))
        pending.append(episode(index, "resolved"))
        if len(pending) > lag:
            out.append(pending.pop(0))
    out.extend(pending)
    return out


def as_records(events: list[AlertEvent]) -> list[ConsumerRecord[bytes, bytes]]:
    """The events as the router's consumer hands them over (key: the meter, value: the event's JSON)."""
    return [
        ConsumerRecord("bench.alerts", 0, offset, 0, 0, (e.meter_id or "").encode(), encode(e), None, 0, 0, [])
        for offset, e in enumerate(events)
    ]


@dataclass
class Rig:
    """One variant's router in one repetition, on a fresh copy of the template, and the time it took."""

    variant: Variant
    router: Router
    url: str
    durability: str
    dispatcher: OutboxDispatcher | None = None
    seconds: dict[str, float] = field(default_factory=lambda: {"events": 0.0, "deliveries": 0.0})
    cpu: dict[str, float] = field(default_factory=lambda: {"events": 0.0, "deliveries": 0.0})

    def timed(self, what: str, began: tuple[float, float]) -> None:
        self.seconds[what] += time.perf_counter() - began[0]
        self.cpu[what] += time.process_time() - began[1]


def now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def open_rig(variant: Variant, settings: Settings, templates: dict[str, str], postgres_url: str | None) -> Rig:
    if variant.backend == "sqlite":
        url = copy_sqlite(Path(templates["sqlite"]), Path(templates["sqlite"]).with_name(f"{time.monotonic_ns()}.db"))
    else:
        assert postgres_url is not None
        url = new_postgres_database(postgres_url, template=templates["postgresql"], commit=variant.setting)
    router = Router(settings.model_copy(update={"database_url": url}))
    if variant.backend == "sqlite":
        use_sqlite_synchronous(router.store.engine, variant.setting)
    return Rig(variant, router, url, durability_of(router.store.engine))


def close_rig(rig: Rig) -> None:
    rig.router.store.close()
    if rig.variant.backend == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(rig.url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
    else:
        drop_postgres_database(rig.url)


def record_events(rigs: list[Rig], records: list[ConsumerRecord[bytes, bytes]]) -> None:
    """Every rig handles every event, ``CHUNK`` events at a time in turn: a busy spell of the machine then
    falls on every variant alike, not on whichever happened to run during it."""
    for turn, first in enumerate(range(0, len(records), CHUNK)):
        for rig in rigs if turn % 2 == 0 else rigs[::-1]:
            began = now()
            for record in records[first : first + CHUNK]:
                result, letter = rig.router.handle(record)
                if result != "notified" or letter is not None:
                    raise RuntimeError(f"{rig.variant.name}: event {record.offset}: {result} (expected notified)")
            rig.timed("events", began)


def dispatcher_of(router: Router, client: httpx.AsyncClient) -> OutboxDispatcher:
    """The dispatcher as ``Router.run`` builds it."""
    settings = router.settings
    return OutboxDispatcher(
        router.store,
        OutboxConfig(
            schedule=parse_schedule(settings.webhook_retry_schedule),
            lease=parse_duration(f"{settings.webhook_lease_s}s"),
            timeout_s=settings.webhook_timeout_s,
        ),
        client=client,
        limiter=EndpointLimiter(settings.webhook_endpoint_concurrency),
        clock=router.clock,
        links=LinkMaker(ActionLinkSigner(secret_keys(settings)), settings.public_url),
        channels=router.channels.build,
        box=router.channels.box,
    )


async def send_all(rigs: list[Rig], expected: int) -> None:
    """Each rig's dispatcher passes (claim what is due, send it, record the results) in turn, as its router's
    dispatch loop runs them back to back, until a pass finds nothing; then every delivery must be delivered."""
    clients = []
    for rig in rigs:
        settings = rig.router.settings
        client = make_client(
            allow=settings.webhook_allowlist,
            require_https=settings.webhook_require_https,
            timeout_s=settings.webhook_timeout_s,
        )
        clients.append(client)
        rig.dispatcher = dispatcher_of(rig.router, client)
    try:
        busy, turn = list(rigs), 0
        while busy:
            for rig in list(busy if turn % 2 == 0 else busy[::-1]):
                assert rig.dispatcher is not None
                began = now()
                sent = await rig.dispatcher.run_once()
                rig.timed("deliveries", began)
                if not sent:
                    busy.remove(rig)
            turn += 1
    finally:
        for client in clients:
            await client.aclose()
    for rig in rigs:
        with rig.router.store.transaction() as session:
            counts = dict(session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all())
            if counts != {DeliveryStatus.DELIVERED: expected}:
                errors = set(
                    session.scalars(select(Delivery.last_error).where(Delivery.status != DeliveryStatus.DELIVERED))
                )
                raise RuntimeError(f"{rig.variant.name}: deliveries {counts}, expected {expected}; errors: {errors}")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """The whole benchmark; the results as JSON-ready values."""
    found = machine()  # the load before this run's own processes
    home = Path(tempfile.mkdtemp(prefix="shouwang-bench-router-"))
    found["fsync_ms_at_start"] = fsync_ms(home)
    receiver, hook_base = start_receiver()
    key = new_key()
    settings = Settings(
        var_dir=home / "var",
        secret_keys=SecretStr(key),
        webhook_allow_hosts=LOOPBACK,
        public_url="https://shouwang.example",
        router_id="bench-router",
    )
    server = None
    postgres_url: str | None = args.postgres_url
    variants = list(SQLITE_VARIANTS)
    if not args.no_postgres:
        variants += POSTGRES_VARIANTS
        if postgres_url is None:
            server = durable_postgres()
            postgres_url = server.url
    try:
        templates: dict[str, str] = {}
        sqlite_template = home / "template.db"
        template_store = Store(f"sqlite:///{sqlite_template}")
        meters = seed(template_store, SecretBox([key]), args.households, f"{hook_base}/hook")
        template_store.close()
        templates["sqlite"] = str(sqlite_template)
        if postgres_url is not None:
            template_url = new_postgres_database(postgres_url)
            template_store = Store(template_url)
            seed(template_store, SecretBox([key]), args.households, f"{hook_base}/hook")
            template_store.close()
            templates["postgresql"] = template_url.rsplit("/", 1)[1]
        records = as_records(episodes(meters, args.events, args.lag))
        expected = 2 * len(records)  # the family and the grid worker, for the raise and for the all-clear
        measured = {variant: Measured(variant) for variant in variants}
        for run in range(args.runs):
            rigs = []
            try:
                for variant in variants:
                    rigs.append(open_rig(variant, settings, templates, postgres_url))
                record_events(rigs, records)
                asyncio.run(send_all(rigs, expected))
            finally:
                for rig in rigs:
                    close_rig(rig)
            for rig in rigs:
                result = measured[rig.variant]
                result.durability = rig.durability
                result.events_per_s.append(len(records) / rig.seconds["events"])
                result.deliveries_per_s.append(expected / rig.seconds["deliveries"])
                result.cpu_ms_per_event.append(rig.cpu["events"] / len(records) * 1000)
                result.cpu_ms_per_delivery.append(rig.cpu["deliveries"] / expected * 1000)
                print(
                    f"run {run + 1}: {rig.variant.name} ({rig.durability}): "
                    f"{result.events_per_s[-1]:,.1f} events/s ({result.cpu_ms_per_event[-1]:.1f} ms CPU each), "
                    f"{result.deliveries_per_s[-1]:,.1f} deliveries/s "
                    f"({result.cpu_ms_per_delivery[-1]:.1f} ms CPU each)",
                    flush=True,
                )
        posts = received(hook_base)
        if posts < expected * args.runs * len(variants):
            raise RuntimeError(f"the receiver got {posts} POSTs, fewer than the deliveries recorded delivered")
        found["fsync_ms_at_end"] = fsync_ms(home)
        return {
            "benchmark": "router_throughput",
            "machine": found | ({"postgresql": postgres_settings(postgres_url)} if postgres_url else {}),
            "households": args.households,
            "events": len(records),
            "deliveries_per_run": expected,
            "runs": args.runs,
            "variants": [
                {
                    "name": m.variant.name,
                    "backend": m.variant.backend,
                    "setting": m.variant.setting,
                    "durability": m.durability,
                    "events_per_s": m.events_per_s,
                    "deliveries_per_s": m.deliveries_per_s,
                    "cpu_ms_per_event": m.cpu_ms_per_event,
                    "cpu_ms_per_delivery": m.cpu_ms_per_delivery,
                    "events_per_s_median": median(m.events_per_s),
                    "deliveries_per_s_median": median(m.deliveries_per_s),
                }
                for m in measured.values()
            ],
            "ratios": comparisons(measured),
            "receiver_posts": posts,
        }
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)
        if server is not None:
            server.stop()
        shutil.rmtree(home, ignore_errors=True)


def comparisons(measured: dict[Variant, Measured]) -> dict[str, dict[str, Any]]:
    """Each store's durable setting against its faster one, run by run."""
    by_name = {(m.variant.backend, m.variant.setting): m for m in measured.values()}
    out: dict[str, dict[str, Any]] = {}
    for backend, durable, fast in (("sqlite", "FULL", "NORMAL"), ("postgresql", "on", "off")):
        if (backend, durable) not in by_name:
            continue
        a, b = by_name[(backend, durable)], by_name[(backend, fast)]
        events, deliveries = ratios(a.events_per_s, b.events_per_s), ratios(a.deliveries_per_s, b.deliveries_per_s)
        out[f"{backend}: {durable} / {fast}"] = {
            "events": events,
            "events_median": median(events),
            "deliveries": deliveries,
            "deliveries_median": median(deliveries),
        }
    return out


def markdown(result: dict[str, Any]) -> str:
    runs = result["runs"]

    def cell(values: list[float], digits: int = 0) -> str:
        return f"{median(values):,.{digits}f} ({' / '.join(f'{x:,.{digits}f}' for x in values)})"

    lines = [
        f"| store | alert events/s (median of {runs}; runs) | CPU ms per event | deliveries/s | CPU ms per delivery |",
        "|---|---:|---:|---:|---:|",
    ]
    for v in result["variants"]:
        lines.append(
            f"| {v['name']} | {cell(v['events_per_s'], 1)} | {median(v['cpu_ms_per_event']):.1f} "
            f"| {cell(v['deliveries_per_s'], 1)} | {median(v['cpu_ms_per_delivery']):.1f} |"
        )
    lines.append("")
    for name, ratio in result["ratios"].items():
        lines.append(
            f"- {name}: events {ratio['events_median']:.2f}× ({', '.join(f'{x:.2f}' for x in ratio['events'])}), "
            f"deliveries {ratio['deliveries_median']:.2f}× ({', '.join(f'{x:.2f}' for x in ratio['deliveries'])})"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--events", type=int, default=200, help="alert events per store and run (half raises)")
    parser.add_argument("--households", type=int, default=200)
    parser.add_argument("--lag", type=int, default=20, help="events between a raise and its resolve")
    parser.add_argument("--quick", action="store_true", help="one run of 20 events: a smoke run")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument(
        "--postgres-url", help="use this PostgreSQL server (a superuser's URL) as it is, instead of starting one"
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.events, args.households, args.lag = 1, 20, 20, 4
    result = measure(args)
    machine_ = result["machine"]
    print(
        f"\n{machine_['cores']} cores ({machine_['cpu']}), {machine_['memory_gb']} GB, load at start "
        f"{machine_['load_average_at_start']}; SQLite {machine_['sqlite']} on {machine_['tmp_filesystem']}, "
        f"fsync of 4 KB {machine_['fsync_ms_at_start']} ms at the start, {machine_['fsync_ms_at_end']} at the end"
        + (f"; PostgreSQL {machine_['postgresql']['server_version']}" if "postgresql" in machine_ else "")
    )
    print(f"{result['events']} events, {result['deliveries_per_run']} deliveries per store and run\n")
    print(markdown(result), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
