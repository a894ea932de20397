"""The meter-state table's memory store, which reads its own changelog back when partitions arrive.

**Why.** Faust's memory store recovers through Faust's recovery loop: every changelog record is
fetched, handed over and applied one by one, about 3,600 records/s on a slow machine, where a bare
consumer reads 25,000 (docs/BENCHMARKS.md). A worker restarted on 101,000 meters then needed 46 s,
against a 30 s target. This store reads the changelog partitions of its newly assigned meters
with a plain aiokafka consumer, in large fetches, before Faust's recovery starts, and reports how
far it read as its persisted offset: Faust's recovery then reads only what came after (nothing,
normally), exactly as it does for a RocksDB store that kept its files.

**Safe when it stops short.** The persisted offset is always the offset of the last record
applied, so a read cut short (broker away, time out, a new rebalance) leaves the rest to Faust's
own recovery, which goes on from there. Standby partitions are left to Faust, and a revoked
partition's states are dropped with its offset, so one assigned again is read again in full.

Only for tables whose keys and values are raw bytes (the meter-state table): they are stored as
the changelog holds them, as ``StateWriter`` writes them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka import TopicPartition as KafkaTP
from aiokafka.errors import KafkaError
from faust.stores import STORES, memory
from faust.types import TP
from yarl import URL

log = logging.getLogger(__name__)

SCHEME = "shouwang-memory"
STORES.aliases[SCHEME] = f"{__name__}:ChangelogReadingStore"
STORE_URL = f"{SCHEME}://changelog"  # with a host: a bare scheme is a false URL, and Faust ignores it

# A read that takes longer than this is left to Faust's recovery (which then goes on from where it
# stopped): a rebalance must not wait for ever on a broker that went away.
READ_TIMEOUT_S = 300.0
FETCH_BYTES = 4 * 1024 * 1024  # per partition (4× the default): large fetches, with a bound on what is in flight

Apply = Callable[[KafkaTP, list[ConsumerRecord]], None]


async def read_partitions(bootstrap: str, starts: Mapping[KafkaTP, int | None], apply: Apply, *,
                          timeout: float = READ_TIMEOUT_S, go_on: Callable[[], bool] = lambda: True) -> int:
    """Read each partition from its start offset (``None``: from its beginning) to the end offset it
    had when the read began, handing every fetched batch to ``apply`` in offset order. Returns the
    number of records read; stops early (without error) when ``go_on()`` turns false or time runs out."""
    if not starts:
        return 0
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                auto_offset_reset="earliest",
                                max_partition_fetch_bytes=FETCH_BYTES, fetch_max_bytes=4 * FETCH_BYTES,
                                request_timeout_ms=60_000)
    await consumer.start()
    try:
        consumer.assign(list(starts))
        ends = await consumer.end_offsets(list(starts))
        # Explicit offsets: assign() starts a reset to the default strategy, and aiokafka applies the answer
        # of a reset in flight to a later seek_to_beginning too (found by test_memory_store: a partition
        # was left at its end, unread).
        beginnings = await consumer.beginning_offsets(list(starts))
        for tp, start in starts.items():
            consumer.seek(tp, max(beginnings[tp], start or 0))
        pending = {tp for tp in starts if await consumer.position(tp) < ends[tp]}
        deadline, read = time.monotonic() + timeout, 0
        while pending and go_on():
            if time.monotonic() > deadline:
                log.warning("reading %d changelog partitions back took over %.0f s: Faust's recovery "
                            "reads the rest", len(pending), timeout)
                break
            fetched = await consumer.getmany(*pending, timeout_ms=1000)
            for tp, records in fetched.items():
                if records:
                    apply(tp, records)
                    read += len(records)
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
        return read
    finally:
        await consumer.stop()


class ChangelogReadingStore(memory.Store):
    """Faust's memory store that reads its newly assigned changelog partitions itself (module doc)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._read_to: dict[TP, int] = {}  # the offset of the last changelog record applied

    def persisted_offset(self, tp: TP) -> int | None:
        return self._read_to.get(tp)

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        # A state written to the changelog was in this store first, so a partition read back stays
        # complete up to its latest write: a later rebalance that keeps it reads nothing again.
        if tp in self._read_to:
            self._read_to[tp] = max(self._read_to[tp], offset)

    async def on_rebalance(self, assigned: set[TP], revoked: set[TP], newly_assigned: set[TP],
                           generation_id: int = 0) -> None:
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)
        mine = set(self.table.changelog_topic.topics)
        for tp in revoked:
            if tp.topic in mine:
                self._forget(tp)
        standbys = self.app.assignor.assigned_standbys()
        to_read = {tp for tp in assigned if tp.topic in mine and tp not in standbys and tp not in self._read_to}
        if to_read:
            await self._read(to_read, generation_id)

    def _forget(self, tp: TP) -> None:
        self._read_to.pop(tp, None)
        gone = [key for key, partition in self._key_partition.items() if partition == tp.partition]
        for key in gone:
            self.data.pop(key, None)
            del self._key_partition[key]

    async def _read(self, tps: Iterable[TP], generation_id: int) -> None:
        started = time.monotonic()
        starts: dict[KafkaTP, int | None] = {KafkaTP(tp.topic, tp.partition): None for tp in tps}

        def still_this_generation() -> bool:
            return not self.app.should_stop and generation_id == self.app.consumer_generation_id

        try:
            read = await read_partitions(_bootstrap(self.app.conf.broker), starts, self._apply,
                                         go_on=still_this_generation)
        except (KafkaError, OSError, TimeoutError) as exc:  # Faust's recovery reads whatever this did not
            log.warning("reading the %s changelog back failed (%r): Faust's recovery reads the rest",
                        self.table.name, exc)
            return
        log.info("%s: %d changelog records of %d partitions read back in %.1f s; %d keys",
                 self.table.name, read, len(starts), time.monotonic() - started, len(self.data))

    def _apply(self, tp: KafkaTP, records: list[ConsumerRecord]) -> None:
        data, partitions = self.data, self._key_partition
        for record in records:
            if record.value is None:  # a tombstone deletes the key, as in Faust's own recovery
                data.pop(record.key, None)
                partitions.pop(record.key, None)
            else:
                data[record.key] = record.value
                partitions[record.key] = tp.partition
        self._read_to[TP(tp.topic, tp.partition)] = records[-1].offset


def _bootstrap(brokers: Iterable[URL | str] | Any) -> str:
    """``host:port,…`` from Faust's broker URLs (``kafka://host:port``)."""
    return ",".join(f"{url.host}:{url.port}" for url in map(URL, brokers))
