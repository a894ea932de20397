"""The readings agent's work, record by record: the meter's state in, ``ReadingProcessor``, the
alerts and dead letter out, then the meter's new state, written after its alerts."""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, Sequence
from typing import Protocol

from streams import metrics
from streams.emitter import Emitter
from streams.offline import OfflineWatch
from streams.processing import ReadingProcessor, SourceRecord
from streams.state_writes import Send, SentAlert


class SourceMessage(Protocol):
    """A Kafka record as Faust's streams hand it over (``faust.types.tuples.Message``)."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...


class SourceEvent(Protocol):
    """One event of an agent's stream (``stream.events()``): its message."""

    @property
    def message(self) -> SourceMessage: ...


class MeterStates(Protocol):
    """The meters' detector states (``streams.state_writes.StateWriter``)."""

    def get(self, key: bytes, /) -> bytes | None: ...

    async def set(self, key: bytes, value: bytes, partition: int, after: Sequence[SentAlert] = ()) -> None: ...


class ReadingAgent:
    """``send_reading`` is the readings topic's send, for a record that came under another key."""

    def __init__(
        self,
        *,
        processor: ReadingProcessor,
        states: MeterStates,
        emitter: Emitter,
        send_reading: Send,
        offline: OfflineWatch,
        reporting: metrics.ReportingMeters,
    ) -> None:
        self._processor = processor
        self._states = states
        self._emitter = emitter
        self._send_reading = send_reading
        self._offline = offline
        self._reporting = reporting

    async def run(self, events: AsyncIterable[SourceEvent]) -> None:
        """Process the stream's events until it ends. The loop lives here, not in the Faust agent,
        so that a record costs no call more than the work itself."""
        # Bound once: a record costs no attribute lookup more than in a loop written inline.
        process, emit, send_reading = self._processor.process, self._emitter.emit, self._send_reading
        get_state, set_state = self._states.get, self._states.set
        offline_saw, reporting_saw = self._offline.saw, self._reporting.saw
        perf_counter = time.perf_counter
        async for event in events:
            message = event.message
            started = perf_counter()
            state = get_state(message.key) if message.key else None
            outcome = process(
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
                await send_reading(key=outcome.meter_id.encode(), value=message.value)
                metrics.READINGS_REKEYED.inc(outcome.reading_count)
                continue
            sent = await emit(outcome)
            if outcome.state is not None and outcome.meter_id is not None:
                # Written once the alerts are delivered: a state that has seen the reading must
                # never outlive, in Kafka, the alerts the reading raised.
                await set_state(outcome.meter_id.encode(), outcome.state, message.partition, after=sent)
                offline_saw(outcome.meter_id, outcome.wake_at)
            if outcome.state_reset:
                metrics.STATE_RESETS.inc()
            if outcome.dropped_no_consent:
                metrics.READINGS_DROPPED_NO_CONSENT.inc(outcome.dropped_no_consent)
            metrics.PROCESSING_SECONDS.observe(perf_counter() - started)
            metrics.READINGS_PROCESSED.inc(outcome.reading_count)
            if outcome.reading_count and outcome.meter_id is not None:
                metrics.LAST_READING.set_to_current_time()
                reporting_saw(outcome.meter_id, time.time())
