"""The incidents agent's work, report by report: ``process_incident`` with its grid cell's state,
the alerts delivered, then the cell's new state."""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable
from typing import Any, Protocol

from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError

from streams import metrics
from streams.emitter import Emitter
from streams.incidents import process_incident
from streams.processing import SourceRecord
from streams.reading_agent import SourceEvent
from streams.state_writes import Send, delivered


class CellStates(Protocol):
    """The incident-cells table: each grid cell's state, a JSON-able dict."""

    def get(self, grid_cell: str, /) -> dict[str, Any] | None: ...

    def __setitem__(self, grid_cell: str, state: dict[str, Any], /) -> None: ...


class IncidentAgent:
    """``resend`` sends an alert again; ``stopping`` says whether the worker is stopping; ``give_up``
    stops every later commit (``StateWriter.give_up``)."""

    def __init__(
        self,
        *,
        cells: CellStates,
        emitter: Emitter,
        resend: Send,
        stopping: Callable[[], bool],
        give_up: Callable[[BaseException], None],
    ) -> None:
        self._cells = cells
        self._emitter = emitter
        self._resend = resend
        self._stopping = stopping
        self._give_up = give_up

    async def run(self, events: AsyncIterable[SourceEvent]) -> None:
        """Process the stream's events until it ends."""
        cells = self._cells
        async for event in events:
            message = event.message
            outcome = process_incident(
                SourceRecord(
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    key=message.key,
                    value=message.value,
                ),
                cells.get,
            )
            # Alerts delivered first, as for meters (streams/state_writes.py); reports are few, so
            # the agent simply waits.
            try:
                for alert in await self._emitter.emit(outcome):
                    await delivered(alert, self._resend, self._stopping)
            except (KafkaError, ProducerSendError) as exc:  # given up at a stop: this report is processed again
                self._give_up(exc)
                raise
            if outcome.state is not None and outcome.grid_cell is not None:
                cells[outcome.grid_cell] = outcome.state  # assignment reaches the changelog
            metrics.INCIDENTS_PROCESSED.inc()
