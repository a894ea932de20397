"""The feedback agent's work, record by record: the meter's state in, ``FeedbackProcessor``, then the
meter's new state out (or the record's dead letter).

**Same task as the readings.** The state a verdict teaches is the one the readings agent reads and
writes. Run as an agent of its own, a feedback record could be applied while the readings agent
waits between reading a meter's state and writing the next one (sending an alert), and that write
would then undo what the verdict taught. So the readings agent's stream carries the feedback topic
too, and ``divert`` takes the feedback records out of it and applies them in place, between two
readings: every write of a meter's state follows the one before. The feedback topic is
co-partitioned with the readings topic (same partition count, keyed by meter id), so its records
arrive in the partition that holds their meter's state (``streams.topic_provisioning``).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from streams import metrics
from streams.emitter import Emitter
from streams.feedback import FeedbackProcessor
from streams.processing import SourceRecord
from streams.reading_agent import MeterStates, SourceEvent, SourceMessage


class FeedbackAgent:
    """``topic`` is the feedback topic's name; ``states`` the meters' states (the readings agent's
    ``StateWriter``).

    The offline timer's watch is not told about the new state. Where a verdict lengthened the
    limits, the moment the watch holds is early: the timer finds nothing then and takes the state's
    new moment. Where limits shortened (hints for a meter that has readings), it is late until the
    meter's next reading. Telling the watch instead would put back a meter the timer has already
    told about (it stays out of the watch until its next reading) and so tell the same episode
    again, after a person has answered it. A meter whose consent was withdrawn, or whose household
    was erased, stays in the watch until its moment too: the timer then finds the marker, which no
    detector can load, tells nothing and forgets the meter.
    """

    def __init__(
        self,
        *,
        topic: str,
        processor: FeedbackProcessor,
        states: MeterStates,
        emitter: Emitter,
    ) -> None:
        self.topic = topic
        self._processor = processor
        self._states = states
        self._emitter = emitter

    async def run(self, events: AsyncIterable[SourceEvent]) -> None:
        """Process a stream of feedback records until it ends."""
        async for event in events:
            await self.handle(event.message)

    async def divert(self, events: AsyncIterable[SourceEvent]) -> AsyncIterator[SourceEvent]:
        """The events of ``events`` that are not feedback, in order; feedback records are handled on
        the way, before the next event is handed on (so a stream acknowledges each once it is done)."""
        topic, handle = self.topic, self.handle
        async for event in events:
            if event.message.topic == topic:
                await handle(event.message)
            else:
                yield event

    async def handle(self, message: SourceMessage) -> None:
        """One feedback record: its meter's new state written, or its dead letter sent."""
        key = message.key
        state = self._states.get(key) if key else None
        outcome = self._processor.process(
            SourceRecord(
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                key=key,
                value=message.value,
            ),
            state,
        )
        metrics.FEEDBACK_PROCESSED.inc()
        if outcome.dead_letter is not None:
            await self._emitter.emit(outcome)  # no alerts: learning never raises one
            return
        if outcome.state is not None and outcome.meter_id is not None:
            await self._states.set(outcome.meter_id.encode(), outcome.state, message.partition)
        if outcome.state_reset:
            metrics.STATE_RESETS.inc()
