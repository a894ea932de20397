"""Which meters the worker's offline timer asks about the passing of time, and when.

Asking every meter every minute means loading every meter's state: at 100k meters that is seconds
of CPU a minute, during which no reading is processed. Instead the watch keeps, per meter of this
worker's partitions, the moment after which time alone could tell something (the bank's
``wake_at``: the last reading plus how overdue the meter may be), and the timer
(``streams.offline_sweep``) asks only the meters whose moment has passed.

The moments live in memory. A partition this process has not indexed yet (after a start or a
rebalance) is indexed once from the table, in slices, so readings keep flowing meanwhile.

A table cannot be written outside the processing of a record, so the timer cannot store "told"
in the meter's state: a told meter's moment becomes infinite here, until its next reading. After a
restart a meter may be told once more, with the same alert id (meter, kind, since), which the
router recognises as a duplicate.
"""

from __future__ import annotations

import asyncio
import math
import time

from kafka.partitioner import murmur2


def partition_of(meter_id: str, partitions: int) -> int:
    """The partition a record keyed by ``meter_id`` lands in (Kafka's default partitioner)."""
    return (murmur2(meter_id.encode()) & 0x7FFFFFFF) % partitions


class Pacer:
    """Keeps a long job on the event loop from starving the readings agent.

    ``await asyncio.sleep(0)`` between slices is not enough: it lets the loop run one round, while
    a record needs several (fetch, hand-off, agent, produce), so the agent barely moved while the
    timer told a whole fleet of overdue meters at once. After every ``slice_s`` of work the job sleeps as
    long, which leaves the loop to the readings about half of the time.
    """

    def __init__(self, slice_s: float = 0.02) -> None:
        self.slice_s = slice_s
        self._since = time.perf_counter()

    async def pace(self) -> None:
        """Call between steps of the job: returns at once unless its slice is used up."""
        if time.perf_counter() - self._since >= self.slice_s:
            await asyncio.sleep(self.slice_s)
            self._since = time.perf_counter()


class OfflineWatch:
    """Per meter of this worker's partitions, when time alone could next tell something about it."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self._wake_at: dict[str, float] = {}
        self._indexed: set[int] = set()

    def saw(self, meter_id: str, wake_at: float) -> None:
        """A reading was processed (or a state indexed): when time could next tell something."""
        if math.isfinite(wake_at):
            self._wake_at[meter_id] = wake_at
        else:
            self._wake_at.pop(meter_id, None)

    def to_index(self, active_partitions: set[int]) -> set[int]:
        """Owned partitions whose meters are not indexed yet. A partition that left this worker is
        forgotten, so it is indexed afresh if it comes back (its meters moved on meanwhile)."""
        gone = self._indexed - active_partitions
        if gone:
            self._indexed -= gone
            for meter_id in [m for m in self._wake_at if partition_of(m, self.partitions) in gone]:
                del self._wake_at[meter_id]
        return active_partitions - self._indexed

    def indexed(self, partitions: set[int]) -> None:
        self._indexed |= partitions

    def due(self, now: float, active_partitions: set[int]) -> list[str]:
        """Meters of owned partitions whose moment has passed, in the order they fell due."""
        found = [(t, m) for m, t in self._wake_at.items() if t < now]
        return [m for _, m in sorted(found) if partition_of(m, self.partitions) in active_partitions]
