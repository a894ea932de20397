"""Faust's own recovery, given a standby changelog partition that an assignment added while it ran (the
offset ``None``, as ``Recovery.add_standby`` leaves it), seeks it to the changelog's start instead of crashing
the worker (streams/faust_compat/recovery_seek.py; found by the fault run). The recovery object and its
``add_standby`` are Faust's; the consumer only records the seek, as aiokafka's checks it."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import pytest
from faust.tables.recovery import Recovery
from faust.types import TP

from streams.faust_compat import apply_fixes, recovery_seek


class SeekRecorder:
    """Checks each offset as aiokafka's ``AIOKafkaConsumer.seek`` does, and keeps what it was asked."""

    def __init__(self) -> None:
        self.seeks: dict[TP, int] = {}

    async def seek_wait(self, partitions: dict[TP, Any]) -> None:
        for tp, offset in partitions.items():
            if not isinstance(offset, int) or offset < 0:
                raise ValueError("Offset must be a positive integer")
            self.seeks[tp] = offset


class Table:
    def persisted_offset(self, tp: TP) -> int | None:
        return None  # nothing persisted: a partition this worker has not held


def test_a_standby_partition_added_during_a_recovery_is_seeked_to_its_start_not_crashed_on() -> None:
    app = faust.App("recovery-seek-test", broker="kafka://127.0.0.1:9", store="memory://")
    recovery = Recovery(app, tables=app.tables)
    read = TP("shouwang-meter-state-changelog", 4)
    recovery.add_standby(Table(), read)  # type: ignore[arg-type]
    recovery.standby_offsets[read] = 6225  # the recovery's _build_offsets ran for this one
    added = TP("shouwang-incident-cells-changelog", 1)
    recovery.add_standby(Table(), added)  # type: ignore[arg-type]  # the next assignment's, mid-recovery
    assert recovery.standby_offsets[added] is None

    def seek(method: Any, consumer: SeekRecorder) -> None:
        asyncio.run(method(recovery, consumer, recovery.standby_tps, recovery.standby_offsets, "standby"))

    with pytest.raises(ValueError, match="positive integer"):  # what the worker crashed on
        seek(recovery_seek.UPSTREAM_SEEK_OFFSETS, SeekRecorder())
    apply_fixes()
    assert Recovery._seek_offsets is recovery_seek._seek_offsets  # type: ignore[comparison-overlap]
    consumer = SeekRecorder()
    seek(Recovery._seek_offsets, consumer)
    assert consumer.seeks == {read: 6225, added: 0}
