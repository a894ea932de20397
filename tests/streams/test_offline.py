"""The offline timer's watch: who is due, owned partitions only, told once, re-indexed after a move."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

from streams.offline import OfflineWatch, Pacer, partition_of

PARTITIONS = 4


def meters_in(partition: int, count: int) -> list[str]:
    found = (f"m-{i}" for i in range(10_000))
    return [m for m in found if partition_of(m, PARTITIONS) == partition][:count]


def test_partition_of_is_the_producers_default_partitioner() -> None:
    # aiokafka's DefaultPartitioner (murmur2, as Kafka's Java client) places the worker's records.
    from aiokafka.partitioner import DefaultPartitioner

    for partitions in (1, 4, 8, 12):
        every = list(range(partitions))
        for key in ["SZ-FT-0001", "k-0", "电表-7", *(f"m-{i}" for i in range(300))]:
            assert partition_of(key, partitions) == DefaultPartitioner()(key.encode(), every, every)
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
    assert watch.due(10_000.0, {2}) == []
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


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def _rounds_beside(job: Callable[[], Awaitable[None]]) -> int:
    """Loop rounds another task got while ``job`` ran (each round, one step of that task)."""
    rounds = 0
    done = False

    async def other() -> None:
        nonlocal rounds
        while not done:
            rounds += 1
            await asyncio.sleep(0)

    beside = asyncio.create_task(other())
    await asyncio.sleep(0)
    await job()
    done = True
    await beside
    return rounds


def test_a_paced_job_leaves_the_loop_to_others_about_half_the_time() -> None:
    async def paced() -> None:
        pacer = Pacer(slice_s=0.01)
        for _ in range(300):  # 0.3 s of work in 1 ms steps
            _busy(0.001)
            await pacer.pace()

    async def yielding() -> None:  # what the timer did before: one loop round every 200 steps
        for step in range(300):
            _busy(0.001)
            if step % 200 == 199:
                await asyncio.sleep(0)

    started = time.perf_counter()
    paced_rounds = asyncio.run(_rounds_beside(paced))
    paced_seconds = time.perf_counter() - started
    yielding_rounds = asyncio.run(_rounds_beside(yielding))
    assert yielding_rounds <= 5
    assert paced_rounds >= 20 * yielding_rounds  # each sleep gives the other task many rounds
    assert paced_seconds >= 0.5  # the job slept about as long as it worked


def test_a_pacer_returns_at_once_within_its_slice() -> None:
    async def quick() -> float:
        pacer = Pacer(slice_s=10.0)
        started = time.perf_counter()
        for _ in range(1000):
            await pacer.pace()
        return time.perf_counter() - started

    assert asyncio.run(quick()) < 1.0
