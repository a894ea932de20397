"""Writing a meter's state to its Faust table: cheaply, and never ahead of the alerts it raised.

**Alerts first.** A record's alerts and its meter's new state are written to two topics, and
Kafka orders nothing across topics. A worker killed after the state landed but before the alert
did comes back with a state that has already seen the reading: it ignores the reading when it is
processed again (at least once), and the alert is lost for good
(``tests/integration/test_alert_before_state.py`` holds that window open). So a state whose record
raised alerts is *held* until those alerts are delivered, and every later state of the same meter
is held behind it (in one queue per partition), so each meter's states reach the changelog in
order. Other meters' states are written at once: the changelog is compacted by key, and only each
key's order matters; holding whole partitions instead cost throughput wherever alerts are common
(docs/BENCHMARKS.md). A held state is kept in memory only: the local store (which RocksDB keeps on
disk across a crash) gets it together with the changelog. The agent reads states through ``get``,
which sees held ones first.

**Commits wait for held states.** Faust flushes its producer before it commits offsets, hands over
partitions or stops. ``StateWriter`` wraps that flush so it also waits for the states held when it
began; an offset is therefore never committed ahead of its record's state (nor, through the hold,
ahead of its record's alerts).

**An alert the producer gave up on is sent again** (with a growing pause) while the error is one
that passing time can mend, such as a broker away for longer than the request timeout; the states
behind it wait. An error that cannot mend (the alert refused as too large, say) is logged with its
meter and the states move on: holding them for ever would stop the partition.

**Cheap.** Without alerts to wait for, ``set`` is ``table[key] = value`` without Faust's
per-record cost (``streams.faust_compat.table_writes``, which holds what this needs of Faust's
table, store and producer).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka.errors import KafkaError, KafkaTimeoutError
from faust.exceptions import ProducerSendError

log = logging.getLogger(__name__)
RESEND_FIRST_PAUSE_S = 0.5
RESEND_MAX_PAUSE_S = 30.0
# A flush (before a commit) waits this long at most for held states; then the commit fails, and
# the worker with it, well before the group would evict it (broker_max_poll_interval, 1,000 s).
HELD_WAIT_S = 300.0

Flush = Callable[[], Awaitable[None]]


class Send(Protocol):
    """A topic's send (Faust's ``Topic.send``): awaited, the record is queued, and the awaitable it
    returns is its delivery."""

    def __call__(
        self, *, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]] | None = None
    ) -> Awaitable[Awaitable[Any]]: ...


class Changelog(Protocol):
    """The meter-state table as the writer writes it (``streams.faust_compat.table_writes.TableChangelog``)."""

    get: Callable[[bytes], bytes | None]
    # The keys of a partition whose newest changelog record is older than the state held, with that state, once
    # (``streams.faust_compat.memory_store.ChangelogReadingStore.take_stale``).
    take_stale: Callable[[int], list[tuple[bytes, bytes]]]

    async def write(self, key: bytes, value: bytes, partition: int, /) -> None:
        """The local store, then the changelog record in ``partition``."""

    def in_partition(self, partition: int, /) -> AbstractContextManager[None]:
        """Within it, the current task's writes are stored as if for a record of ``partition``."""

    def wrap_flush(self, around: Callable[[Flush], Flush], /) -> None:
        """The producer's flush (before a commit, a hand-over, a stop) becomes ``around(flush)``."""


class Worker(Protocol):
    """The Faust app, as the writer sees it."""

    @property
    def should_stop(self) -> bool: ...

    async def crash(self, reason: BaseException, /) -> None: ...


@dataclass(slots=True)
class SentAlert:
    """An alert on its way to the alerts topic: its key and value, and the producer's future. ``resend``: the
    send of another topic the record goes to (a day summary's daily topic); None: the alerts topic."""

    key: bytes
    value: bytes
    delivery: Awaitable[Any]
    resend: Send | None = None


@dataclass(slots=True)
class _Held:
    key: bytes
    value: bytes
    alerts: Sequence[SentAlert]
    written: asyncio.Future[None] | None = field(default=None)  # made when a flush waits for it


class StateWritesFailed(RuntimeError):
    """Held states were given up: no offset may be committed past their records any more."""


def failed_delivery(exc: BaseException) -> asyncio.Future[Any]:
    """A delivery that failed at once (the producer refused the send): sent again like any other."""
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_exception(exc)
    return future


def can_mend(exc: BaseException) -> bool:
    """Whether sending again later may succeed (the broker away, a leader moving); Faust wraps
    the producer's error in its own."""
    causes = (exc, exc.__cause__)
    return any(bool(getattr(e, "retriable", False)) or isinstance(e, KafkaTimeoutError) for e in causes)


async def delivered(alert: SentAlert, resend: Send, stopping: Callable[[], bool]) -> None:
    """Until ``alert`` is on its topic, sent again while the error is one time can mend. Once the
    worker is ``stopping``, the error is raised instead: neither the alert nor the states behind it
    are written, no offset past them is committed, and the next worker processes them again."""
    pause = RESEND_FIRST_PAUSE_S
    delivery: Awaitable[Any] | None = alert.delivery
    while True:
        try:
            if delivery is None:
                delivery = await (alert.resend or resend)(key=alert.key, value=alert.value)
            await delivery
            return
        except (KafkaError, ProducerSendError) as exc:
            meter = alert.key.decode(errors="replace")
            if stopping():
                raise
            if not can_mend(exc):
                log.error(
                    "alert of meter %s not written, and sending it again cannot help (%r): "
                    "its state is written without it",
                    meter,
                    exc,
                )
                return
            log.warning("alert of meter %s not written yet (%r): sending it again in %.1f s", meter, exc, pause)
            await asyncio.sleep(pause)
            pause, delivery = min(pause * 2, RESEND_MAX_PAUSE_S), None


class StateWriter:
    """Writes values of one changelog-backed table; only from inside that table's agent. ``resend``
    sends an alert again (to the alerts topic); ``worker`` is the Faust app."""

    def __init__(self, changelog: Changelog, resend: Send, worker: Worker) -> None:
        self._changelog = changelog
        self._read = changelog.get
        self._take_stale = changelog.take_stale
        self._resend = resend
        self._worker = worker
        self._held_values: dict[bytes, bytes] = {}  # key → its newest held state
        self._queues: dict[int, deque[_Held]] = {}  # partition → its held states, in order
        self._releasing: dict[int, asyncio.Task[None]] = {}  # held here: asyncio keeps tasks weakly
        self._flush_wrapped = False
        self._failed: BaseException | None = None  # once set, every flush (so every commit) fails

    def get(self, key: bytes) -> bytes | None:
        """The key's newest state, held or written."""
        held = self._held_values.get(key)
        return held if held is not None else self._read(key)

    @property
    def held(self) -> int:
        """How many states wait for their alerts, or behind an earlier held state of their partition."""
        return sum(len(queue) for queue in self._queues.values())

    async def set(self, key: bytes, value: bytes, partition: int, after: Sequence[SentAlert] = ()) -> None:
        """``table[key] = value`` for a record read from ``partition`` of the co-partitioned
        topic, once the alerts ``after`` (that record's) are delivered."""
        if not self._flush_wrapped:
            self._wrap_flush()
        stale = self._take_stale(partition)
        if stale:
            await self._write_again(stale, partition, key)
        if not after and key not in self._held_values:  # nothing to wait for, nothing of its meter held
            await self._changelog.write(key, value, partition)
            return
        queue = self._queues.get(partition)
        if queue is None:
            queue = self._queues[partition] = deque()
            self._releasing[partition] = asyncio.ensure_future(self._release(partition, queue))
        queue.append(_Held(key, value, after))
        self._held_values[key] = value

    async def _write_again(self, stale: list[tuple[bytes, bytes]], partition: int, key: bytes) -> None:
        """States whose newest changelog record is an older one (a worker woken after the group had moved its
        partition on wrote it, after the newer state of the worker that held it): written again, so that a
        compacted changelog, which may keep only each key's last record, does not bring the stale one back. Not
        the meter being written now, nor one with a state held: a newer state of theirs is on its way."""
        again = [(k, v) for k, v in stale if k != key and k not in self._held_values]
        for stale_key, state in again:
            await self._changelog.write(stale_key, state, partition)
        if again:
            log.info("partition %d: %d meter states written again over a stale changelog record", partition, len(again))

    def give_up(self, exc: BaseException) -> None:
        """No offset may be committed any more: records whose alerts or states were not written
        must be processed again by the next worker. Every later flush raises."""
        if self._failed is None:
            log.error("state or alert writes given up (%r): no offset is committed from now on", exc)
            self._failed = exc

    def _stopping(self) -> bool:
        return bool(self._worker.should_stop)

    def _last_held(self) -> list[asyncio.Future[None]]:
        """Futures done once every state held now is written. Later ones are not waited for:
        under steady alerts a partition may never be empty, and a commit must not wait for ever."""
        waiting = []
        for queue in self._queues.values():
            if queue:
                last = queue[-1]
                if last.written is None:
                    last.written = asyncio.get_running_loop().create_future()
                waiting.append(last.written)
        return waiting

    async def _release(self, partition: int, queue: deque[_Held]) -> None:
        # Faust's stores read the current event (which its streams set per record, in the agent's
        # task); this task writes for held records of one partition.
        try:
            with self._changelog.in_partition(partition):
                while queue:
                    held = queue[0]
                    for alert in held.alerts:
                        await delivered(alert, self._resend, self._stopping)
                    await self._changelog.write(held.key, held.value, partition)
                    if self._held_values.get(held.key) is held.value:
                        del self._held_values[held.key]
                    queue.popleft()
                    if held.written is not None and not held.written.done():
                        held.written.set_result(None)
        except BaseException as exc:  # given up, or cancelled at a stop: no commit past them
            self.give_up(exc)
            log.error(
                "%d states of partition %d not written (%r): their records will be processed again",
                len(queue),
                partition,
                exc,
            )
            failure = StateWritesFailed(f"states of partition {partition} not written: {exc!r}")
            for held in queue:
                if held.written is not None and not held.written.done():
                    held.written.set_exception(failure)
            if isinstance(exc, asyncio.CancelledError):
                raise
            if not self._worker.should_stop:
                await self._worker.crash(exc)
        finally:  # the queue goes with its task (on success, it was seen empty with no await since)
            del self._queues[partition], self._releasing[partition]

    def _wrap_flush(self) -> None:
        """Faust's producer flush (before a commit, a hand-over, a stop) also waits for the states
        held when it began, and for their changelog records."""
        self._changelog.wrap_flush(self._with_held_states)
        self._flush_wrapped = True

    def _with_held_states(self, flush: Flush) -> Flush:
        async def flush_with_held_states() -> None:
            held = self._last_held()
            self._raise_if_failed()
            await flush()  # the alerts the held states wait for go out
            if held:
                # wait, not gather: a cancelled flush must not cancel futures other flushes share
                done, pending = await asyncio.wait(held, timeout=HELD_WAIT_S)
                if pending:
                    raise StateWritesFailed(
                        f"{len(pending)} partitions' states still wait for their alerts "
                        f"after {HELD_WAIT_S:.0f} s: no commit"
                    )
                for future in done:
                    future.result()  # a partition given up: no commit
                await flush()  # and then the states
            self._raise_if_failed()

        return flush_with_held_states

    def _raise_if_failed(self) -> None:
        if self._failed is not None:
            raise StateWritesFailed(f"writes were given up ({self._failed!r}): no offset is committed")
