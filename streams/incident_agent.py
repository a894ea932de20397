"""The incidents agent's work, report by report: ``process_incident`` with its grid cell's state,
the alerts (and the report's area count, for a cell with neighbours) delivered, then the cell's new state."""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable
from typing import Any, Protocol

from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError

from detectors.incidents.area import GridNeighbours
from shouwang.events import encode
from streams import metrics
from streams.emitter import Emitter
from streams.incidents import process_incident
from streams.processing import SourceRecord
from streams.reading_agent import SourceEvent
from streams.state_writes import Send, SentAlert, delivered, failed_delivery

AREA_KEY = b"areas"  # every area count under one key: one partition, one watch sees every cell


class CellStates(Protocol):
    """The incident-cells table: each grid cell's state, a JSON-able dict."""

    def get(self, grid_cell: str, /) -> dict[str, Any] | None: ...

    def __setitem__(self, grid_cell: str, state: dict[str, Any], /) -> None: ...


class IncidentAgent:
    """``resend`` sends an alert again; ``stopping`` says whether the worker is stopping; ``give_up``
    stops every later commit (``StateWriter.give_up``). With ``neighbours`` and ``send_area`` (the
    incident-areas topic's send), reports of cells with neighbours are passed on to the area watch."""

    def __init__(
        self,
        *,
        cells: CellStates,
        emitter: Emitter,
        resend: Send,
        stopping: Callable[[], bool],
        give_up: Callable[[BaseException], None],
        neighbours: GridNeighbours | None = None,
        send_area: Send | None = None,
    ) -> None:
        self._cells = cells
        self._neighbours = neighbours if send_area is not None else None
        self._send_area = send_area
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
                self._neighbours,
            )
            # Alerts delivered first, as for meters (streams/state_writes.py); reports are few, so
            # the agent simply waits.
            try:
                sent = await self._emitter.emit(outcome)
                if outcome.area is not None and self._send_area is not None:
                    sent.append(await self._area_count(encode(outcome.area)))
                for alert in sent:
                    await delivered(alert, self._resend, self._stopping)
            except (KafkaError, ProducerSendError) as exc:  # given up at a stop: this report is processed again
                self._give_up(exc)
                raise
            if outcome.state is not None and outcome.grid_cell is not None:
                cells[outcome.grid_cell] = outcome.state  # assignment reaches the changelog
            metrics.INCIDENTS_PROCESSED.inc()

    async def _area_count(self, value: bytes) -> SentAlert:
        """The report's area count on its way, held like an alert: the cell's state waits for it, so a worker
        that dies in between passes the report on again (the area watch counts a report id once)."""
        assert self._send_area is not None
        try:
            delivery = await self._send_area(key=AREA_KEY, value=value)
        except (KafkaError, ProducerSendError) as exc:  # refused at once: sent again like a failed delivery
            delivery = failed_delivery(exc)
        return SentAlert(AREA_KEY, value, delivery, resend=self._send_area)
