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
    the fix's seek epoch, which leaves the rest of a batch returned before a seek;
  - as the hand-off of 19 completes, the rebalance running before the loop's next turn; or while the
    loop's own commit (``commit_every``) waits: these need the fix's epoch checks just before and
    just after a hand-off;
  - while the loop's fetch waits for new records, answered from the position the seek set (no loop
    tested here loses a reading there; it is here because reading the epoch before the fetch is sent,
    to close the hole below, loses every reading in it);
  - while the loop's fetch, sent before the seek, is answered with records of the old position: a hole
    the fixed loop still has (``test_remaining_hole_...``).
Two more scenarios seek without moving the partition while the loop is between records (``Unmoved``): a
seek of another partition (a changelog's), and a rebalance when the group has committed nothing for the
partition; the fixed loop seeks the partition back to what it left of the batch (the fault run's loss).
The seek here completes without yielding (no broker, no consumer thread), which is what lets the
rebalance finish before the loop gets its next turn.

The upstream loop is loaded afresh from the installed Faust's source, so it is the loop as shipped
even when ``fetch_loop.apply()`` has already patched ``Consumer`` in this process. Each upstream
case asserts the loss it suffers in the same scenario: proof that the scenario reproduces the bug,
so that the fixed loop passing it means something. The fix as it was before its epoch checks around
the hand-off is run too (``_sought_since`` made to answer no): it loses readings in the two scenarios
those checks were added for.
"""

from __future__ import annotations

import asyncio
import importlib.util
import uuid
from collections.abc import Awaitable, Callable, Mapping
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
    "hand_off_cut_short_loop_wakes_after_resume",
    "hand_off_cut_short_loop_wakes_before_resume",
    "between_records",
    "as_hand_off_completes",
    "while_loop_commits",
    "while_fetch_waits",
]
MOMENTS: list[Moment] = list(get_args(Moment))
# The remaining hole: the loop's fetch, sent before the seek, answered with the old position's records.
Hole = Literal["fetch_answered_after_seek"]
# A seek that leaves the partition where it is, while the loop is between records: another partition's (a
# changelog's, as a recovery seeks them), or the rebalance's when the group has committed nothing for it.
Unmoved = Literal["between_records_other_partition_sought", "between_records_nothing_committed"]
CHANGELOG = TP("meter-state-changelog", 0)

TOPIC = "readings"
PARTITION = TP(TOPIC, 0)
COMMITTED = 18  # the group's committed offset: where the rebalance seeks back to
SHORT_END = 24  # offsets 18..23: the offsets of the skip once seen in a worker's log
BLOCKED = 20  # the reading whose hand-off is in progress when flow stops
COMMIT_EVERY = 2  # the loop commits once the streams acked 18 and 19, before handing 20 over
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
    With ``long_poll``, a fetch that finds nothing waits until records arrive or a seek moves the
    position (as the client wakes a waiting fetch), and ``hold`` delays the answer of the next fetch
    that finds records until it is set. Seeking to the committed offset moves nothing when none is
    committed (aiokafka's ``seek_to_committed`` seeks only to an offset above 0).
    """

    def __init__(self, end: int, *, long_poll: bool = False, committed: int | None = COMMITTED) -> None:
        self.end = end
        self.position = COMMITTED
        self.committed = committed
        self.fetches: list[list[int]] = []
        self.calls = 0  # fetches made, found something or not
        self.long_poll = long_poll
        self.waiting = False  # a fetch waits for records
        self.hold: asyncio.Event | None = None
        self.held = False  # a fetch's answer is held
        self.idle = False  # the last fetch found nothing
        self.sought_at: int | None = None  # calls at the last seek
        self._moved = asyncio.Event()

    def install(self, consumer: Consumer) -> None:
        consumer._getmany = self._getmany  # type: ignore[method-assign]
        # Faust types the answer Mapping[TP, int]; aiokafka's holds None for a partition with nothing committed.
        consumer.seek_to_committed = self._seek_to_committed  # type: ignore[method-assign, assignment]
        consumer._seek = self._seek  # type: ignore[method-assign]
        consumer.highwater = self._highwater  # type: ignore[method-assign]
        consumer._shouwang_fetch_position = self._fetch_position  # type: ignore[attr-defined]

    async def _getmany(self, active_partitions: set[TP] | None, timeout: float) -> Mapping[TP, list[Any]]:
        self.calls += 1
        if active_partitions is not None and PARTITION not in active_partitions:
            await asyncio.sleep(0.005)
            return {}
        while self.position >= self.end:
            self.idle = True
            if not self.long_poll:
                await asyncio.sleep(0.005)  # a long poll that found nothing
                return {}
            self._moved.clear()
            self.waiting = True
            await self._moved.wait()
            self.waiting = False
        self.idle = False
        batch = [_record(offset) for offset in range(self.position, self.end)]
        self.fetches.append([record.offset for record in batch])
        self.position = self.end
        if self.hold is not None:
            hold, self.hold = self.hold, None
            self.held = True
            await hold.wait()
        return {PARTITION: batch}

    def arrive(self, end: int) -> None:
        """Records up to ``end`` (excluded) were produced."""
        self.end = end
        self._moved.set()

    async def _seek_to_committed(self) -> Mapping[TP, int | None]:
        self.sought_at = self.calls
        if self.committed:
            await self._seek(PARTITION, self.committed)
        return {PARTITION: self.committed}

    async def _seek(self, partition: TP, offset: int) -> None:
        self.sought_at = self.calls
        if partition == PARTITION:  # another partition's seek (a changelog's) moves nothing here
            self.position = offset
            self._moved.set()

    def _fetch_position(self, tp: TP) -> int | None:
        return self.position if tp == PARTITION else None

    @property
    def idle_after_seek(self) -> bool:
        """A fetch made after the seek found nothing: the loop has read all it was given."""
        return self.sought_at is not None and self.calls > self.sought_at and self.idle

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
    after_hand_off: Callable[[int], Awaitable[None]] | None = None  # run as a hand-off completes
    handed_over: list[int] = field(default_factory=list)
    seek_done_at: int | None = None  # len(handed_over) when the rebalance's seek completed
    blocking: bool = False  # whether such a hand-off is waiting

    async def __call__(self, message: Message) -> None:
        if message.offset in self.block_once:
            self.block_once.discard(message.offset)
            self.blocking = True
            await asyncio.Event().wait()  # never freed: cancelled when the loop gives up waiting
        self.handed_over.append(message.offset)
        if self.after_hand_off is not None:
            await self.after_hand_off(message.offset)

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


async def _rebalance(app: faust.App, consumer: Consumer, streams: Streams, *, loop_waits: bool = False) -> None:
    """The rebalance: App._on_partitions_revoked stops flow and clears the streams' buffers, the
    recovery's _resume_streams seeks to the committed offsets and resumes flow. With ``loop_waits``,
    the loop gets its turns between the seek and the resume."""
    consumer.stop_flow()
    app.flow_control.suspend()
    app.flow_control.clear()
    await consumer.perform_seek()
    streams.mark_seek()
    if loop_waits:
        await _settle()  # the loop sees flow stopped and waits in getmany for it to resume
    app.flow_control.resume()
    consumer.resume_flow()


async def _scenario(loop: Loop, moment: Moment | Hole | Unmoved) -> Outcome:
    """One partition (offsets from 18), records handed over, a rebalance seeking back to 18 at
    ``moment``, then the loop refetches: what reached the streams, in order.

    - hand_off_cut_short_*: 18 and 19 are handed over, the hand-off of 20 waits (its agent's buffer
      is full) when flow stops; the loop notices only after flow resumed, or before.
    - between_records: 150 records; the rebalance runs while the loop yields to the event loop after
      100 hand-offs (Faust's loop does so every 100 records), the rest of the batch still to go.
    - as_hand_off_completes: the rebalance runs as the hand-off of 19 completes, in the same turn of
      the event loop (as when the rebalance's task comes before the fetch loop's in the event loop's
      queue): the loop resumes after the seek.
    - while_loop_commits: the streams ack each reading handed over and the loop commits every 2; the
      commit before the hand-off of 20 waits (for the broker) while the rebalance runs.
    - while_fetch_waits: 18-23 handed over, the loop's next fetch waits for new records; the seek
      wakes it and it is answered from the new position (as the Kafka client does).
    - fetch_answered_after_seek: 18 and 19 handed over; 20-23 arrive and the loop's waiting fetch
      takes them from the old position, but its answer comes after the rebalance's seek.
    - between_records_nothing_committed: as between_records, but the group has committed nothing
      for the partition, so the seek leaves its position where it is.
    - between_records_other_partition_sought: as between_records, but instead of a rebalance, a seek
      of another partition (a changelog's); flow never stops.
    """
    app = faust.App(f"fetch-loop-{uuid.uuid4().hex[:8]}", broker="kafka://127.0.0.1:9", autodiscover=False)
    consumer = cast(Consumer, app.consumer)  # the aiokafka driver's, a faust.transport.consumer.Consumer
    cut_short = moment.startswith("hand_off_cut_short")
    between_records = moment.startswith("between_records")
    end = LONG_END if between_records else BLOCKED if moment == "fetch_answered_after_seek" else SHORT_END
    partition = Partition(
        end,
        long_poll=moment in ("while_fetch_waits", "fetch_answered_after_seek"),
        committed=None if moment == "between_records_nothing_committed" else COMMITTED,
    )
    streams = Streams(block_once={BLOCKED} if cut_short else set())
    commit_gate = asyncio.Event()
    committing: list[int] = []  # at each commit of the loop: how many readings were handed over

    async def rebalance_after_19(offset: int) -> None:
        if offset == COMMITTED + 1 and streams.seek_done_at is None:
            await _rebalance(app, consumer, streams)

    async def ack(offset: int) -> None:
        consumer._n_acked += 1

    async def commit(*args: Any, **kwargs: Any) -> bool:
        committing.append(len(streams.handed_over))
        await commit_gate.wait()
        return True

    if moment == "as_hand_off_completes":
        streams.after_hand_off = rebalance_after_19
    elif moment == "while_loop_commits":
        consumer._commit_every = COMMIT_EVERY
        consumer.commit = commit  # type: ignore[method-assign]
        streams.after_hand_off = ack
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
            if moment == "between_records_other_partition_sought":
                await consumer.seek(CHANGELOG, 5)
                streams.mark_seek()
            else:
                await _rebalance(app, consumer, streams)
        elif cut_short:
            await _poll(lambda: streams.blocking)
            assert streams.handed_over == [COMMITTED, COMMITTED + 1]
            await _rebalance(app, consumer, streams, loop_waits=moment.endswith("before_resume"))
        elif moment == "as_hand_off_completes":
            await _poll(lambda: streams.seek_done_at is not None)
            assert streams.handed_over == [COMMITTED, COMMITTED + 1]
        elif moment == "while_loop_commits":
            await _poll(lambda: bool(committing))
            assert committing == [COMMIT_EVERY] and streams.handed_over == [COMMITTED, COMMITTED + 1]
            await _rebalance(app, consumer, streams)
            commit_gate.set()
        elif moment == "while_fetch_waits":
            await _poll(lambda: partition.waiting)
            assert streams.handed_over == list(range(COMMITTED, SHORT_END))
            await _rebalance(app, consumer, streams)
        else:  # fetch_answered_after_seek
            await _poll(lambda: partition.waiting)
            assert streams.handed_over == [COMMITTED, COMMITTED + 1]
            answer = partition.hold = asyncio.Event()
            partition.arrive(SHORT_END)
            await _poll(lambda: partition.held)
            await _rebalance(app, consumer, streams)
            answer.set()

        # The loop reads on until a fetch made after the seek finds nothing more: then a little longer.
        await _poll(lambda: partition.idle_after_seek)
        await _settle()
        await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return Outcome(streams.handed_over, streams.after_seek, partition.fetches)


def run_scenario(loop: Loop, moment: Moment | Hole | Unmoved) -> Outcome:
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


@pytest.mark.parametrize("moment", ["as_hand_off_completes", "while_loop_commits"])
def test_upstream_loop_marks_a_reading_handed_over_before_the_seek_read_after_it(moment: Moment) -> None:
    """The seek runs as the hand-off of 19 completes, or while the loop's commit before handing 20
    over waits: the loop marks 19 (or hands 20 over and marks it) after the seek, goes on with the
    old batch to 23, and then drops the refetched 18-22 as already seen. 18 and 19 are lost."""
    outcome = run_scenario("upstream", moment)
    assert outcome.fetches == [list(range(COMMITTED, SHORT_END))] * 2
    assert outcome.after_seek == [20, 21, 22, 23, 23]


def _never_sought(consumer: object, epoch: int | None) -> bool:
    return False


@pytest.mark.parametrize(
    ("moment", "after_seek"),
    [
        ("as_hand_off_completes", [19, 20, 21, 22, 23]),  # 19 marked read after the seek: 18 dropped
        ("while_loop_commits", [20, 20, 21, 22, 23]),  # 20 handed over and marked after it: 18, 19 dropped
    ],
)
def test_fix_without_its_checks_around_the_hand_off_loses_readings(
    moment: Moment, after_seek: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fix as it was before the seek epoch was checked just before and just after a hand-off
    (``_sought_since`` answering no, as if those checks were not there): its check between records
    leaves the rest of the old batch, but only from the next record on, so the reading in hand when
    the seek ran is still marked read above the offset the seek set, and the refetch drops what lies
    below it."""
    monkeypatch.setattr(fetch_loop, "_sought_since", _never_sought)
    outcome = run_scenario("fixed", moment)
    assert Consumer._drain_messages is fetch_loop._drain_messages
    assert outcome.fetches == [list(range(COMMITTED, SHORT_END))] * 2
    assert outcome.after_seek == after_seek


@pytest.mark.parametrize("loop", get_args(Loop))
def test_remaining_hole_a_fetch_sent_before_the_seek_and_answered_after_it(loop: Loop) -> None:
    """NOT FIXED, pinned so that it stays known (docs/SCALING.md, "Readings around a seek"): the
    loop's fetch takes 20-23 from the old position and is answered after the seek; the fixed loop reads
    the seek epoch at the batch's first record, after the seek, so it hands the old batch over and
    marks 23 read, and the refetched 18-22 are dropped. Reading the epoch before the fetch is sent
    closes this but loses every reading of ``while_fetch_waits``: a fetch waiting at the seek is
    answered from the new position, which the loop cannot tell from this. When a fix closes this
    hole, this test fails: change it, and the docs, with it."""
    outcome = run_scenario(loop, "fetch_answered_after_seek")
    assert outcome.fetches == [[18, 19], [20, 21, 22, 23], list(range(COMMITTED, SHORT_END))]
    assert outcome.after_seek == [20, 21, 22, 23, 23]  # 18 and 19 never handed over again
