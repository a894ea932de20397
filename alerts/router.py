"""`shouwang router`: consumes the alerts topic, runs the pipeline in a database transaction,
sends the outbox, and escalates or reminds on a timer — all in one asyncio process. It also consumes
the daily topic (meters' day summaries) and sends families their all-is-well message on the timer, and
enforces the retention settings (alerts/retention.py).

Processing guarantee: at-least-once. Kafka offsets are committed only after the database
transaction that recorded an event; a re-delivered event is dropped by the dedup stage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from alerts import metrics
from alerts.action_links import ActionLinkSigner, LinkMaker
from alerts.all_is_well import all_is_well_due, record_day
from alerts.channels.registry import Channels
from alerts.channels.types import ChannelType
from alerts.check_ins import check_ins_due, rechecks_due
from alerts.db import Store, durability_warnings
from alerts.feedback import FeedbackPublisher
from alerts.health_server import Heartbeats, OneAtATime, health_app, loop_answers, on_loop, serve
from alerts.lifecycle import acknowledgements_expired, escalate_due, remind_due
from alerts.models import Alert, Delivery, Endpoint, Household, Meter, utcnow
from alerts.monthly_report_send import monthly_reports_due
from alerts.outbox import OutboxConfig, OutboxDispatcher
from alerts.pipeline import RouteContext, router_config
from alerts.policy import parse_duration
from alerts.retention import RetentionJob, RetentionPolicy
from alerts.secret_box import secret_keys
from alerts.stages import default_pipeline
from alerts.statuses import AlertStatus, DeliveryStatus
from alerts.webhooks import EndpointLimiter, make_client, parse_schedule
from shouwang.deadletter import DeadLetter
from shouwang.durability import durable_producer
from shouwang.events import EventError, decode_alert, decode_daily_summary
from shouwang.health import OK
from shouwang.settings import Settings
from shouwang.topics import Topics

log = logging.getLogger(__name__)
# How often the timer looks for all-is-well messages due: a minute late is nothing for a daily message, and
# every pass reads every opted-in subscription.
ALL_IS_WELL_CHECK_S = 15.0
# How long each loop may go without a pass before /readyz calls the router not ready. A consume pass is a
# fetch of at most 0.5 s and a batch of database transactions (a failing one waits 1 s): a minute without one
# is a hang. A timer pass also sends the all-is-well messages and, on the 1st, the monthly reports: it gets
# two minutes, and a pass longer than that delays escalations by as much, which is not ready either.
LOOP_BOUNDS_S = {"consume": 60.0, "consume-daily": 60.0, "timers": 120.0}
# /readyz answers within the probe's 4 s whatever hangs: the database is asked (2 s) while the loop (1 s: a
# healthy one runs a call in microseconds) and then Kafka (2 s) are.
CHECK_TIMEOUT_S = 2.0
LOOP_ANSWER_S = 1.0


class Router:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
        timer_tick_s: float = 1.0,
        all_is_well_check_s: float = ALL_IS_WELL_CHECK_S,
        loop_bounds_s: Mapping[str, float] = LOOP_BOUNDS_S,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.timer_tick_s = timer_tick_s
        self.all_is_well_check_s = all_is_well_check_s
        self._all_is_well_checked: datetime | None = None
        self.config = router_config(settings)
        self.pipeline = default_pipeline()
        self.topics = Topics.from_settings(settings)
        self.store = Store(settings.store_url)
        for warning in durability_warnings(self.store.engine):  # said at every start, not refused: tests run so
            log.warning("%s; set it back on (docs/RELIABILITY.md)", warning)
        self.channels = Channels(settings)
        self.channels.check()  # a broken template override stops the router now, naming the file
        self.stop_event = asyncio.Event()
        self._open_labels: set[tuple[str, str, str]] = set()
        self.wake = asyncio.Event()
        # What /readyz reads from the HTTP server's threads (alerts/health_server.py).
        self.heartbeats = Heartbeats(loop_bounds_s)
        self._ping = OneAtATime(self._ping_database, timeout_s=CHECK_TIMEOUT_S, name="database-ping")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._consumer: AIOKafkaConsumer | None = None  # the alerts consumer, once started
        self._tasks: list[asyncio.Task[None]] = []

    def handle(self, record: ConsumerRecord) -> tuple[str, DeadLetter | None]:
        """One alert event through the pipeline, in one transaction. Returns the result."""
        try:
            if record.value is None:
                raise EventError("empty message (null value)")
            event = decode_alert(record.value)
        except EventError as exc:
            return "dead-letter", DeadLetter(
                str(exc), "invalid", record.key, record.value, record.topic, record.partition, record.offset
            )
        try:
            with self.store.transaction() as session:
                ctx = self.pipeline.run(
                    RouteContext(session=session, event=event, now=self.clock(), config=self.config)
                )
        except IntegrityError:
            ctx_result = "duplicate"  # another router recorded the same transition first
        else:
            ctx_result = ctx.result
        metrics.ALERT_EVENTS.labels(event.kind.value, event.severity.value, event.event, ctx_result.split(":")[0]).inc()
        # Ids only (no names, no addresses): enough to follow one alert across the processes' logs.
        log.info(
            "alert %s %s: %s",
            event.alert_id,
            event.event,
            ctx_result,
            extra={
                "alert_id": event.alert_id,
                "meter_id": event.meter_id,
                "grid_cell": event.grid_cell,
                "kind": event.kind.value,
                "result": ctx_result,
            },
        )
        return ctx_result, None

    def handle_daily(self, record: ConsumerRecord) -> tuple[str, DeadLetter | None]:
        """One meter's day summary kept (the newest per meter and day), in one transaction."""
        try:
            if record.value is None:
                raise EventError("empty message (null value)")
            summary = decode_daily_summary(record.value)
        except EventError as exc:
            return "dead-letter", DeadLetter(
                str(exc), "invalid", record.key, record.value, record.topic, record.partition, record.offset
            )
        for attempt in range(2):
            try:
                with self.store.transaction() as session:
                    return record_day(session, summary, now=self.clock()), None
            except IntegrityError:  # another router inserted the same day first: update theirs
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def consume(self) -> None:
        await self._consume("consume", self.topics.alerts, self.handle, wakes_dispatcher=True)

    async def consume_daily(self) -> None:
        # A day's summary makes no notification (the all-is-well message is the timers' work), so it does not
        # wake the dispatcher: one pass of the dispatcher's queries per summary kept each router busy.
        await self._consume("consume-daily", self.topics.daily, self.handle_daily, wakes_dispatcher=False)

    async def _consume(
        self,
        loop_name: str,
        topic: str,
        handle: Callable[[ConsumerRecord], tuple[str, DeadLetter | None]],
        *,
        wakes_dispatcher: bool,
    ) -> None:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=self.settings.bootstrap_servers,
            group_id=self.settings.router_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id=self.settings.router_id,
        )
        producer = durable_producer(self.settings.bootstrap_servers, client_id=self.settings.router_id)
        await consumer.start()
        await producer.start()
        if topic == self.topics.alerts:
            self._consumer = consumer
        try:
            while not self.stop_event.is_set():
                self.heartbeats.beat(loop_name)
                batches = await consumer.getmany(timeout_ms=500, max_records=200)
                for partition, records in batches.items():
                    await self._handle_partition(consumer, producer, partition, records, handle, wakes_dispatcher)
        finally:
            self._consumer = None if topic == self.topics.alerts else self._consumer
            await consumer.stop()
            await producer.stop()

    async def _handle_partition(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        partition: TopicPartition,
        records: list[ConsumerRecord],
        handle: Callable[[ConsumerRecord], tuple[str, DeadLetter | None]],
        wakes_dispatcher: bool,
    ) -> None:
        for record in records:
            try:
                _result, letter = await asyncio.to_thread(handle, record)
            except Exception:  # e.g. the database is down: do not commit, read it again later
                log.exception("event at %s@%d not recorded; will retry", partition, record.offset)
                with contextlib.suppress(IllegalStateError):  # the partition went to another router meanwhile
                    consumer.seek(partition, record.offset)
                await asyncio.sleep(1.0)
                return
            if letter is not None:
                await producer.send_and_wait(
                    self.topics.deadletter, key=letter.key, value=letter.value, headers=letter.headers()
                )
            try:
                await consumer.commit({partition: record.offset + 1})
            except (CommitFailedError, IllegalStateError) as exc:
                # The group rebalanced during this batch (a router joined, or one died): the partition is read
                # again from its last committed offset, by this router or another, and the dedup stage drops
                # what was already recorded. Stopping here would stop the router.
                log.warning("offset of %s@%d not committed, the group rebalanced: %s", partition, record.offset, exc)
                return
            if wakes_dispatcher:  # what it recorded may be due to send now
                self.wake.set()

    def run_timers_once(self) -> int:
        now = self.clock()
        with self.store.transaction() as session:
            changed = len(acknowledgements_expired(session, now=now, config=self.config))
            changed += len(escalate_due(session, now=now, config=self.config))
            changed += len(remind_due(session, now=now, config=self.config))
            changed += len(check_ins_due(session, now=now, config=self.config))
            changed += len(rechecks_due(session, now=now, config=self.config))
        if self._all_is_well_checked is None or now - self._all_is_well_checked >= timedelta(
            seconds=self.all_is_well_check_s
        ):
            changed += len(all_is_well_due(self.store, now=now))
            # The monthly report rides the same pass: due on the 1st, once per supervisor (its own unique row).
            at = self.settings.monthly_report_at
            changed += len(monthly_reports_due(self.store, now=now, public_url=self.settings.public_url, at=at))
            self._all_is_well_checked = now
        self.refresh_gauges()
        return changed

    def refresh_gauges(self) -> None:
        with self.store.transaction() as session:
            counts = session.execute(
                select(Alert.kind, Alert.severity, Alert.status, func.count())
                .where(Alert.status != AlertStatus.RESOLVED)
                .group_by(Alert.kind, Alert.severity, Alert.status)
            ).all()
            pending = session.scalar(select(func.count()).where(Delivery.status == DeliveryStatus.PENDING))
            enrolled = session.scalar(
                select(func.count()).select_from(Meter).join(Household).where(Household.erased_at.is_(None))
            )
            failing_query = (
                select(Endpoint.type, func.count()).where(Endpoint.failing_since.is_not(None)).group_by(Endpoint.type)
            )
            failing = {endpoint_type: count for endpoint_type, count in session.execute(failing_query)}
        # Update in place (no clear()): a scrape between clear and set would see no series and
        # restart the "unacknowledged for 30 minutes" rule's timer.
        current = {(kind, severity, status): count for kind, severity, status, count in counts}
        for labels in self._open_labels - current.keys():
            metrics.OPEN_ALERTS.remove(*labels)
        for labels, count in current.items():
            metrics.OPEN_ALERTS.labels(*labels).set(count)
        self._open_labels = set(current)
        metrics.PENDING_DELIVERIES.set(pending or 0)
        metrics.METERS_ENROLLED.set(enrolled or 0)
        for channel_type in ChannelType:  # every type a series, at 0 when none fails
            metrics.ENDPOINTS_FAILING.labels(channel_type.value).set(failing.get(channel_type.value, 0))

    async def timers(self) -> None:
        while not self.stop_event.is_set():
            self.heartbeats.beat("timers")
            try:
                if await asyncio.to_thread(self.run_timers_once):
                    self.wake.set()
            except Exception:
                log.exception("escalation/reminder pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), timeout=self.timer_tick_s)

    async def run(self) -> None:
        settings = self.settings
        # Webhooks and channels alike: every request checked by the SSRF guard, connected to the checked address.
        client = make_client(
            allow=settings.webhook_allowlist,
            require_https=settings.webhook_require_https,
            timeout_s=settings.webhook_timeout_s,
        )
        dispatcher = OutboxDispatcher(
            self.store,
            OutboxConfig(
                schedule=parse_schedule(settings.webhook_retry_schedule),
                lease=parse_duration(f"{settings.webhook_lease_s}s"),
                timeout_s=settings.webhook_timeout_s,
            ),
            client=client,
            limiter=EndpointLimiter(settings.webhook_endpoint_concurrency),
            clock=self.clock,
            links=LinkMaker(ActionLinkSigner(secret_keys(settings)), settings.public_url),
            channels=self.channels.build,
            box=self.channels.box,
        )
        publisher = FeedbackPublisher(self.store, self.topics.feedback, settings.bootstrap_servers, clock=self.clock)
        policy = RetentionPolicy.from_settings(settings)
        retention = RetentionJob(self.store, policy, every_s=settings.retention_check_s, clock=self.clock)
        self._loop = asyncio.get_running_loop()
        self._tasks = tasks = [
            asyncio.create_task(self.consume(), name="consume"),
            asyncio.create_task(self.consume_daily(), name="consume-daily"),
            asyncio.create_task(dispatcher.run(self.stop_event, self.wake), name="dispatch"),
            asyncio.create_task(self.timers(), name="timers"),
            asyncio.create_task(publisher.run(self.stop_event, tick_s=self.timer_tick_s), name="feedback"),
            asyncio.create_task(retention.run(self.stop_event), name="retention"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            self.stop_event.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await client.aclose()
            self.store.close()

    def readiness(self) -> dict[str, str]:
        """``/readyz``'s checks, called from the HTTP server's threads: each answers within its timeout
        whatever the asyncio loop does, so a blocked loop is reported rather than waited on."""
        database = self._ping.begin()
        checks = {"router": "stopping" if self.stop_event.is_set() else OK}
        loop = self._loop
        checks["event loop"] = "not running" if loop is None else loop_answers(loop, LOOP_ANSWER_S)
        if checks["event loop"] != OK or loop is None:
            checks["kafka"] = "not checked: the event loop does not answer"
        elif self._consumer is None:
            checks["kafka"] = "alerts consumer not started"
        else:
            checks["kafka"] = on_loop(loop, self._kafka_metadata, CHECK_TIMEOUT_S)
        checks["database"] = database()
        checks.update(self.heartbeats.checks())
        # The tasks without a heartbeat (sending, feedback, retention) at least run: one that returned
        # while the router runs would leave its work undone without stopping the router.
        ended = [task.get_name() for task in self._tasks if task.done()]
        checks["tasks"] = OK if not ended or self.stop_event.is_set() else "ended: " + ", ".join(ended)
        return checks

    async def _kafka_metadata(self) -> str:
        """One metadata request to the cluster, through the alerts consumer's connections: the brokers
        answer and the alerts topic exists."""
        consumer = self._consumer
        if consumer is None:
            return "alerts consumer stopped"
        return OK if self.topics.alerts in await consumer.topics() else f"topic {self.topics.alerts} missing"

    def _ping_database(self) -> None:
        with self.store.engine.connect() as connection:
            connection.execute(text("SELECT 1"))


def run_router(settings: Settings) -> None:
    """Entry point of `shouwang router`: metrics and health endpoints, signals, the router until stopped."""
    built: list[Router] = []  # /readyz says "starting" until the router is built (its store migrated)
    host, port = settings.router_metrics_host, settings.router_metrics_port
    serve(host, port, health_app(lambda: built[0].readiness() if built else {"router": "starting"}))
    log.info("router metrics on http://%s:%d/metrics, health on /healthz and /readyz", host, port)

    async def main() -> None:
        router = Router(settings)
        built.append(router)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, router.stop_event.set)
        await router.run()
        log.info("router stopped")

    asyncio.run(main())
