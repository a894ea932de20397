"""The Faust app of the detector worker: settings, topics, tables, and the agents and timers wired
to the code that does their work (``streams.reading_agent``, ``streams.incident_agent``,
``streams.offline_sweep``, ``streams.emitter``, ``streams.state_writes``, ``streams.feedback_agent``,
``streams.area_agent``). Agents stay thin."""

from __future__ import annotations

import logging
import time
from typing import cast

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

import detectors
from detectors.bank import state_reading_time
from detectors.incidents.area import GridNeighbours
from shouwang import health
from shouwang.logs import logging_config
from shouwang.settings import Settings
from shouwang.topics import Topics
from streams import metrics
from streams.area_agent import AreaAgent
from streams.detection import bank_factory
from streams.emitter import Emitter
from streams.faust_compat import apply_fixes
from streams.faust_compat.memory_store import STORE_URL, ChangelogReadingStore
from streams.faust_compat.table_writes import TableChangelog
from streams.feedback import FeedbackProcessor
from streams.feedback_agent import FeedbackAgent
from streams.health import PROGRESS_INTERVAL_S, ProgressWatch, RebalanceMonitor, worker_checks
from streams.incident_agent import IncidentAgent
from streams.incident_areas import load_neighbours
from streams.offline import OfflineWatch
from streams.offline_sweep import OfflineSweep
from streams.processing import ReadingProcessor
from streams.reading_agent import ReadingAgent
from streams.state_writes import StateWriter
from streams.topic_provisioning import AREA_PARTITIONS, DEAD_LETTER_MAX_BYTES

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> faust.App:
    """Build the worker's Faust app, its topics and agents, from settings."""
    apply_fixes()  # refuses another Faust version; readings fetched around a seek are not skipped
    neighbours = _neighbours(settings)  # before anything starts: a bad registry stops the worker in one line
    app = _faust_app(settings)
    names = Topics.from_settings(settings)
    readings = _raw_topic(app, names.readings)
    alerts = _raw_topic(app, names.alerts)
    deadletter = _raw_topic(app, names.deadletter)
    incidents = _raw_topic(app, names.incidents)
    daily = _raw_topic(app, names.daily)  # meters' day summaries, for the routers' all-is-well messages
    # The readings agent's source: the readings, and the feedback that teaches the same meters'
    # states, co-partitioned with them (streams/feedback_agent.py says why one agent reads both).
    meter_records = _raw_topic(app, names.readings, names.feedback)
    # Per grid cell: merged incidents and hotspot counts. Co-partitioned with the incidents topic
    # (keyed by grid cell), changelog-backed, so a restarted worker keeps what it had merged.
    incident_cells = app.Table("incident-cells", partitions=settings.incidents_partitions)  # JSON values
    # Per meter: the detector bank's state (a few hundred bytes), co-partitioned with the readings
    # (both keyed by meter id), changelog-backed: a restarted or rebalanced worker resumes every
    # household's learned routine from Kafka.
    # bytes keys and values are stored raw (a Schema with raw serializers is not applied when the
    # table recovers from its changelog, which then tries JSON).
    # With the memory store, the table reads its changelog back itself (streams/faust_compat/memory_store.py).
    meter_state = app.Table(
        "meter-state",
        partitions=settings.readings_partitions,
        key_type=bytes,
        value_type=bytes,
        store=STORE_URL if settings.worker_store.startswith("memory:") else None,
    )

    if isinstance(meter_state.data, ChangelogReadingStore):  # of two states of a meter, the later reading wins
        meter_state.data.version_of = state_reading_time
    # meter_state[key] = value for less, and never ahead of the record's alerts (streams/state_writes.py)
    state_writer = StateWriter(TableChangelog(app, meter_state), alerts.send, app)
    processor = ReadingProcessor(bank_factory(settings), max_skew_s=settings.clock_skew_s)
    offline = OfflineWatch(settings.readings_partitions)
    reporting = metrics.ReportingMeters()
    emitter = Emitter(alerts.send, deadletter.send, daily.send)
    reading_agent = ReadingAgent(
        processor=processor,
        states=state_writer,
        emitter=emitter,
        send_reading=readings.send,
        offline=offline,
        reporting=reporting,
    )
    feedback_agent = FeedbackAgent(
        topic=names.feedback,
        processor=FeedbackProcessor(bank_factory(settings), partitions=settings.readings_partitions),
        states=state_writer,
        emitter=emitter,
    )
    # The area watch (only with a neighbour registry): the incidents agent passes on the reports of cells
    # with neighbours under one key, so one agent, with one table partition, sees every cell of an area.
    areas = app.topic(
        names.incident_areas,
        partitions=AREA_PARTITIONS,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    incident_agent = IncidentAgent(
        cells=incident_cells,
        emitter=emitter,
        resend=alerts.send,
        stopping=lambda: bool(app.should_stop),
        give_up=state_writer.give_up,
        neighbours=neighbours,
        send_area=areas.send if neighbours is not None else None,
    )
    sweep = OfflineSweep(
        watch=offline,
        processor=processor,
        states=state_writer.get,
        keys=meter_state.keys,
        send_alert=alerts.send,
        active_partitions=lambda: {
            tp.partition for tp in app.assignor.assigned_actives() if tp.topic == names.readings
        },
        stopping=lambda: bool(app.should_stop),
    )
    lagging = {names.readings, names.feedback, names.incidents} | ({names.incident_areas} if neighbours else set())
    lag = metrics.LagReporter(frozenset(lagging))
    progress = ProgressWatch(frozenset(lagging))  # for /readyz: a worker alive but stuck is not ready
    metrics.STATES_HELD.set_function(lambda: state_writer.held)
    metrics.LAST_READING.set_to_current_time()
    metrics.DETECTORS_COMPILED.set(1 if detectors.COMPILED else 0)
    for error_class in metrics.DEAD_LETTER_CLASSES:  # series at 0 from the start, so rate() sees the first
        metrics.DEAD_LETTERS.labels(names.readings, error_class)
        metrics.DEAD_LETTERS.labels(names.feedback, error_class)

    @app.agent(meter_records, name="readings")
    async def process_readings(stream: faust.StreamT[bytes]) -> None:
        await reading_agent.run(feedback_agent.divert(stream.events()))

    @app.agent(incidents, name="incidents")
    async def process_incidents(stream: faust.StreamT[bytes]) -> None:
        await incident_agent.run(stream.events())

    if neighbours is not None:
        area_agent = AreaAgent(
            neighbours=neighbours,
            # Per cell of the registry (its counts) and one key for the areas raised; changelog-backed.
            states=app.Table("incident-areas", partitions=AREA_PARTITIONS),  # JSON values
            emitter=emitter,
            resend=alerts.send,
            stopping=lambda: bool(app.should_stop),
            give_up=state_writer.give_up,
        )

        @app.agent(areas, name="incident_areas")
        async def process_areas(stream: faust.StreamT[bytes]) -> None:
            await area_agent.run(stream.events())

    @app.timer(interval=settings.offline_check_s, name="meter_offline")
    async def meters_offline() -> None:
        await sweep.run()

    @app.timer(interval=metrics.LAG_INTERVAL_S, name="consumer_lag")
    async def consumer_lag() -> None:
        await lag.update(app.consumer)
        reporting.refresh(time.time())

    @app.timer(interval=PROGRESS_INTERVAL_S, name="progress")
    async def measure_progress() -> None:
        await progress.measure(app.consumer)

    @app.page("/healthz")
    async def healthz(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        return web.json(health.alive())

    @app.page("/readyz")
    async def readyz(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        # Only reads of the app's state on its own loop: the answer is immediate (streams/health.py).
        status, body = health.readiness(worker_checks(app, progress, cast(RebalanceMonitor, app.monitor)))
        return web.json(body, status=status)

    @app.page("/metrics")
    async def prometheus_metrics(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        # aiohttp refuses a charset inside content_type; the exposition format is UTF-8 anyway.
        content_type = CONTENT_TYPE_LATEST.split(";")[0] + "; version=0.0.4"
        return web.bytes(generate_latest(), content_type=content_type)

    return app


def _neighbours(settings: Settings) -> GridNeighbours | None:
    if settings.grid_neighbours is None:
        return None
    neighbours = load_neighbours(settings.grid_neighbours)
    log.info("area watch: %d grid cells with neighbours, %d areas", len(neighbours), len(neighbours.areas))
    return neighbours


def _faust_app(settings: Settings) -> faust.App:
    datadir = settings.var_dir / "worker" / settings.worker_id
    datadir.parent.mkdir(parents=True, exist_ok=True)
    return faust.App(
        settings.worker_id,
        broker=settings.faust_broker_url,
        store=settings.worker_store,
        datadir=str(datadir),
        autodiscover=False,  # modules are listed explicitly (autodiscovery is fragile)
        Monitor=RebalanceMonitor,  # Faust's monitor, which also keeps when rebalances start and end (/readyz)
        topic_partitions=settings.readings_partitions,
        # Only for a table's changelog Faust finds missing at start: `shouwang topics` (or `up`) creates
        # them first, with the cluster's replication (streams/topic_provisioning.py).
        topic_replication_factor=settings.replication_factor or 1,
        topic_disable_leader=True,  # no leader-only work: no extra __assignor topic needed
        web_host=settings.worker_web_host,
        web_port=settings.worker_web_port,
        # Faust's /table pages serve any key's stored value without a key (a household's learned routine),
        # and /router the topology: the worker's port is for Prometheus and the health probes only.
        web_tables_enabled=False,
        web_router_enabled=False,
        producer_acks=-1,  # and idempotence: streams/faust_compat/producer.py
        # Every record writes its meter's state to the changelog: without a linger each write is
        # its own produce request, and aiokafka's cost per request is a large share of the worker's
        # time (docs/BENCHMARKS.md). 20 ms: an alert waits at most that long, against a p99 target
        # of 100 ms from produce to alert.
        producer_linger=0.02,
        producer_max_batch_size=256 * 1024,
        # A dead letter carries a rejected message whole, and that may be as large as the broker
        # accepts (about 1 MB) plus headers: the producer's 1,000,000-byte default refused them.
        producer_max_request_size=DEAD_LETTER_MAX_BYTES,
        broker_request_timeout=90,
        broker_commit_interval=1.0,
        # A worker killed without leaving the group holds its partitions until this runs out:
        # it bounds how long its meters wait after a crash (the default is 60 s).
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
    )


def _raw_topic(app: faust.App, *names: str) -> faust.TopicT:
    """A topic (or several, read as one) of raw bytes, keys and values: the agents decode them themselves."""
    return app.topic(*names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")


def create_worker(settings: Settings) -> faust.Worker:
    """The worker process around the app, logging as the settings say."""
    worker = faust.Worker(
        create_app(settings),
        loglevel=settings.log_level,
        logging_config=logging_config(settings),
        redirect_stdouts=False,
        quiet=True,
    )
    # Faust's terminal spinner sets the root logger to DEBUG (its handler then drops the records):
    # every debug call on Faust's per-message path would build a log record.
    worker.spinner = None
    log.info("detectors: %s", "compiled (mypyc)" if detectors.COMPILED else "plain Python (not compiled: slower)")
    return worker
