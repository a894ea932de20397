"""The fetch-loop fix (``streams/faust_compat/fetch_loop.py``) against the loop Faust 0.15.3 ships.

Each scenario drives the REAL ``Consumer._drain_messages`` of a real ``faust.App``'s consumer (the
aiokafka driver's), with its real ``getmany``, flow control (``stop_flow``/``resume_flow``) and
``perform_seek``. Only what lies below them is replaced: the partition as the client library would
return it (``_getmany``, ``seek_to_committed``, ``_seek``, ``highwater``: a list of records and a
fetch position, no broker) and the hand-off to the streams (``consumer.callback``: it records the
offsets handed over, and the hand-off of one reading blocks, as when the agent's buffer is full).

The rebalance, as Faust runs it: flow stops, the partition is sought back to its committed offset
(18), flow resumes. Faust clears the streams' buffers when flow stops (``App._on_partitions_revoked``:
``flow_control.clear()``), so whatever was handed over before the seek may never be processed: every
reading from the committed offset on must be handed over again after the seek. The fetch loop is one
asyncio task among others, so the rebalance can find it at several points (``Moment``):
  - the hand-off of 20 waiting (18 and 19 handed over), the loop noticing the suspension only after
    flow resumed, or between the seek and the resume: these need the fix's "a record whose hand-off
    did not complete is not marked read";
  - between two records of a 150-record batch (Faust's loop yields every 100 records): this needs
    the fix's seek epoch, which leaves the rest of a batch returned before a seek.
The seek here completes without yielding (no broker, no consumer thread), which is what lets the
rebalance finish before the loop gets its next turn.

The upstream loop is loaded afresh from the installed Faust's source, so it is the loop as shipped
even when ``fetch_loop.apply()`` has already patched ``Consumer`` in this process. Each upstream
case asserts the loss it suffers in the same scenario: proof that the scenario reproduces the bug,
so that the fixed loop passing it means something.
"""

from __future__ import annotations

import asyncio
import importlib.util
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MethodType, ModuleType
from typing import Any, Literal, cast, get_args

import faust
import faust.transport.consumer
import pytest
from aiokafka.structs import ConsumerRecord
from faust.transport.consumer import Consumer
from faust.types import TP, Message
from mode import Service

from streams.faust_compat import fetch_loop

Loop = Literal["fixed", "upstream"]
# Where the fetch loop is when the rebalance seeks back (see _scenario).
Moment = Literal[
    "hand_off_cut_short_loop_wakes_after_resume", "hand_off_cut_short_loop_wakes_before_resume", "between_records"
]
MOMENTS: list[Moment] = list(get_args(Moment))

TOPIC = "readings"
PARTITION = TP(TOPIC, 0)
COMMITTED = 18  # the group's committed offset: where the rebalance seeks back to
SHORT_END = 24  # offsets 18..23: the offsets of the skip once seen in a worker's log
BLOCKED = 20  # the reading whose hand-off is in progress when flow stops
LONG_END = COMMITTED + 150  # Faust's loop yields to the event loop every 100 records: a longer batch
YIELD_EVERY = 100


def _load_upstream() -> ModuleType:
    """``faust/transport/consumer.py`` as installed, executed again as a module of its own."""
    path = faust.transport.consumer.__file__
    spec = importlib.util.spec_from_file_location("_faust_consumer_as_shipped", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


UPSTREAM = _load_upstream()


class Partition:
    """One partition as the Kafka client would serve it: records from a fetch position on.

    Seeks are applied at once (no await), as the client applies a seek before it answers the next
    fetch. A fetch returns every record from the position (one batch) and moves the position past it.
    """

    def __init__(self, end: int) -> None:
        self.end = end
        self.position = COMMITTED
        self.fetches: list[list[int]] = []

    def install(self, consumer: Consumer) -> None:
        consumer._getmany = self._getmany  # type: ignore[method-assign]
        consumer.seek_to_committed = self._seek_to_committed  # type: ignore[method-assign]
        consumer._seek = self._seek  # type: ignore[method-assign]
        consumer.highwater = self._highwater  # type: ignore[method-assign]

    async def _getmany(self, active_partitions: set[TP] | None, timeout: float) -> Mapping[TP, list[Any]]:
        if self.position >= self.end or (active_partitions is not None and PARTITION not in active_partitions):
            await asyncio.sleep(0.005)  # a long poll that found nothing
            return {}
        batch = [_record(offset) for offset in range(self.position, self.end)]
        self.fetches.append([record.offset for record in batch])
        self.position = self.end
        return {PARTITION: batch}

    async def _seek_to_committed(self) -> Mapping[TP, int]:
        self.position = COMMITTED
        return {PARTITION: COMMITTED}

    async def _seek(self, partition: TP, offset: int) -> None:
        self.position = offset

    def _highwater(self, tp: TP) -> int:
        return self.end


def _record(offset: int) -> ConsumerRecord[bytes, bytes]:
    value = b'{"meter_id": "m1", "offset": %d}' % offset
    return ConsumerRecord(
        topic=TOPIC,
        partition=PARTITION.partition,
        offset=offset,
        timestamp=1_772_323_200_000 + offset,
        timestamp_type=0,
        key=b"m1",
        value=value,
        checksum=None,
        serialized_key_size=2,
        serialized_value_size=len(value),
        headers=[],
    )


@dataclass
class Streams:
    """The hand-off (``consumer.callback``): which offsets reached the streams, and when."""

    block_once: set[int]  # offsets whose first hand-off waits for good (the agent's buffer is full)
    handed_over: list[int] = field(default_factory=list)
    seek_done_at: int | None = None  # len(handed_over) when the rebalance's seek completed
    blocking: bool = False  # whether such a hand-off is waiting

    async def __call__(self, message: Message) -> None:
        if message.offset in self.block_once:
            self.block_once.discard(message.offset)
            self.blocking = True
            await asyncio.Event().wait()  # never freed: cancelled when the loop gives up waiting
        self.handed_over.append(message.offset)

    def mark_seek(self) -> None:
        self.seek_done_at = len(self.handed_over)

    @property
    def after_seek(self) -> list[int]:
        assert self.seek_done_at is not None
        return self.handed_over[self.seek_done_at :]


class _Fetcher(Service):
    """Stands for Faust's Fetcher service: ``_drain_messages`` only looks at whether it stopped."""


@dataclass
class Outcome:
    handed_over: list[int]
    after_seek: list[int]
    fetches: list[list[int]]


def _bind(consumer: Consumer, loop: Loop) -> Callable[[Service], Any]:
    """The fetch loop to run, with the ``perform_seek``/``seek`` that go with it."""
    if loop == "fixed":
        fetch_loop.apply()  # what the worker runs (through apply_fixes); checked by the test afterwards
        return consumer._drain_messages
    shipped = UPSTREAM.Consumer
    consumer.perform_seek = MethodType(shipped.perform_seek, consumer)  # type: ignore[method-assign]
    consumer.seek = MethodType(shipped.seek, consumer)  # type: ignore[method-assign]
    return MethodType(shipped._drain_messages, consumer)


async def _poll(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for ``condition``, checked at every turn of the event loop, in the caller's own task: the
    caller goes on in the very turn the condition became true, before any other task runs."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0)


async def _settle(turns: int = 20) -> None:
    """Let every other task run until each waits on something (no I/O here: deterministic)."""
    for _ in range(turns):
        await asyncio.sleep(0)


async def _scenario(loop: Loop, moment: Moment) -> Outcome:
    """One partition (offsets from 18), one batch handed over, a rebalance seeking back to 18 at
    ``moment``, then the loop refetches: what reached the streams, in order.

    - hand_off_cut_short_*: 18 and 19 are handed over, the hand-off of 20 waits (its agent's buffer
      is full) when flow stops; the loop notices only after flow resumed, or before.
    - between_records: 150 records; the rebalance runs while the loop yields to the event loop after
      100 hand-offs (Faust's loop does so every 100 records), the rest of the batch still to go.
    """
    app = faust.App(f"fetch-loop-{uuid.uuid4().hex[:8]}", broker="kafka://127.0.0.1:9", autodiscover=False)
    consumer = cast(Consumer, app.consumer)  # the aiokafka driver's, a faust.transport.consumer.Consumer
    between_records = moment == "between_records"
    partition = Partition(LONG_END if between_records else SHORT_END)
    streams = Streams(block_once=set() if between_records else {BLOCKED})
    partition.install(consumer)
    consumer.callback = streams
    consumer.resume_partitions({PARTITION})  # assigned and active, as after an earlier rebalance
    drain = _bind(consumer, loop)
    task = asyncio.ensure_future(drain(_Fetcher()))
    try:
        if between_records:
            last_before_yield = COMMITTED + YIELD_EVERY - 1
            await _poll(lambda: consumer._read_offset[PARTITION] == last_before_yield)
            assert streams.handed_over == list(range(COMMITTED, last_before_yield + 1))
        else:
            await _poll(lambda: streams.blocking)
            assert streams.handed_over == [COMMITTED, COMMITTED + 1]

        # The rebalance: App._on_partitions_revoked stops flow and clears the streams' buffers, the
        # recovery's _resume_streams seeks to the committed offsets and resumes flow.
        consumer.stop_flow()
        app.flow_control.suspend()
        app.flow_control.clear()
        await consumer.perform_seek()
        streams.mark_seek()
        if moment == "hand_off_cut_short_loop_wakes_before_resume":
            await _settle()  # the loop sees flow stopped and waits in getmany for it to resume
        app.flow_control.resume()
        consumer.resume_flow()

        # Every loop reads the partition to its end again: wait for that, then a little longer.
        await _poll(lambda: partition.end - 1 in streams.after_seek)
        await _settle()
        await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return Outcome(streams.handed_over, streams.after_seek, partition.fetches)


def run_scenario(loop: Loop, moment: Moment) -> Outcome:
    return asyncio.run(_scenario(loop, moment))


@pytest.mark.parametrize("moment", MOMENTS)
def test_fixed_loop_hands_every_reading_over_again_after_the_seek(moment: Moment) -> None:
    outcome = run_scenario("fixed", moment)
    every = list(range(COMMITTED, LONG_END if moment == "between_records" else SHORT_END))
    assert outcome.fetches == [every, every]  # the batch, then the refetch after the seek
    assert outcome.after_seek == every, f"handed over {outcome.handed_over}"
    assert Consumer._drain_messages is fetch_loop._drain_messages
    assert Consumer.perform_seek is fetch_loop._perform_seek and Consumer.seek is fetch_loop._seek


def test_upstream_loop_skips_the_reading_whose_hand_off_was_cut_short() -> None:
    """The loop notices only after flow resumed: it marks 20 read though it never reached the
    streams, goes on with the old batch (21-23, above the read offset the seek set) and then drops
    the refetched 18-22 as already seen. 20 is never handed over, 23 twice: the signature once seen
    in a worker's log."""
    outcome = run_scenario("upstream", "hand_off_cut_short_loop_wakes_after_resume")
    assert outcome.fetches == [list(range(18, 24))] * 2
    assert outcome.handed_over == [18, 19, 21, 22, 23, 23]


def test_upstream_loop_drops_readings_refetched_after_the_seek() -> None:
    """The loop notices between the seek and the resume: it marks 20 read above the read offset
    the seek set (18), so the refetched 18 and 19 are dropped as already seen; Faust cleared the
    buffers they were in when flow stopped, so nothing processes them."""
    outcome = run_scenario("upstream", "hand_off_cut_short_loop_wakes_before_resume")
    assert outcome.fetches == [list(range(18, 24))] * 2
    assert outcome.after_seek == [20, 21, 22, 23]


def test_upstream_loop_hands_the_old_batch_over_after_the_seek() -> None:
    """The rebalance runs while the loop yields between records: the loop goes on with the batch
    returned before the seek (118-167), marking them read, so the refetched 18-117 are all dropped
    and 167 comes twice. The fixed loop leaves the rest of that batch (the seek epoch changed)."""
    outcome = run_scenario("upstream", "between_records")
    assert outcome.fetches == [list(range(COMMITTED, LONG_END))] * 2
    assert outcome.after_seek == [*range(COMMITTED + YIELD_EVERY, LONG_END), LONG_END - 1]
