"""What ``streams.state_writes`` needs from Faust's table, store and producer internals.

``table[key] = value`` in Faust (mode's ``ManagedUserDict.__setitem__``, then ``Table.on_key_set``)
writes the local store, hands the changelog record to the producer's buffer in the partition of
the current event (``Collection.send_changelog``, ``partition_for_key``), and once the record is
delivered keeps its changelog offset in the store (``Collection._on_changelog_sent``).
``TableChangelog.write`` does the same for less: the store, then the changelog record straight to
aiokafka's accumulator (``Producer.send``), in the partition of the source record (the table is
co-partitioned with its topic). Faust's own path hands each record to a separate task with
sensors, a log call and a callback (docs/BENCHMARKS.md).

Faust's stores read the current event to write a key (RocksDB keeps a database per partition): a
state written later, from another task than its record's, is written ``in_partition`` of a
stand-in event. Faust flushes its producer before it commits offsets, hands over partitions or
stops: ``wrap_flush`` puts the writer's own wait around that flush.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from types import SimpleNamespace
from typing import Any, cast

from faust.streams import _current_event
from faust.types import TP, AppT, EventT, StoreT, TableT
from faust.types.tuples import RecordMetadata

Flush = Callable[[], Awaitable[None]]


class _PartitionEvent:
    """What a Faust store reads from the current event to write a key: its message's partition.
    Stands in for a held record's event, which the writer need not keep alive."""

    __slots__ = ("__weakref__", "message")

    def __init__(self, partition: int) -> None:
        self.message = SimpleNamespace(partition=partition)


@contextmanager
def in_partition(partition: int) -> Iterator[None]:
    """Within it, in the current task, Faust's stores write as if for a record of ``partition``.
    Faust's streams set the current event per record, as a weak reference: the stand-in lives
    as long as the block."""
    stand_in = _PartitionEvent(partition)
    # The stores read only ``event.message.partition``: the stand-in has that and no more.
    token = _current_event.set(weakref.ref(cast("EventT[Any]", stand_in)))
    try:
        yield
    finally:
        _current_event.reset(token)


def _none_stale(partition: int) -> list[tuple[bytes, bytes]]:
    return []


class TableChangelog:
    """One changelog-backed table of raw bytes, written as ``table[key] = value`` writes it."""

    get: Callable[[bytes], bytes | None]

    def __init__(self, app: AppT, table: TableT) -> None:
        self._app = app
        self._table = table
        self._topic: str | None = None
        self._store: StoreT | None = None
        self.get = table.get  # the table's own (the store's) read, with no call in between
        # A store that knows which of its states a changelog record older than them ended (the memory store:
        # streams/faust_compat/memory_store.py); others never have any.
        self.take_stale: Callable[[int], list[tuple[bytes, bytes]]] = getattr(table.data, "take_stale", _none_stale)

    def in_partition(self, partition: int) -> AbstractContextManager[None]:
        """See the module function ``in_partition``."""
        return in_partition(partition)

    async def write(self, key: bytes, value: bytes, partition: int) -> None:
        """The store, then the changelog record in ``partition``; its offset is kept in the store
        once delivered, as Faust does (a RocksDB store then replays only the changelog's tail)."""
        if self._topic is None or self._store is None:
            self._topic = self._table.changelog_topic.get_topic_name()
            # Faust's stub types a table's data as a mapping; it is the table's store, made once.
            self._store = cast(StoreT, self._table.data)
        self._store[key] = value  # the local store, as Table.__setitem__ does
        sent = await self._app.producer.send(self._topic, key, value, partition=partition, timestamp=None, headers=None)
        # Faust's stub says Awaitable; its aiokafka driver returns aiokafka's asyncio.Future.
        sent.add_done_callback(partial(self._written, TP(self._topic, partition)))  # type: ignore[attr-defined]

    def _written(self, tp: TP, sent: asyncio.Future[RecordMetadata]) -> None:
        if sent.cancelled() or sent.exception() is not None:
            return  # as on Faust's own path: the stored offset stays where it was
        if self._store is not None:
            self._store.set_persisted_offset(tp, sent.result().offset)

    def wrap_flush(self, around: Callable[[Flush], Flush]) -> None:
        """Faust's producer flush (before a commit, a hand-over, a stop) becomes ``around(flush)``:
        Faust looks the flush up on its producer at every call."""
        producer: Any = self._app.producer  # a method replaced on one instance: no type says that
        producer.flush = around(producer.flush)
