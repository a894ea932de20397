"""The API: readings ingested per second, alert reads per second, with the audit trail on and off.

    .venv/bin/python bench/api_throughput.py                  # 3 repetitions, SQLite
    .venv/bin/python bench/api_throughput.py --postgres       # also PostgreSQL, audit on and off
    .venv/bin/python bench/api_throughput.py --quick          # a smoke run: the API now and before
    .venv/bin/python bench/api_throughput.py --json var/api.json --bootstrap 127.0.0.1:9092

One run starts a throwaway Apache Kafka broker (or uses ``--bootstrap``) and seeds one SQLite store:
``--alerts`` alerts raised through the router's pipeline for as many households in 10 grid cells, each alert
with two notifications (a family's, a grid worker's). Four API processes serve a copy each, every one the real
app under uvicorn on 127.0.0.1 as ``shouwang api`` runs it (one process, its thread pool for the store):
  - audit trail on with SQLite ``synchronous=FULL`` (now); on with ``NORMAL``; off with ``FULL``; off with
    ``NORMAL`` (as before both changes).
The switches are this benchmark's, in its server processes only (bench/api_server.py): audit off replaces
``alerts.audit.record``, and the name every route imported, by a function that adds nothing; ``NORMAL`` is a
connect listener on the process's engine. The product is not changed. Each server's audit rows are counted
around its reads: one per read with the trail on, none off, or the run stops.

Each repetition runs three phases on every server, ``--seconds`` each, in slices of 0.5 s that the servers
take in turn (a busy spell of the machine falls on all alike), with ``--connections`` concurrent keep-alive
connections of one httpx client in this process (which shares the cores with the servers):
  - **ingest**: ``POST /v1/readings``, a day of 24 hourly readings of one meter a request (the NB-IoT
    upload), with a device key; 202 once Kafka (acks=all) has every reading. Readings are not audited. The
    key's rate limit is lifted for the run (``SHOUWANG_INGEST_RATE_PER_S``).
  - **alert reads**: ``GET /v1/alerts/{id}`` (an alert with its notifications), and ``GET /v1/alerts`` (a
    page of 50), with a supervisor key of the community: one audit event a request when the trail is on.
The server's CPU time per request is read from /proc. With ``--postgres``, two more servers on a throwaway
PostgreSQL (fsync and synchronous_commit on): audit on and off. Medians of ``--runs`` repetitions and the
run-by-run ratios. Nothing here is a test: figures go to docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts.db import Store
from alerts.pipeline import RouteContext, router_config
from alerts.secret_box import SecretBox, new_key
from alerts.stages import default_pipeline
from api.auth import issue_key
from bench.router_throughput import episodes, seed
from bench.store_durability import (
    copy_sqlite,
    durable_postgres,
    fsync_ms,
    machine,
    median,
    new_postgres_database,
    postgres_settings,
    ratios,
)
from bench.worker_phases import cpu_seconds
from cli.broker import LocalBroker, free_port, kafka_version
from shouwang.settings import REPO_ROOT, Settings
from streams.topic_provisioning import provision_topics

ADMIN_TOKEN = "bench-admin-token-not-a-secret-0123456789"
PHASES = ("ingest", "alert", "alert list")
READINGS_PER_REQUEST = 24
SLICE_S = 0.5  # each server's turn within a phase
SERVER = Path(__file__).resolve().with_name("api_server.py")


@dataclass(frozen=True)
class Variant:
    name: str
    backend: str  # sqlite | postgresql
    audit: bool
    setting: str  # SQLite's synchronous (FULL / NORMAL); PostgreSQL's server default ("on")


SQLITE_VARIANTS = (
    Variant("SQLite FULL, audit on (now)", "sqlite", True, "FULL"),
    Variant("SQLite NORMAL, audit on", "sqlite", True, "NORMAL"),
    Variant("SQLite FULL, audit off", "sqlite", False, "FULL"),
    Variant("SQLite NORMAL, audit off (before)", "sqlite", False, "NORMAL"),
)
POSTGRES_VARIANTS = (
    Variant("PostgreSQL, audit on (now)", "postgresql", True, "on"),
    Variant("PostgreSQL, audit off (before)", "postgresql", False, "on"),
)


@dataclass
class Server:
    """One API process of one variant, on a store of its own (the same seeded copy for every server)."""

    variant: Variant
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    counter: Store  # this process's store, to count its audit rows
    durability: str = ""
    rates: dict[str, list[float]] = field(default_factory=lambda: {phase: [] for phase in PHASES})
    cpu_ms: dict[str, list[float]] = field(default_factory=lambda: {phase: [] for phase in PHASES})
    audit_events_per_read: list[float] = field(default_factory=list)
    sent: int = 0  # requests so far: numbers the next request (which alert, which meter)


def seed_store(url: str, settings: Settings, alerts: int, key: str) -> dict[str, Any]:
    """Households, recipients and raised alerts (through the router's pipeline); a supervisor's and a device's
    API keys. Returns the alert ids, the meters and the two tokens."""
    store = Store(url)
    try:
        meters = seed(store, SecretBox([key]), alerts, "http://127.0.0.1:9/hook")
        config = router_config(settings)
        alert_ids = []
        for event in episodes(meters, 2 * alerts, lag=alerts):
            if event.event != "raised":
                continue
            with store.transaction() as session:
                default_pipeline().run(RouteContext(session=session, event=event, now=event.at, config=config))
            alert_ids.append(event.alert_id)
        with store.transaction() as session:
            _, supervisor = issue_key(
                session, name="bench supervisor", role="supervisor", created_by=None, community="BENCH"
            )
            _, device = issue_key(session, name="bench gateway", role="device", created_by=None, meter_prefix="BM-")
    finally:
        store.close()
    return {"alert_ids": alert_ids, "meters": meters, "supervisor": supervisor, "device": device}  # fmt: skip


def start_server(variant: Variant, settings: Settings, database_url: str, home: Path) -> Server:
    port = free_port()
    env = settings.model_copy(update={"database_url": database_url}).subprocess_env()
    env.update(
        SHOUWANG_ADMIN_TOKEN=ADMIN_TOKEN,  # secrets: model_dump masks them
        SHOUWANG_SECRET_KEYS=settings.secret_keys.get_secret_value() if settings.secret_keys else "",
    )
    log = home / f"api-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(SERVER), str(port), variant.setting, "on" if variant.audit else "off"],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
        )  # fmt: skip
    return Server(variant, port, process, log, Store(database_url, migrate=False))


def wait_ready(server: Server, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the API of {server.variant.name} exited: {server.log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{server.port}/readyz", timeout=2).status_code == 200:
                said = [line for line in server.log.read_text().splitlines() if line.startswith("durability: ")]
                server.durability = said[0].removeprefix("durability: ")
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the API of {server.variant.name} was not ready in {timeout_s:.0f} s (see {server.log})")


Request = Callable[[int], tuple[str, str, bytes | None]]


async def run_phase(
    servers: list[Server], request: Request, token: str, *, expect: int, seconds: float, connections: int
) -> list[tuple[int, float, float]]:
    """One phase on every server: slices of ``SLICE_S`` taken by the servers in turn, ``seconds`` each in all,
    each with ``connections`` concurrent keep-alive connections (one untimed request on each first). Per
    server: (requests timed, seconds, the server's CPU seconds meanwhile). Any status but ``expect`` stops."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    clients = [
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{s.port}", headers=headers, limits=limits, timeout=60)
        for s in servers
    ]

    async def send(server: Server, client: httpx.AsyncClient) -> None:
        method, path, body = request(server.sent)
        server.sent += 1
        response = await client.request(method, path, content=body)
        if response.status_code != expect:
            raise RuntimeError(f"{server.variant.name}: {method} {path}: {response.status_code} {response.text[:300]}")
        if method == "POST" and response.json()["accepted"] != READINGS_PER_REQUEST:
            raise RuntimeError(f"{server.variant.name}: POST {path}: {response.text[:300]}")

    async def one_slice(server: Server, client: httpx.AsyncClient, length: float) -> int:
        deadline, done = time.perf_counter() + length, 0

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                await send(server, client)
                done += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
        return done

    try:
        for server, client in zip(servers, clients, strict=True):
            await asyncio.gather(*(send(server, client) for _ in range(connections)))  # connected and warm
        totals = [(0, 0.0, 0.0)] * len(servers)
        slices = max(1, round(seconds / SLICE_S))
        for turn in range(slices):
            order = range(len(servers)) if turn % 2 == 0 else reversed(range(len(servers)))
            for i in order:
                cpu, began = cpu_seconds(servers[i].process.pid), time.perf_counter()
                done = await one_slice(servers[i], clients[i], seconds / slices)
                elapsed, used = time.perf_counter() - began, cpu_seconds(servers[i].process.pid) - cpu
                totals[i] = (totals[i][0] + done, totals[i][1] + elapsed, totals[i][2] + used)
        return totals
    finally:
        for client in clients:
            await client.aclose()


def readings_bodies(meters: list[str]) -> list[bytes]:
    """A day of hourly readings per meter (yesterday in UTC), as one upload."""
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    return [
        json.dumps(
            [
                {"meter_id": meter, "ts": (day + timedelta(hours=h)).isoformat(), "register_l": 1000.0 + 7.5 * h}
                for h in range(READINGS_PER_REQUEST)
            ]
        ).encode()
        for meter in meters
    ]


def audit_rows(store: Store) -> int:
    from alerts.audit import AuditEvent

    with store.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


def requests_for(world: dict[str, Any]) -> dict[str, tuple[Request, str, int]]:
    """Each phase's request (by its number), the token it goes with and the status it must get."""
    bodies, alert_ids = world["bodies"], world["alert_ids"]
    return {
        "ingest": (lambda n: ("POST", "/v1/readings", bodies[n % len(bodies)]), world["device"], 202),
        "alert": (lambda n: ("GET", f"/v1/alerts/{alert_ids[n % len(alert_ids)]}", None), world["supervisor"], 200),
        "alert list": (lambda n: ("GET", "/v1/alerts?limit=50", None), world["supervisor"], 200),
    }


def repetition(servers: list[Server], worlds: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    """Every phase once on every server (interleaved); the audit rows the reads wrote checked per server."""
    options = {"seconds": args.seconds, "connections": args.connections}
    for backend in {s.variant.backend for s in servers}:
        group = [s for s in servers if s.variant.backend == backend]
        requests = requests_for(worlds[backend])
        audited = {s.port: (audit_rows(s.counter), s.sent) for s in group}
        for name in PHASES:
            request, token, expect = requests[name]
            if name == "alert":  # reads from here on: count the trail's rows from here
                audited = {s.port: (audit_rows(s.counter), s.sent) for s in group}
            totals = asyncio.run(run_phase(group, request, token, expect=expect, **options))
            for server, (done, seconds, cpu) in zip(group, totals, strict=True):
                per_request = READINGS_PER_REQUEST if name == "ingest" else 1
                server.rates[name].append(done * per_request / seconds)
                server.cpu_ms[name].append(cpu / done * 1000)
        for server in group:
            rows, sent = audited[server.port]
            reads = server.sent - sent
            # A route's transaction commits after its response is sent (the session is a dependency with yield,
            # FastAPI's "request" scope), so the last reads' events may still be on their way: wait for them.
            expected = reads if server.variant.audit else 0
            deadline = time.monotonic() + 10
            while (written := audit_rows(server.counter) - rows) < expected and time.monotonic() < deadline:
                time.sleep(0.1)
            if written != expected:
                raise RuntimeError(f"{server.variant.name}: {written} audit events for {reads} reads")
            server.audit_events_per_read.append(written / reads)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    found = machine()  # the load before this run's own processes
    home = Path(tempfile.mkdtemp(prefix="shouwang-bench-api-"))
    found["fsync_ms_at_start"] = fsync_ms(home)
    broker = pg = None
    servers: list[Server] = []
    try:
        bootstrap = args.bootstrap
        if bootstrap is None:
            broker = LocalBroker(
                home=home / "kafka", lib_dir=REPO_ROOT / "broker" / "lib", port=free_port(),
                controller_port=free_port(), heap="512m",
            )  # fmt: skip
            broker.start()
            bootstrap = broker.bootstrap
        key = new_key()
        settings = Settings(
            var_dir=home / "var",
            kafka_bootstrap=bootstrap,
            topic_prefix=f"bench{os.getpid()}.",
            secret_keys=SecretStr(key),
            admin_token=SecretStr(ADMIN_TOKEN),
            ingest_rate_per_s=1e9,  # the bench measures the API, not the per-key limit
            public_url="https://shouwang.example",
        )
        provision_topics(settings)
        templates = {"sqlite": f"sqlite:///{home / 'template.db'}"}
        # A smoke run: the API as it is now and as before both changes (each switch exercised once).
        variants = [SQLITE_VARIANTS[0], SQLITE_VARIANTS[3]] if args.quick else list(SQLITE_VARIANTS)
        server_url = args.postgres_url
        if args.postgres or server_url:
            variants += POSTGRES_VARIANTS
            if server_url is None:
                pg = durable_postgres()
                server_url = pg.url
            templates["postgresql"] = new_postgres_database(server_url)
        worlds = {backend: seed_store(url, settings, args.alerts, key) for backend, url in templates.items()}
        for world in worlds.values():
            world["bodies"] = readings_bodies(world["meters"])
        for variant in variants:  # each server a copy of the seeded store: its audit rows are its own
            if variant.backend == "sqlite":
                url = copy_sqlite(home / "template.db", home / f"store-{len(servers)}.db")
            else:
                assert server_url is not None
                url = new_postgres_database(server_url, template=templates["postgresql"].rsplit("/", 1)[1])
            servers.append(start_server(variant, settings, url, home))
        for server in servers:
            wait_ready(server)
        for run in range(args.runs):
            repetition(servers if run % 2 == 0 else servers[::-1], worlds, args)
            for server in servers:
                print(
                    f"run {run + 1}: {server.variant.name} ({server.durability}): "
                    + ", ".join(
                        f"{phase} {server.rates[phase][-1]:,.0f}/s ({server.cpu_ms[phase][-1]:.1f} ms server CPU each)"
                        for phase in PHASES
                    ),
                    flush=True,
                )
        found["fsync_ms_at_end"] = fsync_ms(home)
        found["kafka"] = kafka_version(REPO_ROOT / "broker" / "lib")
        if server_url is not None:
            found["postgresql"] = postgres_settings(server_url)
        return {
            "benchmark": "api_throughput",
            "machine": found,
            "alerts": args.alerts,
            "runs": args.runs,
            "seconds_per_phase": args.seconds,
            "connections": args.connections,
            "readings_per_request": READINGS_PER_REQUEST,
            "variants": [
                {
                    "name": s.variant.name,
                    "backend": s.variant.backend,
                    "audit": s.variant.audit,
                    "setting": s.variant.setting,
                    "durability": s.durability,
                    "audit_events_per_read": median(s.audit_events_per_read),
                    **{f"{phase} per_s": s.rates[phase] for phase in PHASES},
                    **{f"{phase} per_s_median": median(s.rates[phase]) for phase in PHASES},
                    **{f"{phase} server_cpu_ms": s.cpu_ms[phase] for phase in PHASES},
                }
                for s in servers
            ],
            "ratios": comparisons(servers),
        }
    finally:
        for server in servers:
            server.process.terminate()
        for server in servers:
            try:
                server.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.process.kill()
            server.counter.close()
        if pg is not None:
            pg.stop()
        if broker is not None:
            broker.stop()
        shutil.rmtree(home, ignore_errors=True)


def comparisons(servers: list[Server]) -> dict[str, dict[str, Any]]:
    """Run-by-run ratios of each phase: the audit trail's cost, FULL's, and both against before."""
    by_name = {s.variant.name: s for s in servers}
    pairs = (
        ("audit on / off, SQLite FULL", "SQLite FULL, audit on (now)", "SQLite FULL, audit off"),
        ("FULL / NORMAL, audit on", "SQLite FULL, audit on (now)", "SQLite NORMAL, audit on"),
        ("now / before, SQLite", "SQLite FULL, audit on (now)", "SQLite NORMAL, audit off (before)"),
        ("audit on / off, PostgreSQL", "PostgreSQL, audit on (now)", "PostgreSQL, audit off (before)"),
    )
    out: dict[str, dict[str, Any]] = {}
    for label, a, b in pairs:
        if a in by_name and b in by_name:
            out[label] = {}
            for phase in PHASES:
                each = ratios(by_name[a].rates[phase], by_name[b].rates[phase])
                out[label][phase] = each
                out[label][f"{phase} median"] = median(each)
    return out


def markdown(result: dict[str, Any]) -> str:
    runs = result["runs"]

    def cell(values: list[float]) -> str:
        return f"{median(values):,.0f} ({' / '.join(f'{x:,.0f}' for x in values)})"

    lines = [
        f"| server | readings ingested/s (median of {runs}; runs) | `GET /v1/alerts/{{id}}`/s | `GET /v1/alerts`/s "
        "| audit events per read | server CPU ms per request: ingest / alert / list |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for v in result["variants"]:
        cpu = " / ".join(f"{median(v[f'{phase} server_cpu_ms']):.1f}" for phase in PHASES)
        lines.append(
            f"| {v['name']} | {cell(v['ingest per_s'])} | {cell(v['alert per_s'])} | {cell(v['alert list per_s'])} "
            f"| {v['audit_events_per_read']:.0f} | {cpu} |"
        )
    lines.append("")
    for label, ratio in result["ratios"].items():
        lines.append(
            f"- {label}: "
            + "; ".join(
                f"{phase} {ratio[f'{phase} median']:.2f}× ({', '.join(f'{x:.2f}' for x in ratio[phase])})"
                for phase in PHASES
            )
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each timed phase")
    parser.add_argument("--connections", type=int, default=4, help="concurrent connections of the client")
    parser.add_argument("--alerts", type=int, default=200, help="alerts (and households) in the store")
    parser.add_argument("--quick", action="store_true", help="one run of short phases: a smoke run")
    parser.add_argument("--bootstrap", help="an Apache Kafka broker to use instead of starting one")
    parser.add_argument("--postgres", action="store_true", help="also PostgreSQL (a throwaway server, fsync on)")
    parser.add_argument("--postgres-url", help="with PostgreSQL, this server as it is (a superuser's URL)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.seconds, args.alerts, args.connections = 1, 0.3, 20, 2
    result = measure(args)
    found = result["machine"]
    print(
        f"\n{found['cores']} cores ({found['cpu']}), {found['memory_gb']} GB, load at start "
        f"{found['load_average_at_start']}; SQLite {found['sqlite']} on {found['tmp_filesystem']} (fsync of 4 KB "
        f"{found['fsync_ms_at_start']} ms at the start, {found['fsync_ms_at_end']} at the end); "
        f"Apache Kafka {found['kafka']}"
        + (f"; PostgreSQL {found['postgresql']['server_version']}" if "postgresql" in found else "")
    )
    print(
        f"{result['connections']} connections, {result['seconds_per_phase']:g} s a phase, {result['alerts']} alerts; "
        f"ingest: {READINGS_PER_REQUEST} readings a request\n"
    )
    print(markdown(result), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
