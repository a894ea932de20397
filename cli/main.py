"""The ``shouwang`` command line. Errors are one line on stderr and a non-zero exit."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from cli import audit, keys, sealed, silences
from cli.broker import BrokerError, LocalBroker, kafka_version, resolve_jars
from cli.cluster import LocalCluster, cluster_from_settings
from cli.report import report as report_command
from shouwang.settings import Settings, get_settings

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Shouwang (守望): water-meter risk early warning for elders living alone.",
)
broker_app = typer.Typer(no_args_is_help=True, help="The embedded local Apache Kafka broker.")
app.add_typer(broker_app, name="broker")
incidents_app = typer.Typer(no_args_is_help=True, help="Residents' incident reports (随手拍).")
app.add_typer(incidents_app, name="incidents")
app.add_typer(silences.app, name="silence")
app.command("report")(report_command)
app.add_typer(sealed.app, name="secrets")
app.add_typer(audit.app, name="audit")
app.add_typer(keys.app, name="keys")


@incidents_app.command("classify")
def incidents_classify() -> None:
    """Read JSON Lines {"text": …} on standard input; write one JSON line per input with its
    category, urgency and explanation (a bad line gets {"error": …} with its number)."""
    from detectors.incidents import classify_lines

    for line in classify_lines(sys.stdin):
        typer.echo(line)


log = logging.getLogger("shouwang")


@app.command()
def replay(
    readings: Annotated[Path, typer.Option("--readings", help="CSV with header meter_id,ts,register_l.")],
    out: Annotated[Path, typer.Option("--out", help="JSON Lines of alert transitions to write.")],
    tz: Annotated[
        str | None,
        typer.Option(
            "--tz", help="Households' time zone (and of timestamps without an offset); default SHOUWANG_HOUSEHOLD_TZ."
        ),
    ] = None,
    sensitivity: Annotated[
        float | None,
        typer.Option(
            "--sensitivity",
            min=0.01,
            max=30.0,
            help="no_usage alarms per household-month it may spend on "
            "silences that end by themselves; default SHOUWANG_NO_USAGE_FALSE_ALARMS_PER_MONTH.",
        ),
    ] = None,
    escalations: Annotated[bool, typer.Option("--escalations", help="Also write `escalated` transitions.")] = False,
    check_ins: Annotated[
        bool, typer.Option("--check-ins", help="Also write `check_in` lines: where the resident is asked first.")
    ] = False,
    feedback: Annotated[
        bool,
        typer.Option(
            "--feedback",
            help="Simulate answers: each no_usage alarm on a silence that ended by itself within 24 h is "
            "answered false_alarm an hour after it was raised, and the detector learns from it.",
        ),
    ] = False,
) -> None:
    """Backtest: run the stream's detectors over a CSV of meter history, write alert transitions."""
    from streams.replay_cli import run_replay

    settings = get_settings()
    if sensitivity is not None:
        settings = settings.model_copy(update={"no_usage_false_alarms_per_month": sensitivity})
    try:
        run_replay(
            readings,
            out,
            settings=settings,
            tz=tz or settings.household_tz,
            escalations=escalations,
            check_ins=check_ins,
            feedback=feedback,
        )
    except ValueError as exc:
        raise _fail(str(exc)) from None


def local_broker(settings: Settings, nodes: int | None = None) -> LocalBroker | LocalCluster:
    """The embedded Kafka: one broker, or a local cluster of ``nodes`` (default SHOUWANG_BROKER_NODES)."""
    nodes = nodes or settings.broker_nodes
    if nodes == 1:
        return LocalBroker(
            home=settings.broker_dir,
            lib_dir=settings.broker_lib_dir,
            port=settings.broker_port,
            controller_port=settings.broker_controller_port,
            heap=settings.broker_heap,
        )
    return cluster_from_settings(settings, nodes)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"shouwang: {message}", err=True)
    return typer.Exit(code=1)


@broker_app.command("start")
def broker_start(
    nodes: Annotated[
        int | None,
        typer.Option(
            "--nodes",
            help="1, or 3 or 5 for a local cluster (each node a broker and a controller, data under "
            "SHOUWANG_VAR_DIR/kafka-cluster); default SHOUWANG_BROKER_NODES.",
        ),
    ] = None,
) -> None:
    """Start the local broker, or cluster, in the background (formats its storage the first time)."""
    settings = get_settings()
    if nodes not in (None, 1, 3, 5):
        raise _fail(f"--nodes must be 1, 3 or 5 (the nodes form the controller quorum), not {nodes}")
    broker = local_broker(settings, nodes)
    resolve_jars(settings.broker_lib_dir)
    seconds = broker.start()
    what = "answering" if isinstance(broker, LocalBroker) else f"cluster of {broker.size} nodes answering"
    typer.echo(
        f"Apache Kafka {kafka_version(settings.broker_lib_dir)} {what} on "
        f"{broker.bootstrap} (ready in {seconds:.1f} s); data in {broker.data_dir}"
    )
    if isinstance(broker, LocalCluster) and settings.broker_nodes != broker.size:
        typer.echo(f"clients find every node with SHOUWANG_BROKER_NODES={broker.size}")


@broker_app.command("stop")
def broker_stop() -> None:
    """Stop the local broker and local cluster, whichever runs (SIGTERM, then SIGKILL after 30 s)."""
    settings = get_settings()
    stopped = [kafka.stop() for kafka in _embedded(settings)]
    typer.echo("stopped" if any(stopped) else "not running")


@broker_app.command("status")
def broker_status() -> None:
    """Say whether the local broker (or each node of the local cluster) runs; exit 1 if not (or not all)."""
    settings = get_settings()
    for kafka in _embedded(settings):
        if isinstance(kafka, LocalBroker) and (pid := kafka.pid()) is not None:
            typer.echo(
                f"Apache Kafka {kafka_version(settings.broker_lib_dir)} running, pid {pid}, on {kafka.bootstrap}"
            )
            return
        if isinstance(kafka, LocalCluster) and (running := kafka.running()):
            down = sorted(set(kafka.node_ids) - set(running))
            pids = ", ".join(f"node {node.node_id} pid {node.pid()}" for node in kafka.nodes if node.is_running())
            line = f"local cluster: {pids}; quorum leader node {kafka.quorum_leader()}; on {kafka.bootstrap}"
            if down:
                raise _fail(f"{line}; down: node {', '.join(map(str, down))}")
            typer.echo(f"Apache Kafka {kafka_version(settings.broker_lib_dir)} {line}")
            return
    raise _fail(f"local broker not running (would listen on {settings.bootstrap_servers})")


def _embedded(settings: Settings) -> list[LocalBroker | LocalCluster]:
    """The local broker, and the local cluster last started here (its layout is kept in its folder)."""
    cluster = LocalCluster.load(settings.var_dir / "kafka-cluster", settings.broker_lib_dir)
    if cluster is None and settings.broker_nodes > 1:
        cluster = cluster_from_settings(settings, settings.broker_nodes)
    return [local_broker(settings, 1), *([cluster] if cluster else [])]


@app.command()
def topics() -> None:
    """Create or update the topics (idempotent)."""
    from streams.topic_provisioning import provision_topics

    report = provision_topics(get_settings())
    for label, names in (
        ("created", report.created),
        ("grown", report.grown),
        ("reconfigured", report.reconfigured),
        ("unchanged", report.unchanged),
    ):
        if names:
            typer.echo(f"{label}: {', '.join(names)}")


@app.command()
def worker() -> None:
    """Run the detector worker (a Faust app) in the foreground."""
    from streams.faust_compat import FaustVersionError, check_version

    try:
        check_version()  # before anything starts: the worker's fixes to Faust fit one version only
    except FaustVersionError as exc:
        raise _fail(str(exc)) from None
    from streams.app import create_worker

    create_worker(get_settings()).execute_from_commandline()


@app.command()
def router() -> None:
    """Run the alert router in the foreground: routing, escalation and webhook delivery."""
    from alerts.router import run_router

    run_router(get_settings())


@app.command()
def api() -> None:
    """Serve the HTTP API (FastAPI with uvicorn) in the foreground."""
    from api.app import run_api

    run_api(get_settings())


@app.command("reseal-credentials")
def reseal_credentials() -> None:
    """The older name of `shouwang secrets rotate`: every sealed value encrypted again under the first of
    SHOUWANG_SECRET_KEYS (put the new key first, run this, then drop the old key)."""
    from cli.sealed import rotate

    rotate()


@app.command("db-upgrade")
def db_upgrade() -> None:
    """Create or migrate the alert store's schema to the newest version (idempotent)."""
    from alerts.db import upgrade

    settings = get_settings()
    upgrade(settings.store_url)
    typer.echo("alert store schema is current")


@app.command()
def up() -> None:
    """Run everything in the foreground: broker (if embedded), topics, worker, router, API.
    Ctrl-C stops all."""
    from cli.supervisor import Supervisor, shouwang_command
    from streams.faust_compat import FaustVersionError, check_version
    from streams.topic_provisioning import provision_topics

    try:
        check_version()  # the worker would refuse to start: say so before starting anything
    except FaustVersionError as exc:
        raise _fail(str(exc)) from None
    settings = get_settings()
    broker = local_broker(settings) if settings.uses_embedded_broker else None
    started_broker = False
    supervisor = Supervisor()
    supervisor.trap_signals()  # a Ctrl-C, even during start-up or twice, leads to a full clean stop
    try:
        if broker is not None:
            resolve_jars(settings.broker_lib_dir)
            if not broker.is_running():
                seconds = broker.start()
                started_broker = True
                log.info(
                    "Apache Kafka %s ready on %s in %.1f s",
                    kafka_version(settings.broker_lib_dir),
                    broker.bootstrap,
                    seconds,
                )
        report = provision_topics(settings)
        log.info("topics ready (created: %s)", ", ".join(report.created) or "none")
        from alerts.db import upgrade

        upgrade(settings.store_url)  # once here, so the processes below never race to migrate
        supervisor.spawn("worker", shouwang_command("worker"))
        supervisor.spawn("router", shouwang_command("router"))
        supervisor.spawn("api", shouwang_command("api"))
        log.info("Shouwang is up; Kafka at %s. Press Ctrl-C to stop.", settings.bootstrap_servers)
        code = supervisor.wait()
    finally:
        supervisor.stop_all()
        if broker is not None and started_broker:
            broker.stop()
            log.info("stopped the local broker")
    if code:
        raise typer.Exit(code)


@app.command("settings")
def show_settings() -> None:
    """Print the effective settings (secrets masked)."""
    settings = get_settings()
    for name, value in settings.model_dump().items():
        shown = "********" if "token" in name and value is not None else value
        typer.echo(f"SHOUWANG_{name.upper()}={'' if shown is None else shown}")


def _register_kafka_commands() -> None:
    from cli import fake_receivers, kafka_commands, tools

    app.command("send-reading")(kafka_commands.send_reading)
    app.command("send-raw")(kafka_commands.send_raw)
    app.command("tail")(kafka_commands.tail)
    app.command("webhook-receiver")(tools.webhook_receiver)
    app.command("fake-receiver")(fake_receivers.fake_receiver)
    app.command("sample-readings")(tools.sample_readings)


_register_kafka_commands()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``shouwang`` console script."""
    from shouwang.logs import configure_logging

    try:
        configure_logging(get_settings())
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and code:  # click hands typer.Exit's code back when not standalone
            sys.exit(code)
    except ValidationError as exc:
        errors = "; ".join(f"SHOUWANG_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        typer.echo(f"shouwang: bad setting: {errors}", err=True)
        sys.exit(2)
    except BrokerError as exc:
        typer.echo(f"shouwang: {exc}", err=True)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the user gets one line, not a traceback
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        typer.echo(f"shouwang: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
