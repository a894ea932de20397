"""The fault run's report (bench/chaos.py): what is read back from Kafka at the end, each burst's times, the
latency over the run, and whether every invariant held."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from bench.chaos_check import Key, ProbeTimes, probe_delivered
from bench.chaos_load import HOUR, T0, Probe, Replay, left_out
from shouwang.settings import Settings
from shouwang.topics import Topics
from tests.kafka_helpers import read_all


def collect(bootstrap: str, topics: Topics, worker_id: str) -> tuple[list[Any], dict[str, bytes], int]:
    """The alerts topic, the meters' state changelog (newest value per meter) and the readings' dead letters."""
    seen_alerts = read_all(bootstrap, topics.alerts, timeout=120)
    changelog: dict[str, bytes] = {}
    for record in read_all(bootstrap, f"{worker_id}-meter-state-changelog", timeout=300):
        if record.key is not None and record.value is not None:
            changelog[record.key.decode()] = record.value
    letters = read_all(bootstrap, topics.deadletter, timeout=60)
    from_readings = sum(dict(r.headers).get("shouwang.source.topic") == topics.readings.encode() for r in letters)
    return seen_alerts, changelog, from_readings


def probe_times(
    expected: Replay,
    probes: Sequence[tuple[Probe, float]],
    subscribers: Mapping[str, Sequence[str]],
    first_accepted: Mapping[Key, float],
    seen_alerts: Sequence[Any],
) -> tuple[list[ProbeTimes], int]:
    """Each burst's times (sent; its raise on the alerts topic; its last notification accepted), and how many
    bursts the fault-free replay gives no alert for (0: every burst is an alert known in advance)."""
    # Each burst's alert id: the raise the replay gives at the burst's hour.
    raised_at = {
        (a.meter_id, a.at.timestamp()): a.alert_id
        for a in expected.alerts.values()
        if a.event == "raised" and a.kind.value == "spike"
    }
    # The alerts topic's record timestamps (the worker's clock, this machine's) as the run's monotonic time.
    wall_to_monotonic = time.monotonic() - time.time()
    alerted: dict[str, float] = {}
    for record in seen_alerts:
        alert_id, at = json.loads(record.value)["alert_id"], record.timestamp / 1000 + wall_to_monotonic
        alerted[alert_id] = min(at, alerted.get(alert_id, at))
    times: list[ProbeTimes] = []
    unknown = 0
    for probe, sent in probes:
        alert_id = raised_at.get((probe.meter, float(T0 + HOUR * probe.hour)))
        if alert_id is None:
            unknown += 1
            continue
        keys = [(alert_id, t, r) for t in ("alert.raised", "alert.resolved") for r in subscribers[probe.meter]]
        times.append(ProbeTimes(probe.partition, sent, probe_delivered(keys, first_accepted), alerted.get(alert_id)))
    return times, unknown


def timeline(probes: list[ProbeTimes], origin: float, bucket_s: float = 10.0) -> list[list[float | int | None]]:
    """Per ``bucket_s`` of the load (by when the bursts were sent): [start s, bursts, median and max latency s to
    the last notification, median s to the alert on its topic (the workers' part)]."""
    buckets: dict[int, list[ProbeTimes]] = {}
    for probe in probes:
        buckets.setdefault(int((probe.sent - origin) // bucket_s), []).append(probe)
    rows: list[list[float | int | None]] = []
    for bucket, members in sorted(buckets.items()):
        known = sorted(p.latency for p in members if p.latency is not None)
        worker = sorted(p.alerted - p.sent for p in members if p.alerted is not None)
        rows.append(
            [
                bucket * bucket_s,
                len(members),
                round(known[len(known) // 2], 1) if known else None,
                round(known[-1], 1) if known else None,
                round(worker[len(worker) // 2], 1) if worker else None,
            ]
        )
    return rows


def find_left_out(
    settings: Settings,
    records: Sequence[tuple[bytes, bytes]],
    states: Mapping[str, bytes],
    last: Mapping[str, float],
    final_last: Mapping[str, float],
    comparable: Mapping[str, bytes],
    limit: int = 200,
) -> dict[str, int | None]:
    """For meters whose final state went on to the last reading but differs: which record's readings are
    missing from it (bench/chaos_load.py, ``left_out``); at most ``limit`` meters are searched."""
    differing = [m for m in states if m in comparable and comparable[m] != states[m] and final_last[m] >= last[m]]
    by_meter: dict[str, list[tuple[bytes, bytes]]] = {m: [] for m in differing[:limit]}
    for key, value in records:
        if (meter := key.decode()) in by_meter:
            by_meter[meter].append((key, value))
    return {m: left_out(settings, meter_records, comparable[m]) for m, meter_records in by_meter.items()}


def invariants_hold(result: Mapping[str, Any]) -> bool:
    """Nothing lost (alerts, notifications, readings, invalid records' dead letters), nothing under two ids,
    every signature good, the pipeline caught up after every fault, and no process crashed or hung on its own:
    a worker the run had to restart because it processed nothing for a minute would leave its meters unwatched
    in production, whatever the counts say afterwards."""
    return bool(
        result["alerts_missing"] == 0
        and result["notifications_lost"] == 0
        and result["notifications_under_two_ids"] == 0
        and result["meters_state_missing"] == 0
        and result["meters_state_differs"] == 0
        and result["meters_state_unexplained"] == 0
        and result["readings_not_reflected"] == 0
        and result["posts_badly_signed"] == 0
        and result["never_caught_up"] == 0
        and result["dead_letters_from_readings"] >= result["invalid_records_sent"]
        and not result["unexpected_exits"]
        and not result["stuck_workers"]
    )
