"""A fix to Faust 0.15.3's consumer: readings fetched around a seek must not be skipped.

What goes wrong: the consumer's fetch loop hands each fetched record to the streams and then marks
its offset as read, even when the hand-off was cut short because flow was suspended (a rebalance or a
table recovery began) and the record never reached the agent. When recovery ends, Faust seeks back to
the committed offsets; records of the batch fetched before the seek can still be handed over after
it, and mark later offsets as read. The refetched records then sit below the read offset and are
dropped as already seen: a reading is lost, with no error.

The fix, in the fetch loop only:
  - a record whose hand-off did not complete is not marked read, and the rest of its batch is left
    (it is fetched again from the committed offset);
  - every seek starts a new epoch, and the records of a batch returned before it are left;
  - the epoch is checked again just before a record is handed over and just after: a seek while the
    loop waited (adding a gap, committing, handing over) leaves the record unmarked and the rest of
    its batch, even when its hand-off completed (it is handed over again after the seek);
  - what the loop left of a batch is fetched again: the client's fetch position has already moved past
    the batch, so each partition the batch left records of is sought back to the first of them, unless
    a seek moved that partition since (its position is no longer just past the batch: that seek says
    where it is read from). Without this, a seek of one partition (a changelog's, during a recovery)
    left the rest of every other partition's batch, the next fetch started after it, and the loop's gap
    logic counted the skipped offsets as acked: readings lost, found by the fault run (bench/chaos.py).
Not covered (docs/SCALING.md, "Readings around a seek"): a batch whose fetch was sent before a seek
and answered after it is taken as returned after the seek (the epoch is read at its first record).
Duplicates stay possible (at least once) and are harmless: the detectors ignore readings they have
already passed and alert ids are stable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from aiokafka.errors import IllegalStateError
from faust.transport.consumer import CONSUMER_FETCHING, Consumer
from faust.types import TP
from mode import Service, ServiceT

log = logging.getLogger(__name__)
_applied = False


def _seek_epoch(consumer: Any) -> int:
    return int(getattr(consumer, "_shouwang_seek_epoch", 0))


def _sought_since(consumer: Any, epoch: int | None) -> bool:
    """Whether a seek ran since ``epoch``: the checks around a record's hand-off (a function of their
    own, so that the tests can run the loop without them)."""
    return _seek_epoch(consumer) != epoch


def _bump(consumer: Any) -> None:
    consumer._shouwang_seek_epoch = _seek_epoch(consumer) + 1


_original_perform_seek = Consumer.perform_seek
_original_seek = Consumer.seek


async def _perform_seek(self: Consumer) -> None:
    _bump(self)
    await _original_perform_seek(self)


async def _seek(self: Consumer, partition: Any, offset: int) -> None:
    _bump(self)
    await _original_seek(self, partition, offset)


@dataclass
class _Batch:
    """What one fetch returned, and how far the loop got through it."""

    records: Mapping[TP, Sequence[Any]] = field(default_factory=dict)
    done_to: dict[TP, int] = field(default_factory=dict)  # per partition: the last offset read or passed

    def left(self) -> dict[TP, tuple[int, int]]:
        """Per partition with records the loop did not get to: (first of them, offset just past the batch)."""
        left = {}
        for tp, records in self.records.items():
            done = self.done_to.get(tp)
            if not records or (done is not None and records[-1].offset <= done):
                continue  # the common case, checked at the batch's last record only
            first_left = next(record.offset for record in records if done is None or record.offset > done)
            left[tp] = (first_left, records[-1].offset + 1)
        return left


def _fetch_position(self: Consumer, tp: TP) -> int | None:
    """The Kafka client's fetch position of ``tp`` (None: not assigned, or being reset), read without
    waiting: the loop checks it and seeks in one turn of the event loop, so no seek comes in between."""
    client = getattr(getattr(self, "_thread", None), "_consumer", None)
    if client is None:
        return None
    subscription = client._subscription.subscription  # aiokafka's: None before subscribing
    assignment = subscription.assignment if subscription is not None else None  # None before assignment
    state = assignment.state_value(tp) if assignment is not None else None  # None: not assigned
    return state.position if state is not None and state.has_valid_position else None


async def _fetch_left_again(self: Consumer, batch: _Batch) -> None:
    """Seek each partition whose records the loop left back to the first of them (module doc)."""
    for tp, (first_left, past_batch) in batch.left().items():
        try:
            if self._shouwang_fetch_position(tp) != past_batch:  # type: ignore[attr-defined]
                continue  # sought since the batch returned (or revoked): that seek governs
            await self.seek(tp, first_left)
            log.info("Fetching %s again from %d: the loop left the rest of a batch", tp, first_left)
        except IllegalStateError as exc:  # revoked meanwhile: its next owner reads from the committed offset
            log.info("Records of %s left from %d not fetched again here: %r", tp, first_left, exc)


async def _getmany(self: Consumer, timeout: float, batch: _Batch) -> AsyncIterator[tuple[TP, Any]]:  # pragma: no cover
    # Faust 0.15.3's Consumer.getmany (its comments on the round robin left out), noting the batch.
    records, active_partitions = await self._wait_next_records(timeout)
    generation_id = self.app.consumer_generation_id
    if records is None or self.should_stop:
        return
    batch.records = records  # FIX
    records_it = self.scheduler.iterate(records)
    to_message = self._to_message  # localize
    if self.flow_active:
        for tp, record in records_it:
            if not self.flow_active:
                break
            new_generation_id = self.app.consumer_generation_id
            if new_generation_id != generation_id:
                self.log.dev(
                    "Generation id changed from %r to %r. Cancelling getmany.",
                    generation_id,
                    new_generation_id,
                )
                break
            if active_partitions is None or tp in active_partitions or tp in self._buffered_partitions:
                highwater_mark = self.highwater(tp)
                self.app.monitor.track_tp_end_offset(tp, highwater_mark)
                # convert timestamp to seconds from int milliseconds.
                yield tp, to_message(tp, record)
    else:
        self.log.dev("getmany called while flow not active. Seek back to committed offsets.")
        try:
            await self.perform_seek()
        except Exception as ex:  # noqa: BLE001 (upstream's)
            self.log.warning(f"exception performing seek when flow not active {ex}")


async def _drain_messages(self: Consumer, fetcher: ServiceT) -> None:  # pragma: no cover (runs in the worker)
    # Faust 0.15.3's Consumer._drain_messages with the changes marked "FIX".
    callback = self.callback
    consumer_should_stop = cast(Service, self)._stopped.is_set
    fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
    get_read_offset = self._read_offset.__getitem__
    set_read_offset = self._read_offset.__setitem__
    set_flag = self.diag.set_flag
    unset_flag = self.diag.unset_flag
    commit_every = self._commit_every
    acks_enabled_for = self.app.topics.acks_enabled_for
    yield_every = 100
    num_since_yield = 0
    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(CONSUMER_FETCHING)
            epoch = None  # FIX: the epoch this batch was returned in (a seek while fetching is fine:
            # the broker's answer then starts at the new position)
            batch = _Batch()  # FIX: what the fetch returned, and how far the loop got
            ait = cast(AsyncIterator, _getmany(self, 1.0, batch))
            await self.sleep(0)
            if not self.should_stop:
                async for tp, message in ait:
                    num_since_yield += 1
                    if num_since_yield > yield_every:
                        await asyncio.sleep(0)
                        num_since_yield = 0
                    if epoch is None:
                        epoch = _seek_epoch(self)
                    elif _seek_epoch(self) != epoch:  # FIX: a seek since this batch was returned
                        break
                    offset = message.offset
                    r_offset = get_read_offset(tp)
                    if r_offset is not None and offset < r_offset:
                        batch.done_to[tp] = offset  # FIX: passed (already read)
                    else:
                        gap = offset - (r_offset or 0)
                        if gap > 1 and r_offset and acks_enabled_for(message.topic):
                            await self._add_gap(tp, r_offset + 1, offset)
                        if commit_every is not None and self._n_acked >= commit_every:
                            self._n_acked = 0
                            await self.commit()
                        if _sought_since(self, epoch):  # FIX: a seek while adding a gap or committing
                            break
                        delivery = callback(message)
                        waited = await self.wait_first(delivery, self.suspend_flow.wait())
                        if delivery not in waited.done:  # FIX: not handed over, so not read
                            break
                        if _sought_since(self, epoch):  # FIX: handed over, but a seek ran meanwhile:
                            break  # it is handed over again after the seek, so not read
                        set_read_offset(tp, offset)
                        batch.done_to[tp] = offset
                await _fetch_left_again(self, batch)  # FIX
                unset_flag(CONSUMER_FETCHING)
    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            self.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            self.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        self.log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        unset_flag(CONSUMER_FETCHING)


def apply() -> None:
    """Install the fix (once). ``streams.faust_compat.apply_fixes`` checks Faust's version first."""
    global _applied
    if _applied:
        return
    Consumer.perform_seek = _perform_seek  # type: ignore[method-assign]
    Consumer.seek = _seek  # type: ignore[method-assign]
    Consumer._drain_messages = _drain_messages  # type: ignore[method-assign]
    Consumer._shouwang_fetch_position = _fetch_position  # type: ignore[attr-defined]
    _applied = True
