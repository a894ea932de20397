"""Which meters the worker's offline timer looks at, and which it has already announced.

A table cannot be written outside the processing of a record, so the timer cannot store "told"
in the meter's state: it remembers here instead, until the meter's next reading. After a restart
a meter may be announced once more — with the same alert id (meter, kind, since), which the
router recognises as a duplicate.
"""

from __future__ import annotations

from kafka.partitioner import murmur2


def partition_of(meter_id: str, partitions: int) -> int:
    """The partition a record keyed by ``meter_id`` lands in (Kafka's default partitioner)."""
    return (murmur2(meter_id.encode()) & 0x7FFFFFFF) % partitions


class OfflineWatch:
    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self._announced: set[str] = set()

    def saw(self, meter_id: str) -> None:
        """A reading arrived: the meter is heard again (its detector resolves the episode)."""
        self._announced.discard(meter_id)

    def announced(self, meter_id: str) -> None:
        self._announced.add(meter_id)

    def due(self, meter_id: str, active_partitions: set[int]) -> bool:
        """Whether the timer should ask this meter's detectors about the passing of time."""
        return meter_id not in self._announced and partition_of(meter_id, self.partitions) in active_partitions
