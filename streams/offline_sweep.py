"""The offline timer's work. Silent meters send nothing to drive their detectors: once a while,
time speaks for them. Only meters of partitions this worker owns (not standby copies), and only
those whose moment has passed, are loaded and asked (``streams.offline.OfflineWatch``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from shouwang.events import encode
from streams import metrics
from streams.offline import OfflineWatch, Pacer, partition_of
from streams.processing import ReadingProcessor
from streams.state_writes import Send


class OfflineSweep:
    """``states`` reads a meter's state (``StateWriter.get``), ``keys`` lists the meter-state
    table's keys, ``send_alert`` is the alerts topic's send, ``active_partitions`` the readings
    partitions this worker owns now, ``stopping`` whether the worker is stopping."""

    def __init__(
        self,
        *,
        watch: OfflineWatch,
        processor: ReadingProcessor,
        states: Callable[[bytes], bytes | None],
        keys: Callable[[], Iterable[bytes]],
        send_alert: Send,
        active_partitions: Callable[[], set[int]],
        stopping: Callable[[], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._watch = watch
        self._processor = processor
        self._states = states
        self._keys = keys
        self._send_alert = send_alert
        self._active_partitions = active_partitions
        self._stopping = stopping
        self._clock = clock

    async def run(self) -> None:
        """Index the partitions that are new here, then ask every meter that is due."""
        watch, processor = self._watch, self._processor
        active = self._active_partitions()
        new = watch.to_index(active)
        pacer = Pacer()  # thousands of meters can be due at once (a network outage): readings go on
        if new:
            # Keys only, then each new partition's states one by one, paced: listing every item at
            # once read all states in one go, which with RocksDB stalled the readings for seconds.
            for key in list(self._keys()):
                meter_id = key.decode()
                if partition_of(meter_id, watch.partitions) in new:
                    state = self._states(key)
                    if state is not None:
                        watch.saw(meter_id, processor.wake_at(state))
                await pacer.pace()
                if self._stopping():  # a stop during a long run: the producer goes before this timer
                    return
            watch.indexed(new)
        now = self._clock()
        for meter_id in watch.due(now, active):
            await pacer.pace()
            if self._stopping():
                return
            state = self._states(meter_id.encode())
            if state is None:
                continue
            alerts_found, wake_at = processor.advance(meter_id, state, now)
            watch.saw(meter_id, wake_at)
            for alert in alerts_found:
                await self._send_alert(key=meter_id.encode(), value=encode(alert))
                metrics.ALERTS_EMITTED.labels(alert.kind.value, alert.severity.value, alert.event).inc()
