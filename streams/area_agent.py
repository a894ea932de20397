"""The area agent's work, record by record: ``process_area_count`` with the area watch's stored states,
the alerts delivered, then the changed states (one per cell, one for the areas raised)."""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable

from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError

from detectors.incidents.area import GridNeighbours
from streams.emitter import Emitter
from streams.incident_agent import CellStates
from streams.incident_areas import process_area_count
from streams.processing import SourceRecord
from streams.reading_agent import SourceEvent
from streams.state_writes import Send, delivered


class AreaAgent:
    """``states``: the incident-areas table (one partition: every key is written from the one record);
    ``resend``, ``stopping`` and ``give_up`` as for the incidents agent."""

    def __init__(
        self,
        *,
        neighbours: GridNeighbours,
        states: CellStates,
        emitter: Emitter,
        resend: Send,
        stopping: Callable[[], bool],
        give_up: Callable[[BaseException], None],
    ) -> None:
        self._neighbours = neighbours
        self._states = states
        self._emitter = emitter
        self._resend = resend
        self._stopping = stopping
        self._give_up = give_up

    async def run(self, events: AsyncIterable[SourceEvent]) -> None:
        """Process the stream's events until it ends."""
        states = self._states
        async for event in events:
            message = event.message
            record = SourceRecord(message.topic, message.partition, message.offset, message.key, message.value)
            outcome = process_area_count(record, self._neighbours, states.get)
            # Alerts delivered before the states move past them, as for the incidents agent: a worker that
            # dies in between counts the report again from the topic, and the state's report ids keep it once.
            try:
                for alert in await self._emitter.emit(outcome):
                    await delivered(alert, self._resend, self._stopping)
            except (KafkaError, ProducerSendError) as exc:  # given up at a stop: processed again
                self._give_up(exc)
                raise
            for key, state in outcome.states.items():
                states[key] = state  # assignment reaches the changelog
