"""Faust's recovery seeks its standby changelog partitions to an offset ``None`` when a rebalance assigned
them while the recovery of the previous assignment was still running, and the worker crashes.

``Recovery.add_standby`` (called from the new assignment's ``on_partitions_assigned``) adds the partition to
the same set the running recovery iterates and gives it the offset ``None`` ("nothing persisted"), which only
the next recovery's ``_build_offsets`` turns into a number. The running one, once its active partitions are
read, reaches "Starting standby partitions" and hands that ``None`` to aiokafka's ``seek``: ``ValueError:
Offset must be a positive integer``, the recovery service crashes and takes the worker with it. Found by the
fault run (bench/chaos.py): a worker restarted after a kill exited with 1 when the group rebalanced again
during its recovery.

The fix seeks such a partition as Faust seeks one with nothing read (-1): to 0, the changelog's start (Kafka
moves a seek below a compacted log's start to its start). The next recovery, which the new assignment has
already signalled, seeks it again from its own offsets, so nothing is read from a wrong place for long, and a
standby copy read from its start is only read in full.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Set

from faust.tables.recovery import Recovery
from faust.types import TP, ConsumerT

_applied = False
UPSTREAM_SEEK_OFFSETS = Recovery._seek_offsets  # kept for the regression test: what crashed


async def _seek_offsets(self: Recovery, consumer: ConsumerT, tps: Set[TP], offsets: Counter[TP], title: str) -> None:
    # Upstream's body, with None (added by an assignment during this recovery) seeked like -1.
    new_offsets = {}
    for tp in tps:
        offset = offsets[tp]
        if offset is None or offset == -1:
            offset = 0
        new_offsets[tp] = offset
    await consumer.seek_wait(new_offsets)


def apply() -> None:
    """Install the fix (once). ``streams.faust_compat.apply_fixes`` checks Faust's version first."""
    global _applied
    if _applied:
        return
    Recovery._seek_offsets = _seek_offsets  # type: ignore[method-assign]
    _applied = True
