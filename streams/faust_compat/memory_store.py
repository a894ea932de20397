"""The meter-state table's memory store, which reads its own changelog back when partitions arrive.

**Why.** Faust's memory store recovers through Faust's recovery loop: every changelog record is
fetched, handed over and applied one by one, several times slower than a bare consumer reads them
(docs/BENCHMARKS.md), too slow for a restarted worker to resume its meters within the recovery
target. This store reads the changelog partitions of its newly assigned meters with a plain
aiokafka consumer, in large fetches, before Faust's recovery starts, and reports how far it read
as its persisted offset: Faust's recovery then reads only what came after (nothing, normally),
exactly as it does for a RocksDB store that kept its files.

**Safe when it stops short.** The persisted offset is always the offset of the last record
applied, so a read cut short leaves the rest to Faust's own recovery, which goes on from there; the
worker's own writes move it on only while no other worker writes to the partition. The
read runs inside the rebalance callback, where the Kafka client sends no heartbeats, so it stops
after half the session timeout rather than be evicted from the group. Standby partitions are left
to Faust. A partition no longer active here (revoked, or kept as a standby only) loses its states
and offset, so one active again is read again in full.

Only for tables whose keys and values are raw bytes (the meter-state table): they are stored as
the changelog holds them, as ``StateWriter`` writes them. Faust finds the store by its URL's
scheme (``STORE_URL``), once ``register`` (called by ``apply_fixes``) has named it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka import TopicPartition as KafkaTP
from aiokafka.errors import KafkaError
from faust.stores import STORES, memory
from faust.streams import current_event
from faust.types import TP, EventT
from yarl import URL

log = logging.getLogger(__name__)

SCHEME = "shouwang-memory"
STORE_URL = f"{SCHEME}://changelog"  # with a host: a bare scheme is a false URL, and Faust ignores it

# The read runs inside the rebalance callback (no heartbeats meanwhile): it stops after half the
# session timeout, and Faust's recovery goes on from the last record applied.
READ_SHARE_OF_SESSION = 0.5
FETCH_BYTES = 4 * 1024 * 1024  # per partition (4× the default): large fetches, with a bound on what is in flight

Apply = Callable[[KafkaTP, list[ConsumerRecord]], None]


def register() -> None:
    """Name the store for Faust: a table with ``store=STORE_URL`` is kept in a ``ChangelogReadingStore``."""
    STORES.aliases[SCHEME] = f"{__name__}:ChangelogReadingStore"


async def read_partitions(
    bootstrap: str,
    starts: Mapping[KafkaTP, int | None],
    apply: Apply,
    *,
    timeout: float,
    go_on: Callable[[], bool] = lambda: True,
) -> dict[KafkaTP, int]:
    """Read each partition from its start offset (``None``: from its beginning) to the end offset it
    had when the read began, handing every fetched batch to ``apply`` in offset order. Returns the
    end offsets of the partitions read to the end; stops early when ``go_on()`` turns false or after
    ``timeout`` seconds (``TimeoutError`` if the broker has not even answered by then)."""
    deadline = time.monotonic() + timeout

    def left() -> float:
        return max(0.0, deadline - time.monotonic())

    if not starts:
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=FETCH_BYTES,
        fetch_max_bytes=4 * FETCH_BYTES,
        request_timeout_ms=60_000,
    )
    try:
        await asyncio.wait_for(consumer.start(), left())
        consumer.assign(list(starts))
        ends = await asyncio.wait_for(consumer.end_offsets(list(starts)), left())
        # Explicit offsets: assign() starts a reset to the default strategy, and aiokafka applies the answer
        # of a reset in flight to a later seek_to_beginning too (a partition was then left at its end, unread).
        beginnings = await asyncio.wait_for(consumer.beginning_offsets(list(starts)), left())
        for tp, start in starts.items():
            consumer.seek(tp, max(beginnings[tp], start or 0))
        pending = {tp for tp in starts if await consumer.position(tp) < ends[tp]}
        while pending and go_on() and left() > 0:
            fetched = await consumer.getmany(*pending, timeout_ms=int(min(1.0, left()) * 1000))
            for tp, records in fetched.items():
                if records:
                    apply(tp, records)
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
        return {tp: ends[tp] for tp in starts if tp not in pending}
    finally:
        await consumer.stop()


class ChangelogReadingStore(memory.Store):
    """Faust's memory store that reads its newly assigned changelog partitions itself (module doc)."""

    # The time a state is as of (streams/app.py gives the meter-state table the detector bank's
    # ``state_reading_time``); None: the last record of a key wins, as in Faust's own stores.
    version_of: Callable[[bytes], float | None] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        # Per active changelog partition read back here: the offset up to which the store is complete.
        self._read_to: dict[TP, int] = {}
        self.stale_skipped = 0  # changelog records older than the state held for their key, not applied
        # Per partition, the keys whose newest changelog record is such a stale one: compaction may keep only
        # that record, so their state held here is written again (``take_stale``) by the partition's next write.
        self._stale_last: dict[int, set[Any]] = {}

    def take_stale(self, partition: int) -> list[tuple[Any, Any]]:
        """The keys of ``partition`` whose newest changelog record is older than the state held here, with that
        state, once: the caller writes them again, so that the changelog ends with each key's newest state."""
        if not self._stale_last:  # the common case: one lookup per write
            return []
        keys = self._stale_last.pop(partition, ())
        return [(key, self.data[key]) for key in keys if key in self.data]

    def _stale(self, key: Any, partition: int, stale: bool) -> None:
        """Notes whether ``key``'s newest changelog record (in ``partition``) is a stale one."""
        if stale:
            self._stale_last.setdefault(partition, set()).add(key)
            return
        keys = self._stale_last.get(partition)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._stale_last[partition]

    def _older(self, value: Any, held: Any) -> bool:
        """Whether the changelog record ``value`` is a state older than the one held: written by a worker woken
        after the group had moved its partition on, after the newer state of the worker that held it (found by
        the fault run: the last record of the key was stale, and the upload in between was lost). A value
        without a time (a marker, a tombstone) is never older."""
        version_of = self.version_of
        if version_of is None or held is None or not isinstance(value, bytes) or not isinstance(held, bytes):
            return False
        new, old = version_of(value), version_of(held)
        return new is not None and old is not None and new < old

    def persisted_offset(self, tp: TP) -> int | None:
        return self._read_to.get(tp)

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        # A state written to the changelog was in this store first, so a partition read back stays
        # complete up to its latest write (a later rebalance that keeps it reads nothing again), as long
        # as this worker is the partition's only writer: its writes then follow one another. A gap means
        # another worker wrote there meanwhile: this one was paused past its session (a long stop, a
        # frozen VM), the group gave its partitions to another, which moved their meters on, and it
        # writes again when it wakes. The store stays complete only up to the gap, so that Faust's
        # recovery at the rejoin reads the rest, the other worker's states with it.
        last = self._read_to.get(tp)
        if last is not None and offset == last + 1:
            self._read_to[tp] = offset

    def apply_changelog_batch(
        self, batch: Iterable[EventT], to_key: Callable[[Any], Any], to_value: Callable[[Any], Any]
    ) -> None:
        # Faust's recovery applies what it fetched of a partition only after what this store read back of it
        # itself. A recovery cut short by a new rebalance can still apply a batch it fetched before, of a
        # partition that was a standby here and is now active and read back: its older states would replace the
        # newer ones read (found by the fault run: the meters' readings written in between were lost).
        # And of each key, a state older than the one held (or one applied earlier in the batch) is skipped.
        read_to = self._read_to
        newer: list[EventT] = []
        held: dict[Any, Any] = {}
        for event in batch:
            if event.message.offset <= read_to.get(event.message.tp, -1):
                continue
            if self.version_of is not None:
                key = to_key(event.key)
                value = None if event.message.value is None else to_value(event.value)
                stale = value is not None and self._older(value, held.get(key, self.data.get(key)))
                if stale or self._stale_last:
                    self._stale(key, event.message.partition, stale)
                if stale:
                    self.stale_skipped += 1
                    continue
                held[key] = value
            newer.append(event)
        super().apply_changelog_batch(newer, to_key, to_value)

    def __setitem__(self, key: Any, value: Any) -> None:
        # The worker's own writes (``StateWriter``, under the record's event or a stand-in for its
        # partition) are noted with their partition, so they leave with it like the states read back.
        event = current_event()
        if event is not None:
            self._key_partition[key] = event.message.partition
            if self._stale_last:  # the worker's own write is the key's newest record now
                self._stale(key, event.message.partition, False)
        super().__setitem__(key, value)

    async def on_rebalance(
        self, assigned: set[TP], revoked: set[TP], newly_assigned: set[TP], generation_id: int = 0
    ) -> None:
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)
        mine = set(self.table.changelog_topic.topics)
        standbys = self.app.assignor.assigned_standbys()
        actives = {tp for tp in assigned if tp.topic in mine and tp not in standbys}
        # A partition no longer active here, revoked or kept as a standby only, loses its states and
        # offset (Faust's memory store drops a standby's states once recovery ends): one that is
        # active again is read again in full.
        for tp in {*revoked, *self._read_to}:
            if tp.topic in mine and tp not in actives:
                self._forget(tp)
        to_read = actives - self._read_to.keys()
        if to_read:
            await self._read(to_read)

    async def on_recovery_completed(self, active_tps: set[TP], standby_tps: set[TP]) -> None:
        # Faust's version drops every key of a partition not active in the recovery that ended; that
        # can be an earlier generation's, after this one read its partitions back. Keep those.
        await super().on_recovery_completed({*active_tps, *self._read_to}, standby_tps)

    def _forget(self, tp: TP) -> None:
        self._read_to.pop(tp, None)
        self._stale_last.pop(tp.partition, None)
        gone = [key for key, partition in self._key_partition.items() if partition == tp.partition]
        for key in gone:
            self.data.pop(key, None)
            del self._key_partition[key]

    async def _read(self, tps: Iterable[TP]) -> None:
        """Read inside the rebalance callback, where the Kafka client sends no heartbeats: at most
        half the session timeout, or the group would evict this worker. Faust's recovery reads
        whatever is left, from the last record applied."""
        started = time.monotonic()
        starts: dict[KafkaTP, int | None] = {KafkaTP(tp.topic, tp.partition): None for tp in tps}
        budget = READ_SHARE_OF_SESSION * float(self.app.conf.broker_session_timeout)
        applied = 0

        def apply(tp: KafkaTP, records: list[ConsumerRecord]) -> None:
            nonlocal applied
            self._apply(tp, records)
            applied += len(records)

        try:
            ends = await read_partitions(
                _bootstrap(self.app.conf.broker), starts, apply, timeout=budget, go_on=lambda: not self.app.should_stop
            )
        except (KafkaError, OSError, TimeoutError) as exc:  # Faust's recovery reads whatever this did not
            log.warning(
                "reading the %s changelog back stopped (%r) after %d records: Faust's recovery reads the rest",
                self.table.name,
                exc,
                applied,
            )
            return
        for ktp, end in ends.items():  # complete up to the end, even where the last offsets held no record
            tp = TP(ktp.topic, ktp.partition)
            self._read_to[tp] = max(self._read_to.get(tp, -1), end - 1)
        log.info(
            "%s: %d changelog records read back in %.1f s, %d of %d partitions to their end%s",
            self.table.name,
            applied,
            time.monotonic() - started,
            len(ends),
            len(starts),
            "" if len(ends) == len(starts) else f" (the {budget:.0f} s budget ran out: Faust reads the rest)",
        )

    def _apply(self, tp: KafkaTP, records: list[ConsumerRecord]) -> None:
        data, partitions = self.data, self._key_partition
        for record in records:
            if record.value is None:  # a tombstone deletes the key, as in Faust's own recovery
                data.pop(record.key, None)
                partitions.pop(record.key, None)
                if self._stale_last:
                    self._stale(record.key, tp.partition, False)
            elif self._older(record.value, data.get(record.key)):
                self.stale_skipped += 1
                self._stale(record.key, tp.partition, True)
            else:
                data[record.key] = record.value
                partitions[record.key] = tp.partition
                if self._stale_last:
                    self._stale(record.key, tp.partition, False)
        self._read_to[TP(tp.topic, tp.partition)] = records[-1].offset


def _bootstrap(brokers: Iterable[URL | str] | Any) -> str:
    """``host:port,…`` from Faust's broker URLs (``kafka://host:port``)."""
    return ",".join(f"{url.host}:{url.port}" for url in map(URL, brokers))
