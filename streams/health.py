"""Whether the worker does its work, for its ``/readyz`` (streams/app.py serves it, with ``/healthz``).

Ready means, each a named check of the answer:

- ``worker``: the app is not stopping;
- ``consumer``: Faust's Kafka consumer has started and is not stopping;
- ``recovery``: the tables' first recovery is complete (before it, no agent runs: Faust starts them,
  and the timers, only then);
- ``rebalance``: the group is not rebalancing. While it does, this worker processes nothing (its
  partitions are paused until their tables are recovered), so it is not ready, however short the
  rebalance: the answer says since when, which tells a hung rebalance from a passing one;
- ``progress``: every source partition assigned here moved on within ``STUCK_AFTER_S``, or had nothing
  waiting. A worker alive but hung (in a rebalance that never ends, or with a partition left paused
  after one) answers 503 here, where ``/metrics`` keeps answering 200.

Progress is judged from what Kafka says, not from the agents' own activity: a partition's committed
offset (Faust commits what its agents finished, every second) against its end offset, both measured by
``ProgressWatch.measure`` on a Faust timer. Staleness counts from the last progress or the end of the
last rebalance, whichever is later: no partition can move during a rebalance, and the ``rebalance``
check already names that. What reads Faust's own state (``app.rebalancing``, the recovery's
``completed`` event) reads attributes its types declare; the committed offsets come through
streams/faust_compat/offsets.py, which fences that private one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import faust
from faust.sensors import Monitor
from faust.tables import TableManager
from faust.types import TP

from shouwang.health import OK
from streams.faust_compat.offsets import committed_offsets
from streams.metrics import LagSource

# A worker that processes nothing this long while records wait is stuck (bench/chaos.py uses the same
# bound for the fault run's "stuck worker" finding). A healthy worker commits every second.
STUCK_AFTER_S = 60.0
PROGRESS_INTERVAL_S = 5.0  # how often progress is measured (one ListOffsets request)
MEASURE_TIMEOUT_S = 5.0


class RebalanceMonitor(Monitor):
    """Faust's monitor (the app's ``Monitor`` setting), which also keeps when the last rebalance started
    and ended. Faust calls the start from its consumer's thread; a float written there is read whole
    here. In the monitor rather than a sensor of its own: every sensor is called for every message."""

    started_at: float | None = None
    ended_at: float | None = None

    def on_rebalance_start(self, app: faust.types.AppT) -> dict[str, Any]:
        self.started_at = self.time()  # the monitor's clock: monotonic unless given
        state: dict[str, Any] = super().on_rebalance_start(app)
        return state

    def on_rebalance_end(self, app: faust.types.AppT, state: dict[str, Any]) -> None:
        super().on_rebalance_end(app, state)
        self.ended_at = self.time()


@dataclass
class _Partition:
    done: int | None  # committed offset (Kafka's "next to read"), or the position before any commit
    waiting: int  # records between it and the end offset
    since: float  # when it last moved on, or had nothing waiting


class ProgressWatch:
    """Per assigned source partition, when it last made progress; ``problem`` names the stalest one
    beyond ``stuck_after_s``. Measured on a timer; read by ``/readyz`` (both on the worker's loop)."""

    def __init__(
        self,
        topics: frozenset[str],
        *,
        stuck_after_s: float = STUCK_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.topics = topics
        self.stuck_after_s = stuck_after_s
        self.clock = clock
        self.partitions: dict[TP, _Partition] = {}
        self.measured_at: float | None = None
        self.created_at = clock()
        self.error: str | None = None  # why the last measurement failed, if it did

    async def measure(self, consumer: LagSource) -> None:
        """One measurement from the Faust app's consumer; a failure (a rebalance, the broker away) is
        kept as the reason and changes nothing else: no measurement is no sign of progress."""
        try:
            assigned = sorted(tp for tp in consumer.assignment() if tp.topic in self.topics)
            ends = await asyncio.wait_for(consumer.highwaters(*assigned), MEASURE_TIMEOUT_S) if assigned else {}
            committed = committed_offsets(consumer)
            done: dict[TP, int | None] = {}
            for tp in assigned:
                done[tp] = committed.get(tp)
                if done[tp] is None:  # nothing committed by this process yet: where the consumer stands
                    done[tp] = await asyncio.wait_for(consumer.position(tp), MEASURE_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - reported by /readyz, never fatal to the worker
            self.error = f"{type(exc).__name__}: {exc}"[:200]
            return
        self.observe(ends, done)

    def observe(self, ends: Mapping[TP, int | None], done: Mapping[TP, int | None]) -> None:
        """Record one measurement: per partition its end offset and how far it is done."""
        now = self.clock()
        partitions: dict[TP, _Partition] = {}
        for tp, offset in done.items():
            end = ends.get(tp)
            waiting = max(0, end - offset) if end is not None and offset is not None else 0
            before = self.partitions.get(tp)
            if before is None or waiting == 0 or (offset is not None and (before.done is None or offset > before.done)):
                since = now  # newly assigned, nothing waiting, or moved on
            else:
                since = before.since
            partitions[tp] = _Partition(offset, waiting, since)
        # Partitions no longer assigned are dropped; one assigned again starts afresh.
        self.partitions = partitions
        self.measured_at = now
        self.error = None

    def problem(self, rebalance_ended_at: float | None = None) -> str | None:
        """Why the worker counts as stuck, or None. Stale means: no progress, while records waited, for
        longer than the bound since the later of that progress and the end of the last rebalance."""
        now = self.clock()
        floor = max(self.created_at, rebalance_ended_at or self.created_at)
        measured = max(self.measured_at or floor, floor)
        if now - measured > self.stuck_after_s:
            reason = f"; last attempt: {self.error}" if self.error else ""
            return f"progress not measured for {now - measured:.0f} s{reason}"
        stuck = [
            (now - max(p.since, floor), tp, p)
            for tp, p in self.partitions.items()
            if p.waiting and now - max(p.since, floor) > self.stuck_after_s
        ]
        if not stuck:
            return None
        age, tp, partition = max(stuck, key=lambda item: item[0])
        more = f" (and {len(stuck) - 1} more partitions)" if len(stuck) > 1 else ""
        return f"no progress for {age:.0f} s on {tp.topic}[{tp.partition}], {partition.waiting} records waiting{more}"


def worker_checks(app: faust.App, watch: ProgressWatch, rebalances: RebalanceMonitor) -> dict[str, str]:
    """The worker's readiness checks, each ``"ok"`` or why not (module docstring)."""
    now = watch.clock()
    consumer = app.consumer
    tables = cast(TableManager, app.tables)  # the manager's type (TableManagerT) omits its recovery
    checks = {
        "worker": "stopping" if app.should_stop else OK,
        "consumer": OK if consumer.started and not consumer.should_stop else "Kafka consumer not running",
        # Set once the first recovery is done, never cleared: later rebalances are the next check's.
        "recovery": OK if tables.recovery.completed.is_set() else "tables' recovery not complete",
        "rebalance": OK,
        "progress": watch.problem(rebalances.ended_at) or OK,
    }
    if app.rebalancing:
        since = f" for {now - rebalances.started_at:.0f} s" if rebalances.started_at is not None else ""
        checks["rebalance"] = f"consumer group rebalancing{since} (rebalance #{app.rebalancing_count})"
    return checks
