"""The Faust app of the detector worker. Agents stay thin: they move bytes between Kafka and
``streams.processing``, where the logic lives."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from typing import Any

import faust
from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

import detectors
from shouwang.events import encode
from shouwang.logs import logging_config
from shouwang.settings import Settings
from shouwang.topics import Topics
from streams import metrics
from streams.detection import bank_factory
from streams.faust_compat import apply_fixes
from streams.faust_compat.memory_store import STORE_URL
from streams.faust_compat.table_writes import TableChangelog
from streams.incidents import IncidentOutcome, process_incident
from streams.offline import OfflineWatch, Pacer, partition_of
from streams.processing import Outcome, ReadingProcessor, SourceRecord
from streams.state_writes import SentAlert, StateWriter, delivered, failed_delivery
from streams.topic_provisioning import DEAD_LETTER_MAX_BYTES

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> faust.App:
    """Build the worker's Faust app, its topics and agents, from settings."""
    apply_fixes()  # refuses another Faust version; readings fetched around a seek are not skipped
    datadir = settings.var_dir / "worker" / settings.worker_id
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.worker_id,
        broker=settings.faust_broker_url,
        store=settings.worker_store,
        datadir=str(datadir),
        autodiscover=False,  # modules are listed explicitly (autodiscovery is fragile)
        topic_partitions=settings.readings_partitions,
        topic_replication_factor=settings.replication_factor,
        topic_disable_leader=True,  # no leader-only work: no extra __assignor topic needed
        web_host=settings.worker_web_host,
        web_port=settings.worker_web_port,
        producer_acks=-1,
        # Every record writes its meter's state to the changelog: without a linger each write is
        # its own produce request, and aiokafka's cost per request was a tenth of the worker's
        # time at 5 ms (6 % at 50 ms). 20 ms: an alert waits at most that long, against a p99
        # target of 100 ms from produce to alert.
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
    names = Topics.from_settings(settings)
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
    readings = app.topic(names.readings, **raw)
    alerts = app.topic(names.alerts, **raw)
    deadletter = app.topic(names.deadletter, **raw)
    incidents = app.topic(names.incidents, **raw)
    # Per grid cell: merged incidents and hotspot counts. Co-partitioned with the incidents topic
    # (keyed by grid cell), changelog-backed, so a restarted worker keeps what it had merged.
    incident_cells = app.Table("incident-cells", partitions=settings.incidents_partitions)  # JSON values
    # Per meter: the detector bank's state (a few hundred bytes), co-partitioned with the readings
    # (both keyed by meter id), changelog-backed: a restarted or rebalanced worker resumes every
    # household's learned routine from Kafka.
    # bytes keys and values are stored raw (a Schema with raw serializers is not applied when the
    # table recovers from its changelog, which then tries JSON: found by the SIGKILL test).
    # With the memory store, the table reads its changelog back itself (streams/faust_compat/memory_store.py).
    meter_state = app.Table(
        "meter-state",
        partitions=settings.readings_partitions,
        key_type=bytes,
        value_type=bytes,
        store=STORE_URL if settings.worker_store.startswith("memory:") else None,
    )

    async def send_alert(key: bytes, value: bytes) -> Awaitable[Any]:
        return await alerts.send(key=key, value=value)

    # meter_state[key] = value for less, and never ahead of the record's alerts (streams/state_writes.py)
    state_writer = StateWriter(TableChangelog(app, meter_state), alerts.send, app)
    metrics.STATES_HELD.set_function(lambda: state_writer.held)
    processor = ReadingProcessor(bank_factory(settings))
    offline = OfflineWatch(settings.readings_partitions)
    lag = metrics.LagReporter(frozenset({names.readings, names.incidents}))
    reporting = metrics.ReportingMeters()
    metrics.LAST_READING.set_to_current_time()
    metrics.DETECTORS_COMPILED.set(1 if detectors.COMPILED else 0)
    for error_class in metrics.DEAD_LETTER_CLASSES:  # series at 0 from the start, so rate() sees the first
        metrics.DEAD_LETTERS.labels(names.readings, error_class)

    async def emit(outcome: Outcome | IncidentOutcome) -> list[SentAlert]:
        """Send the outcome's alerts and dead letter; the alerts' deliveries, for the state to wait on."""
        sent = []
        for alert in outcome.alerts:
            key, value = (alert.meter_id or alert.grid_cell or "").encode(), encode(alert)
            try:
                delivery = await send_alert(key, value)
            except (KafkaError, ProducerSendError) as exc:  # refused at once: sent again like a failed delivery
                delivery = failed_delivery(exc)
            sent.append(SentAlert(key, value, delivery))
            metrics.ALERTS_EMITTED.labels(alert.kind.value, alert.severity.value, alert.event).inc()
        if outcome.dead_letter is not None:
            letter = outcome.dead_letter
            try:
                await deadletter.send(key=letter.key, value=letter.value, headers=letter.headers())
            except ProducerSendError as exc:  # e.g. too large even for the dead-letter topic: keep place, reason
                log.warning(
                    "dead letter for %s[%d]@%d not written whole (%s); written without its value",
                    letter.source_topic,
                    letter.source_partition,
                    letter.source_offset,
                    type(exc).__name__,
                )
                letter = letter.without_value(f"{type(exc).__name__}: {exc}")
                await deadletter.send(key=letter.key, value=None, headers=letter.headers())
            metrics.DEAD_LETTERS.labels(letter.source_topic, letter.error_class).inc()
        return sent

    @app.agent(readings, name="readings")
    async def process_readings(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            started = time.perf_counter()
            state = state_writer.get(message.key) if message.key else None
            outcome = processor.process(
                SourceRecord(
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    key=message.key,
                    value=message.value,
                ),
                state,
            )
            metrics.RECORDS_CONSUMED.inc()
            if outcome.rekeyed and outcome.meter_id is not None:
                # Not keyed by its meter: its state lives in another partition. Sent again under
                # the right key, it is processed there (once), instead of here.
                await readings.send(key=outcome.meter_id.encode(), value=message.value)
                metrics.READINGS_REKEYED.inc(outcome.reading_count)
                continue
            sent = await emit(outcome)
            if outcome.state is not None and outcome.meter_id is not None:
                # Written once the alerts are delivered: a state that has seen the reading must
                # never outlive, in Kafka, the alerts the reading raised.
                await state_writer.set(outcome.meter_id.encode(), outcome.state, message.partition, after=sent)
                offline.saw(outcome.meter_id, outcome.wake_at)
            if outcome.state_reset:
                metrics.STATE_RESETS.inc()
            metrics.PROCESSING_SECONDS.observe(time.perf_counter() - started)
            metrics.READINGS_PROCESSED.inc(outcome.reading_count)
            if outcome.reading_count and outcome.meter_id is not None:
                metrics.LAST_READING.set_to_current_time()
                reporting.saw(outcome.meter_id, time.time())

    @app.agent(incidents, name="incidents")
    async def process_incidents(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            outcome = process_incident(
                SourceRecord(
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    key=message.key,
                    value=message.value,
                ),
                incident_cells.get,
            )
            # Alerts delivered first, as for meters (streams/state_writes.py); reports are few, so
            # the agent simply waits.
            try:
                for alert in await emit(outcome):
                    await delivered(alert, alerts.send, lambda: bool(app.should_stop))
            except (KafkaError, ProducerSendError) as exc:  # given up at a stop: this report is processed again
                state_writer.give_up(exc)
                raise
            if outcome.state is not None and outcome.grid_cell is not None:
                incident_cells[outcome.grid_cell] = outcome.state  # assignment reaches the changelog
            metrics.INCIDENTS_PROCESSED.inc()

    @app.timer(interval=settings.offline_check_s, name="meter_offline")
    async def meters_offline() -> None:
        # Silent meters send nothing to drive their detectors: once a while, time speaks for them.
        # Only meters of partitions this worker owns (not standby copies), and only those whose
        # moment has passed, are loaded and asked (see streams/offline.py).
        active = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == names.readings}
        new = offline.to_index(active)
        pacer = Pacer()  # thousands of meters can be due at once (a network outage): readings go on
        if new:
            # Keys only, then each new partition's states one by one, paced: listing every item at
            # once read all states in one go, which with RocksDB stalled the readings for seconds.
            for key in list(meter_state.keys()):
                meter_id = key.decode()
                if partition_of(meter_id, offline.partitions) in new:
                    state = state_writer.get(key)
                    if state is not None:
                        offline.saw(meter_id, processor.wake_at(state))
                await pacer.pace()
                if app.should_stop:  # a stop during a long run: the producer goes before this timer
                    return
            offline.indexed(new)
        now = time.time()
        for meter_id in offline.due(now, active):
            await pacer.pace()
            if app.should_stop:
                return
            state = state_writer.get(meter_id.encode())
            if state is None:
                continue
            alerts_found, wake_at = processor.advance(meter_id, state, now)
            offline.saw(meter_id, wake_at)
            for alert in alerts_found:
                await send_alert(meter_id.encode(), encode(alert))
                metrics.ALERTS_EMITTED.labels(alert.kind.value, alert.severity.value, alert.event).inc()

    @app.timer(interval=metrics.LAG_INTERVAL_S, name="consumer_lag")
    async def consumer_lag() -> None:
        await lag.update(app.consumer)
        reporting.refresh(time.time())

    @app.page("/metrics")
    async def prometheus_metrics(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
        # aiohttp refuses a charset inside content_type; the exposition format is UTF-8 anyway.
        content_type = CONTENT_TYPE_LATEST.split(";")[0] + "; version=0.0.4"
        return web.bytes(generate_latest(), content_type=content_type)

    return app


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
    # every debug call on Faust's per-message path built a log record, about 3 % of the worker's time.
    worker.spinner = None
    log.info("detectors: %s", "compiled (mypyc)" if detectors.COMPILED else "plain Python (not compiled: slower)")
    return worker
