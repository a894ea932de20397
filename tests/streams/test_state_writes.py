"""The state writer's ordering, with a stand-in producer and table: a meter's state reaches the
changelog only after its record's alerts are delivered, states stay in order, a flush (before a
commit) waits for the states held when it began, and an alert the producer gave up on is sent
again. The writer goes through the real Faust adapter (``TableChangelog``) over a stand-in table
and producer. The real worker, broker and SIGKILL are in tests/integration/test_alert_before_state.py."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError
from faust.streams import current_event

from streams.faust_compat.table_writes import TableChangelog
from streams.state_writes import SentAlert, StateWriter, StateWritesFailed, failed_delivery

CHANGELOG = "meter-state-changelog"


class Store(dict[bytes, bytes]):
    """A table's local store; notes the partition of the current event at each write, as RocksDB's
    store needs one (its database per partition)."""

    def __init__(self) -> None:
        super().__init__()
        self.persisted: dict[Any, int] = {}
        self.partitions: list[int | None] = []

    def __setitem__(self, key: bytes, value: bytes) -> None:
        event = current_event()
        self.partitions.append(None if event is None else event.message.partition)
        super().__setitem__(key, value)

    def set_persisted_offset(self, tp: Any, offset: int) -> None:
        self.persisted[tp] = offset


class Producer:
    """Records what is sent; each send's future is completed by the test (or at once)."""

    def __init__(self, *, deliver_at_once: bool = True) -> None:
        self.sent: list[tuple[str, bytes, bytes, int | None]] = []
        self.futures: list[asyncio.Future[Any]] = []
        self.deliver_at_once = deliver_at_once
        self.flushes = 0
        self.log: list[str] = []  # "send <value>" and "flush", in order

    async def send(
        self, topic: str, key: bytes, value: bytes, *, partition: int | None, timestamp: Any, headers: Any
    ) -> asyncio.Future[Any]:
        self.sent.append((topic, key, value, partition))
        self.log.append(f"send {value.decode()}")
        future = pending()
        if self.deliver_at_once:
            future.set_result(SimpleNamespace(offset=len(self.sent) - 1))
        self.futures.append(future)
        return future

    async def flush(self) -> None:
        self.flushes += 1
        self.log.append("flush")
        await asyncio.sleep(0)

    def states(self) -> list[bytes]:
        return [value for topic, _, value, _ in self.sent if topic == CHANGELOG]


def writer_for(producer: Producer, *, stopping: bool = False) -> tuple[StateWriter, Store, list[tuple[bytes, bytes]]]:
    store = Store()
    table = SimpleNamespace(
        data=store, get=store.get, changelog_topic=SimpleNamespace(get_topic_name=lambda: CHANGELOG)
    )
    resent: list[tuple[bytes, bytes]] = []

    async def resend(*, key: bytes | None, value: bytes | None, headers: Any = None) -> Awaitable[Any]:
        assert key is not None and value is not None
        resent.append((key, value))
        return await producer.send("alerts", key, value, partition=None, timestamp=None, headers=None)

    async def crash(exc: BaseException) -> None:
        raise AssertionError(f"the worker would crash: {exc!r}")

    app = SimpleNamespace(producer=producer, crash=crash, should_stop=stopping)
    changelog = TableChangelog(app, table)  # type: ignore[arg-type]
    return StateWriter(changelog, resend, app), store, resent  # type: ignore[arg-type]


def alert(loop_future: asyncio.Future[Any], meter: bytes = b"m1") -> SentAlert:
    return SentAlert(meter, b'{"alert": 1}', loop_future)


def pending() -> asyncio.Future[Any]:
    """A delivery (or any outcome) the test completes when it chooses."""
    return asyncio.get_running_loop().create_future()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_a_state_without_alerts_is_written_at_once() -> None:
    async def run() -> None:
        producer = Producer()
        writer, store, _ = writer_for(producer)
        await writer.set(b"m1", b"s1", 3)
        assert store == {b"m1": b"s1"}
        assert producer.sent == [(CHANGELOG, b"m1", b"s1", 3)]
        await settle()
        assert list(store.persisted.values()) == [0]  # the changelog offset is kept, as Faust does

    asyncio.run(run())


def test_states_wait_for_their_alerts_and_each_meter_stays_in_order() -> None:
    async def run() -> None:
        producer = Producer()
        writer, store, _ = writer_for(producer)
        waiting = pending()
        waiting_m4 = pending()
        await writer.set(b"m1", b"s1", 0, after=[alert(waiting)])
        await writer.set(b"m1", b"s2", 0)  # same meter, no alert: behind s1 all the same
        await writer.set(b"m4", b"v1", 0, after=[alert(waiting_m4, b"m4")])  # same partition, held too
        await writer.set(b"m2", b"t1", 0)  # same partition, another meter, nothing held: at once
        await writer.set(b"m3", b"u1", 1)
        await settle()
        assert producer.states() == [b"t1", b"u1"]
        assert store == {b"m2": b"t1", b"m3": b"u1"}, "a held state must not reach the local store (RocksDB keeps it)"
        assert writer.get(b"m1") == b"s2" and writer.get(b"m4") == b"v1"  # the agent sees the newest
        assert writer.held == 3
        waiting_m4.set_result(None)  # m4's alert first: it still waits behind m1 (one queue)
        await settle()
        assert producer.states() == [b"t1", b"u1"]
        waiting.set_result(None)
        await settle()
        assert producer.states() == [b"t1", b"u1", b"s1", b"s2", b"v1"]
        assert store == {b"m1": b"s2", b"m2": b"t1", b"m3": b"u1", b"m4": b"v1"}
        assert writer.held == 0
        await writer.set(b"m1", b"s3", 0)  # the hold is over: written at once again
        assert producer.states()[-1] == b"s3"

    asyncio.run(run())


def test_a_flush_waits_for_the_states_held_when_it_began() -> None:
    async def run() -> None:
        producer = Producer()
        writer, _, _ = writer_for(producer)
        first = pending()
        await writer.set(b"m1", b"s1", 0, after=[alert(first)])
        flushing = asyncio.ensure_future(producer.flush())  # the wrapped flush, as Faust calls it
        await settle()
        assert not flushing.done(), "a commit went ahead of a held state"
        later = pending()
        await writer.set(b"m2", b"t1", 0, after=[alert(later)])  # held after the flush began
        first.set_result(None)
        await asyncio.wait_for(flushing, timeout=5)  # done without waiting for the later one
        assert producer.states() == [b"s1"]
        assert writer.held == 1
        later.set_result(None)
        await settle()
        assert producer.states() == [b"s1", b"t1"]

    asyncio.run(run())


def test_an_alert_the_producer_gave_up_on_is_sent_again_before_the_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("streams.state_writes.RESEND_FIRST_PAUSE_S", 0.01)

    async def run() -> None:
        producer = Producer()
        writer, _, resent = writer_for(producer)
        failed = pending()
        await writer.set(b"m1", b"s1", 0, after=[alert(failed)])
        failed.set_exception(KafkaConnectionError("broker away"))
        await asyncio.sleep(0.1)
        assert resent == [(b"m1", b'{"alert": 1}')]
        assert producer.sent[0][0] == "alerts" and producer.states() == [b"s1"]  # alert again, then state

    asyncio.run(run())


def test_an_alert_that_cannot_be_sent_does_not_hold_the_partition_for_ever() -> None:
    async def run() -> None:
        producer = Producer()
        writer, _, resent = writer_for(producer)
        refused = pending()
        await writer.set(b"m1", b"s1", 0, after=[alert(refused)])
        refused.set_exception(MessageSizeTooLargeError())
        await settle()
        assert resent == [] and producer.states() == [b"s1"]

    asyncio.run(run())


def test_a_stopping_worker_gives_up_its_held_states_and_the_commit_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    # Sending again for ever would keep a stop waiting on an absent broker. Giving up writes
    # neither the alert nor the state, and fails the commit: the next worker processes them again.
    monkeypatch.setattr("streams.state_writes.RESEND_FIRST_PAUSE_S", 0.01)

    async def run() -> None:
        producer = Producer()
        writer, store, resent = writer_for(producer, stopping=True)
        failed = pending()
        await writer.set(b"m1", b"s1", 0, after=[alert(failed)])
        flushing = asyncio.ensure_future(producer.flush())
        await settle()
        failed.set_exception(KafkaConnectionError("broker away"))
        with pytest.raises(StateWritesFailed):
            await asyncio.wait_for(flushing, timeout=5)
        assert resent == [] and producer.states() == [] and store == {}
        with pytest.raises(StateWritesFailed):  # and every later commit too: none may pass these records
            await producer.flush()

    asyncio.run(run())


def test_a_flush_waits_for_the_last_held_state_of_a_partition_then_flushes_it() -> None:
    async def run() -> None:
        producer = Producer()
        writer, _, _ = writer_for(producer)
        first = pending()
        second = pending()
        await writer.set(b"m1", b"s1", 0, after=[alert(first)])
        await writer.set(b"m2", b"t1", 0, after=[alert(second, b"m2")])
        flushing = asyncio.ensure_future(producer.flush())
        await settle()  # the flush has begun while both are held
        first.set_result(None)
        await settle()
        assert producer.states() == [b"s1"] and not flushing.done(), "committed ahead of a later held state"
        second.set_result(None)
        await asyncio.wait_for(flushing, timeout=5)
        # the states' changelog records are flushed too, not only sent
        assert producer.log[-2:] == ["send t1", "flush"], producer.log

    asyncio.run(run())


def test_held_states_are_stored_under_their_partition() -> None:
    # A RocksDB store picks the partition's database from the current event; the held state is
    # written from another task than the record's, after Faust's weak reference to it has gone.
    async def run() -> None:
        producer = Producer()
        writer, store, _ = writer_for(producer)
        waiting = pending()
        await writer.set(b"m1", b"s1", 5, after=[alert(waiting)])
        waiting.set_result(None)
        await settle()
        assert store == {b"m1": b"s1"} and store.partitions == [5]

    asyncio.run(run())


def test_a_cancelled_flush_leaves_the_held_states_to_be_written() -> None:
    # Faust cancels a flush on a timeout or a new rebalance; the states must still go out.
    async def run() -> None:
        producer = Producer()
        writer, _, _ = writer_for(producer)
        waiting = pending()
        await writer.set(b"m1", b"s1", 0, after=[alert(waiting)])
        flushing = asyncio.ensure_future(producer.flush())
        await settle()
        await writer.set(b"m1", b"s2", 0)
        flushing.cancel()
        await settle()
        waiting.set_result(None)
        await settle()
        assert producer.states() == [b"s1", b"s2"]
        await asyncio.wait_for(producer.flush(), timeout=5)  # and commits go on

    asyncio.run(run())


def test_a_commit_fails_rather_than_wait_for_ever(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("streams.state_writes.HELD_WAIT_S", 0.05)

    async def run() -> None:
        producer = Producer()
        writer, _, _ = writer_for(producer)
        never = pending()
        await writer.set(b"m1", b"s1", 0, after=[alert(never)])
        with pytest.raises(StateWritesFailed, match="still wait"):
            await asyncio.wait_for(producer.flush(), timeout=5)
        assert producer.states() == []
        never.set_result(None)  # delivered at last: written, and nothing left pending
        await settle()
        assert producer.states() == [b"s1"]

    asyncio.run(run())


def test_an_alert_refused_at_the_send_is_sent_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("streams.state_writes.RESEND_FIRST_PAUSE_S", 0.01)

    async def run() -> None:
        producer = Producer()
        writer, _, resent = writer_for(producer)
        await writer.set(b"m1", b"s1", 0, after=[alert(failed_delivery(KafkaConnectionError("no leader")))])
        await asyncio.sleep(0.1)
        assert resent == [(b"m1", b'{"alert": 1}')] and producer.states() == [b"s1"]

    asyncio.run(run())
