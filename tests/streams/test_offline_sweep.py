"""The offline timer's sweep without Faust: meters' states from the real processor, a stand-in alerts
topic, a chosen clock. Who is due is ``OfflineWatch``'s (tests/streams/test_offline.py)."""

from __future__ import annotations

import asyncio
import json

from shouwang.events import decode_alert
from shouwang.settings import Settings
from streams.detection import bank_factory
from streams.offline import OfflineWatch, partition_of
from streams.offline_sweep import OfflineSweep
from streams.processing import ReadingProcessor, SourceRecord
from tests.streams.kafka_fakes import FakeTopic

PARTITIONS = 4
T0 = 1772348400


class Rig:
    """A table of meters' states (each after one reading at T0) and the sweep over it."""

    def __init__(self, meters: list[str], *, active: set[int], now: float) -> None:
        self.processor = ReadingProcessor(bank_factory(Settings()))
        self.table: dict[bytes, bytes] = {}
        for meter in meters:
            value = json.dumps({"meter_id": meter, "ts": T0, "register_l": 1.0}).encode()
            outcome = self.processor.process(SourceRecord("t", 0, 0, meter.encode(), value))
            assert outcome.state is not None
            self.table[meter.encode()] = outcome.state
        self.alerts = FakeTopic("alerts")
        self.watch = OfflineWatch(PARTITIONS)
        self.active, self.now, self.stopping = active, now, False
        self.sweep = OfflineSweep(
            watch=self.watch,
            processor=self.processor,
            states=self.table.get,
            keys=self.table.keys,
            send_alert=self.alerts.send,
            active_partitions=lambda: self.active,
            stopping=lambda: self.stopping,
            clock=lambda: self.now,
        )

    def told(self) -> list[tuple[bytes | None, str, str]]:
        found = [(s.key, decode_alert(s.value)) for s in self.alerts.sent if s.value is not None]
        return [(key, alert.kind.value, alert.event) for key, alert in found]


def meters_in(partition: int, count: int) -> list[str]:
    return [m for m in (f"m-{i}" for i in range(10_000)) if partition_of(m, PARTITIONS) == partition][:count]


def test_a_silent_meter_is_told_offline_once() -> None:
    [meter] = meters_in(0, 1)
    rig = Rig([meter], active={0}, now=T0 + 30 * 86400)
    asyncio.run(rig.sweep.run())
    assert rig.told() == [(meter.encode(), "meter_offline", "raised")]
    asyncio.run(rig.sweep.run())
    assert len(rig.alerts.sent) == 1  # told: not again until its next reading


def test_a_meter_whose_moment_has_not_come_is_indexed_but_not_told() -> None:
    [meter] = meters_in(1, 1)
    rig = Rig([meter], active={1}, now=T0 + 60)
    asyncio.run(rig.sweep.run())
    assert rig.alerts.sent == []
    assert rig.watch.due(T0 + 30 * 86400, {1}) == [meter]  # indexed from the table: its moment is known


def test_only_the_partitions_this_worker_owns_are_indexed_and_told() -> None:
    [mine], [theirs] = meters_in(2, 1), meters_in(3, 1)
    rig = Rig([mine, theirs], active={2}, now=T0 + 30 * 86400)
    asyncio.run(rig.sweep.run())
    assert [key for key, _, _ in rig.told()] == [mine.encode()]
    rig.active = {2, 3}  # partition 3 arrives: indexed now, and its meter told
    asyncio.run(rig.sweep.run())
    assert [key for key, _, _ in rig.told()] == [mine.encode(), theirs.encode()]


def test_a_stopping_worker_tells_nobody() -> None:
    rig = Rig(meters_in(0, 3), active={0}, now=T0 + 30 * 86400)
    rig.stopping = True
    asyncio.run(rig.sweep.run())
    assert rig.alerts.sent == []
    assert rig.watch.to_index({0}) == {0}  # cut short: indexed again next time
