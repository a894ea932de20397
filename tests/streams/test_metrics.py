"""The worker's consumer-lag gauge, against a stand-in for the Faust consumer."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

import pytest
from faust.types import TP
from prometheus_client import REGISTRY

from streams import metrics


class FakeConsumer:
    """The part of Faust's consumer the lag reporter reads."""

    def __init__(self, ends: dict[TP, int], committed: dict[TP, int], positions: dict[TP, int]) -> None:
        self.ends, self.positions = ends, positions
        self._committed_offset: defaultdict[TP, int | None] = defaultdict(lambda: None, committed)
        self.broken = False

    def assignment(self) -> set[TP]:
        if self.broken:
            raise RuntimeError("consumer not started")
        return set(self.ends)

    async def highwaters(self, *partitions: TP) -> dict[TP, int]:
        return {tp: self.ends[tp] for tp in partitions}

    async def position(self, tp: TP) -> int | None:
        return self.positions.get(tp)


def lag(topic: str, partition: int) -> float | None:
    return REGISTRY.get_sample_value(
        "shouwang_worker_consumer_lag_records", {"topic": topic, "partition": str(partition)}
    )


def test_lag_is_log_end_minus_committed_or_position_and_follows_the_assignment() -> None:
    p0, p1, p2 = TP("lag.a", 0), TP("lag.a", 1), TP("lag.a", 2)
    consumer = FakeConsumer(ends={p0: 120, p1: 40, p2: 7}, committed={p0: 100}, positions={p1: 40})
    reporter = metrics.LagReporter()
    asyncio.run(reporter.update(consumer))
    assert (lag("lag.a", 0), lag("lag.a", 1)) == (20.0, 0.0)  # p1: nothing committed yet, from its position
    assert lag("lag.a", 2) is None  # no position known yet: not reported rather than guessed

    consumer.ends = {p1: 50}  # a rebalance took p0 and p2 away
    asyncio.run(reporter.update(consumer))
    assert (lag("lag.a", 0), lag("lag.a", 1)) == (None, 10.0)


def test_a_failing_consumer_never_raises_and_warns_when_it_persists(caplog: pytest.LogCaptureFixture) -> None:
    p0 = TP("lag.b", 0)
    consumer = FakeConsumer(ends={p0: 9}, committed={p0: 4}, positions={})
    reporter = metrics.LagReporter()
    asyncio.run(reporter.update(consumer))
    consumer.broken = True
    with caplog.at_level(logging.WARNING, logger="streams.metrics"):
        for _ in range(reporter.warn_after):
            asyncio.run(reporter.update(consumer))
    assert lag("lag.b", 0) == 5.0  # left as it was
    assert [r.getMessage() for r in caplog.records] == [
        f"consumer lag not updated ({reporter.warn_after} failures in a row)"
    ]


def test_a_hanging_broker_times_out() -> None:
    class Hanging(FakeConsumer):
        async def highwaters(self, *partitions: TP) -> dict[TP, int]:
            await asyncio.sleep(60)
            return {}

    reporter = metrics.LagReporter()
    reporter.timeout_s = 0.05
    asyncio.run(reporter.update(Hanging(ends={TP("lag.c", 0): 1}, committed={}, positions={})))
    assert reporter.failures == 1 and lag("lag.c", 0) is None


def test_reporting_meters_counts_distinct_recent_meters_and_forgets_the_silent() -> None:
    from streams.metrics import METERS_REPORTING, ReportingMeters

    meters = ReportingMeters(window_s=100)
    for meter, at in (("a", 0.0), ("b", 50.0), ("a", 90.0), ("c", 10.0)):
        meters.saw(meter, at)
    assert meters.refresh(now=120.0) == 2  # a (90) and b (50); c (10) fell out of the window
    assert METERS_REPORTING._value.get() == 2
    assert set(meters.last_seen) == {"a", "b"}
