"""The worker's readiness logic (streams/health.py) on an injected clock: when a partition counts as stuck,
and the checks a Faust app not yet started, or rebalancing, answers. The worker's /readyz as a real process:
tests/ops/test_health_endpoints.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

import faust
import pytest
from faust.types import TP

from streams.health import STUCK_AFTER_S, ProgressWatch, RebalanceMonitor, worker_checks
from tests.streams.test_metrics import FakeConsumer

P0, P1 = TP("t.readings", 0), TP("t.readings", 1)  # two partitions of a watched topic


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def watch_of(clock: Clock) -> ProgressWatch:
    return ProgressWatch(frozenset({"t.readings"}), clock=clock)


def test_a_partition_with_records_waiting_that_does_not_move_for_the_bound_is_stuck(clock: Clock) -> None:
    watch = watch_of(clock)
    watch.observe({P0: 100, P1: 50}, {P0: 40, P1: 50})
    assert watch.problem() is None
    clock.now += STUCK_AFTER_S  # at the bound: not yet
    watch.observe({P0: 130, P1: 60}, {P0: 40, P1: 60})
    assert watch.problem() is None
    clock.now += 1
    watch.observe({P0: 130, P1: 60}, {P0: 40, P1: 60})
    assert watch.problem() == "no progress for 61 s on t.readings[0], 90 records waiting"
    # It moves on by one record: no longer stuck, and its clock starts again.
    watch.observe({P0: 130}, {P0: 41})
    assert watch.problem() is None
    clock.now += STUCK_AFTER_S + 5
    watch.observe({P0: 130}, {P0: 41})
    assert watch.problem() == "no progress for 65 s on t.readings[0], 89 records waiting"


def test_nothing_waiting_is_no_sign_of_a_stuck_worker(clock: Clock) -> None:
    watch = watch_of(clock)
    for _ in range(5):  # idle for five minutes: caught up the whole time
        watch.observe({P0: 100}, {P0: 100})
        clock.now += 60
    watch.observe({P0: 100}, {P0: 100})
    assert watch.problem() is None
    # Input arrives and is not taken: stuck a bound later, counted from when it was last caught up.
    watch.observe({P0: 104}, {P0: 100})
    clock.now += STUCK_AFTER_S + 1
    watch.observe({P0: 104}, {P0: 100})
    assert watch.problem() == "no progress for 61 s on t.readings[0], 4 records waiting"


def test_a_rebalance_pauses_the_count_and_a_partition_assigned_anew_starts_afresh(clock: Clock) -> None:
    watch = watch_of(clock)
    watch.observe({P0: 100}, {P0: 10})
    clock.now += 50
    rebalance_ended = clock.now  # nothing moves during a rebalance (the rebalance check names it)
    clock.now += 30
    watch.observe({P0: 100}, {P0: 10})
    assert watch.problem(rebalance_ended) is None  # 30 s since the rebalance ended
    assert watch.problem() == "no progress for 80 s on t.readings[0], 90 records waiting"
    watch.observe({P1: 100}, {P1: 10})  # P0 went to another worker, P1 came to this one
    assert watch.problem() is None
    clock.now += STUCK_AFTER_S + 1
    watch.observe({P0: 100, P1: 100}, {P0: 10, P1: 10})
    assert watch.problem() == "no progress for 61 s on t.readings[1], 90 records waiting"


def test_a_worker_that_measures_nothing_for_the_bound_is_not_ready_and_says_why(clock: Clock) -> None:
    consumer = FakeConsumer(ends={P0: 9}, committed={P0: 9}, positions={})
    watch = watch_of(clock)
    asyncio.run(watch.measure(consumer))
    assert watch.problem() is None and watch.partitions[P0].waiting == 0
    consumer.broken = True  # e.g. the broker away: the measurement fails, the worker keeps running
    clock.now += STUCK_AFTER_S + 2
    asyncio.run(watch.measure(consumer))
    assert watch.problem() == "progress not measured for 62 s; last attempt: RuntimeError: consumer not started"
    consumer.broken = False
    asyncio.run(watch.measure(consumer))
    assert watch.problem() is None


def test_measure_takes_the_committed_offset_or_else_the_position_on_the_watched_topics(clock: Clock) -> None:
    other = TP("t.changelog", 0)  # a table's changelog: read for recovery, never committed
    consumer = FakeConsumer(ends={P0: 50, P1: 20, other: 900}, committed={P0: 45}, positions={P1: 20})
    watch = watch_of(clock)
    asyncio.run(watch.measure(consumer))
    assert {tp: (p.done, p.waiting) for tp, p in watch.partitions.items()} == {P0: (45, 5), P1: (20, 0)}


def test_the_checks_of_an_app_not_started_then_rebalancing(clock: Clock, tmp_path: Path) -> None:
    app = faust.App("health-test", broker="kafka://127.0.0.1:1", datadir=str(tmp_path), Monitor=RebalanceMonitor)
    monitor = app.monitor
    assert isinstance(monitor, RebalanceMonitor)
    monitor.time = clock
    watch = watch_of(clock)
    checks = worker_checks(app, watch, monitor)
    assert checks == {
        "worker": "ok",
        "consumer": "Kafka consumer not running",
        "recovery": "tables' recovery not complete",
        "rebalance": "ok",
        "progress": "ok",
    }
    # Faust calls the monitor as a rebalance starts, then sets its flag (it counts the rebalances first).
    app.rebalancing_count += 1
    monitor.on_rebalance_start(app)
    app.rebalancing = True
    clock.now += 75
    checks = worker_checks(app, watch, monitor)
    assert checks["rebalance"] == "consumer group rebalancing for 75 s (rebalance #1)"
    # The progress bound ran out during the rebalance: named too, as nothing moved.
    assert checks["progress"] == "progress not measured for 75 s"
    monitor.on_rebalance_end(app, {"time_start": clock.now - 75})
    app.rebalancing = False
    checks = worker_checks(app, watch, monitor)
    assert (checks["rebalance"], checks["progress"]) == ("ok", "ok")  # the bound counts from the end
