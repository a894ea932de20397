"""The readings agent's loop without Faust: the real processor, state writer, emitter and offline
watch, over stand-in topics and an in-memory changelog."""

from __future__ import annotations

import asyncio
import json
import math

from shouwang.events import decode_alert
from shouwang.settings import Settings
from streams.detection import bank_factory
from streams.emitter import Emitter
from streams.metrics import ReportingMeters
from streams.offline import OfflineWatch, partition_of
from streams.processing import ReadingProcessor
from streams.reading_agent import ReadingAgent
from streams.state_writes import StateWriter
from tests.streams.kafka_fakes import FakeTopic, MemoryChangelog, Message, Worker, events, sample, settle

PARTITIONS = 4
T0 = 1772348400  # 2026-03-01T07:00:00Z


class Rig:
    """The agent with its collaborators, all real but the topics and the changelog."""

    def __init__(self) -> None:
        self.readings, self.alerts, self.letters = FakeTopic("readings"), FakeTopic("alerts"), FakeTopic("deadletter")
        self.changelog = MemoryChangelog()
        self.states = StateWriter(self.changelog, self.alerts.send, Worker())
        self.offline = OfflineWatch(PARTITIONS)
        self.reporting = ReportingMeters()
        self.agent = ReadingAgent(
            processor=ReadingProcessor(bank_factory(Settings())),
            states=self.states,
            emitter=Emitter(self.alerts.send, self.letters.send),
            send_reading=self.readings.send,
            offline=self.offline,
            reporting=self.reporting,
        )

    async def run(self, *messages: Message) -> None:
        await self.agent.run(events(*messages))
        await settle()


def reading(
    meter: str, ts: int, register: float, *, key: bytes | None = None, offset: int = 0, **extra: object
) -> Message:
    value = json.dumps({"meter_id": meter, "ts": ts, "register_l": register, **extra}).encode()
    return Message("t.readings", partition_of(meter, PARTITIONS), offset, meter.encode() if key is None else key, value)


def test_a_reading_updates_its_meters_state_and_the_next_reading_starts_from_it() -> None:
    worker = Rig()
    processed = sample("shouwang_worker_readings_processed_total")
    # A register that runs backwards is a data-quality finding only for a bank that saw the first reading.
    asyncio.run(worker.run(reading("m1", T0, 100.0, offset=0), reading("m1", T0 + 3600, 50.0, offset=1)))
    [alert] = [decode_alert(s.value) for s in worker.alerts.sent if s.value is not None]
    assert (alert.kind.value, alert.meter_id) == ("data_quality", "m1")
    assert [(key, partition) for key, _, partition in worker.changelog.written] == [
        (b"m1", partition_of("m1", PARTITIONS))
    ] * 2
    assert worker.states.held == 0 and worker.letters.sent == [] and worker.readings.sent == []
    assert sample("shouwang_worker_readings_processed_total") == processed + 2
    assert set(worker.reporting.last_seen) == {"m1"}
    assert worker.offline.due(math.inf, set(range(PARTITIONS))) == ["m1"]  # time may speak for it now


def test_a_state_waits_for_the_alerts_its_reading_raised() -> None:
    async def run() -> None:
        worker = Rig()
        worker.alerts.hold = True
        await worker.run(reading("m2", T0, 5.0, flags=["burst"]))
        assert len(worker.alerts.sent) == 1 and worker.changelog.written == []
        assert worker.states.get(b"m2") is not None  # the next reading of the meter sees it already
        worker.alerts.deliveries[0].set_result(None)
        await settle()
        assert [key for key, _, _ in worker.changelog.written] == [b"m2"]

    asyncio.run(run())


def test_a_reading_under_another_key_is_sent_again_under_its_meter_and_not_processed_here() -> None:
    worker = Rig()
    rekeyed = sample("shouwang_worker_readings_rekeyed_total")
    message = reading("m3", T0, 5.0, key=b"gateway-9", flags=["burst"])
    asyncio.run(worker.run(message))
    [again] = worker.readings.sent
    assert (again.key, again.value) == (b"m3", message.value)
    assert worker.alerts.sent == [] and worker.changelog.written == [] and worker.reporting.last_seen == {}
    assert sample("shouwang_worker_readings_rekeyed_total") == rekeyed + 1


def test_a_record_that_is_not_a_reading_goes_to_the_dead_letters_and_leaves_no_state() -> None:
    worker = Rig()
    consumed = sample("shouwang_worker_records_consumed_total")
    asyncio.run(worker.run(Message("t.readings", 1, 7, b"m4", b"[]"), reading("m5", T0, 1.0)))
    [letter] = worker.letters.sent
    assert (letter.key, letter.value) == (b"m4", b"[]")
    assert [key for key, _, _ in worker.changelog.written] == [b"m5"]  # and the next record goes on
    assert sample("shouwang_worker_records_consumed_total") == consumed + 2


def test_states_whose_changelog_record_is_stale_are_written_again_by_their_partitions_next_write() -> None:
    """A store whose changelog ended a meter with a record older than the state it holds (a worker woken after
    the group moved its partition on wrote it) gives that state to be written again: compaction could otherwise
    keep only the stale record. The partition's next write does it, once; not for the meter being written, nor
    for one whose newer state is held for its alerts."""
    a, held, now = [m for m in (f"m{n}" for n in range(200)) if partition_of(m, PARTITIONS) == 0][:3]
    other = next(m for m in (f"m{n}" for n in range(200)) if partition_of(m, PARTITIONS) == 1)

    async def run() -> None:
        worker = Rig()
        worker.alerts.hold = True
        await worker.run(reading(held, T0, 5.0, flags=["burst"]))  # its state waits for the alert
        stale = [(a.encode(), b"state-a"), (held.encode(), b"old"), (now.encode(), b"old")]
        worker.changelog.stale = {0: stale, 1: [(other.encode(), b"state-other")]}
        await worker.run(reading(now, T0, 5.0, offset=1))
        written = [(key, value if key == a.encode() else b"", p) for key, value, p in worker.changelog.written]
        assert written == [(a.encode(), b"state-a", 0), (now.encode(), b"", 0)]
        assert worker.changelog.stale == {1: [(other.encode(), b"state-other")]}, "another partition's: its own"
        await worker.run(reading(now, T0 + 3600, 6.0, offset=2))
        assert [key for key, _, _ in worker.changelog.written] == [a.encode(), now.encode(), now.encode()]

    asyncio.run(run())
