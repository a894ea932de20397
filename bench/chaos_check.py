"""The fault run's invariants (bench/chaos.py), each a number: pure functions over what the run recorded
(the alerts topic, the receivers' POSTs, the state changelog, the probes' times) and the fault-free replay.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from bench.chaos_receivers import Post

TYPES = {"raised": "alert.raised", "resolved": "alert.resolved"}  # transition -> webhook payload type
Key = tuple[str, str, str]  # (alert id, payload type, recipient)


@dataclass(frozen=True)
class AlertRef:
    alert_id: str
    event: str
    meter_id: str


def expected_notifications(alerts: Iterable[AlertRef], subscribers: Mapping[str, Sequence[str]]) -> set[Key]:
    """Each raise and each all-clear to every subscriber of the alert's household (the run's alerts are all
    bursts, whose first tier is the family and the grid worker, and which resolve before any escalation)."""
    return {
        (alert.alert_id, TYPES[alert.event], recipient)
        for alert in alerts
        if alert.event in TYPES
        for recipient in subscribers.get(alert.meter_id, ())
    }


@dataclass
class NotificationCheck:
    expected: int
    delivered: int  # expected notifications a receiver accepted (2xx) at least once
    lost: list[Key]
    two_ids: list[Key]  # one (alert, transition, recipient) under more than one webhook-id
    duplicates: int  # POSTs accepted again under a webhook-id already accepted
    unexpected: list[Key]  # accepted, but no fault-free run gives it
    unsigned: int  # POSTs whose signature did not verify with the recipient's secret
    refused: int  # POSTs a receiver answered with an error (503 while it was down)
    posts: int
    first_accepted: dict[Key, float]
    all_clear_first: int = 0  # all-clears a recipient accepted before the raise they clear (retried raises)

    def summary(self) -> dict[str, object]:
        return {
            "notifications_expected": self.expected,
            "notifications_delivered": self.delivered,
            "notifications_lost": len(self.lost),
            "notifications_under_two_ids": len(self.two_ids),
            "duplicates_same_id": self.duplicates,
            "notifications_unexpected": len(self.unexpected),
            "posts": self.posts,
            "posts_refused_by_receivers": self.refused,
            "posts_badly_signed": self.unsigned,
            "all_clears_before_their_raise": self.all_clear_first,
            "examples": {
                "lost": [list(key) for key in sorted(self.lost)[:5]],
                "under_two_ids": [list(key) for key in sorted(self.two_ids)[:5]],
                "unexpected": [list(key) for key in sorted(self.unexpected)[:5]],
            },
        }


def check_notifications(expected: set[Key], posts: Sequence[Post]) -> NotificationCheck:
    ids: dict[Key, set[str]] = defaultdict(set)
    first: dict[Key, float] = {}
    accepted_ids: Counter[str] = Counter()
    for post in posts:
        if post.alert_id is None:
            continue
        key = (post.alert_id, post.type, post.recipient)
        ids[key].add(post.webhook_id)  # every attempt counts: a second id is a second notification
        if 200 <= post.status < 300:
            accepted_ids[post.webhook_id] += 1
            if key not in first or post.received < first[key]:
                first[key] = post.received
    return NotificationCheck(
        expected=len(expected),
        delivered=len(expected & first.keys()),
        lost=sorted(expected - first.keys()),
        two_ids=sorted(key for key, seen in ids.items() if len(seen) > 1),
        duplicates=sum(count - 1 for count in accepted_ids.values()),
        unexpected=sorted(first.keys() - expected),
        unsigned=sum(not post.signed for post in posts),
        refused=sum(not 200 <= post.status < 300 for post in posts),
        posts=len(posts),
        first_accepted=first,
        all_clear_first=sum(
            1
            for (alert, kind, recipient), at in first.items()
            if kind == TYPES["resolved"] and at < first.get((alert, TYPES["raised"], recipient), at)
        ),
    )


@dataclass(frozen=True)
class ProbeTimes:
    """One injected burst: the readings partition it went to, when its record was sent, when the last of its
    notifications (raise and all-clear, to every subscriber) was first accepted (None: some never were)."""

    partition: int
    sent: float
    delivered: float | None
    alerted: float | None = None  # when the worker put its raise on the alerts topic (the record's timestamp)

    @property
    def latency(self) -> float | None:
        return None if self.delivered is None else self.delivered - self.sent


def probe_delivered(keys: Iterable[Key], first_accepted: Mapping[Key, float]) -> float | None:
    times = [first_accepted.get(key) for key in keys]
    return None if not times or any(t is None for t in times) else max(t for t in times if t is not None)


def normal_latency(probes: Sequence[ProbeTimes], before: float, floor_s: float = 5.0) -> tuple[float, float]:
    """The baseline (median latency of the probes sent before the first fault) and the latency under which the
    pipeline counts as caught up: three times the baseline, at least ``floor_s`` (a median, so that the first
    seconds of the run, every meter new, do not make "normal" lenient)."""
    calm = sorted(p.latency for p in probes if p.sent < before and p.latency is not None)
    if not calm:
        return 0.0, floor_s
    baseline = statistics.median(calm)
    return baseline, max(floor_s, 3.0 * baseline)


def caught_up_at(began: float, probes: Sequence[ProbeTimes], normal_s: float) -> float | None:
    """When the pipeline had caught up after a fault that began at ``began``: per readings partition, the
    first probe sent since then that went through in normal time, once every probe before it (still on its
    way when the fault began) was through too; the latest partition's moment. None if some never did."""
    partitions: dict[int, list[ProbeTimes]] = defaultdict(list)
    for probe in sorted(probes, key=lambda p: p.sent):
        partitions[probe.partition].append(probe)
    moments = []
    for line in partitions.values():
        pending: list[float] = []  # delivery times of the probes in flight at or after the fault
        settled = None
        for probe in line:
            if probe.delivered is not None and probe.delivered < began:
                continue  # through before the fault: not part of this catch-up
            if probe.delivered is None:
                return None
            pending.append(probe.delivered)
            latency = probe.latency
            if probe.sent >= began and latency is not None and latency <= normal_s:
                settled = max(pending)
                break
        if settled is None:
            return None
        moments.append(settled)
    return max(moments) if moments else None


def caught_up_so_far(
    bursts: Sequence[tuple[int, float, Sequence[Key]]], accepted: Mapping[Key, float], calm_before: float, since: float
) -> bool:
    """While the run goes on: whether the pipeline has caught up from the fault that began at ``since`` as the
    report will measure it (``caught_up_at``), from each burst (partition, sent, its notifications) and the
    notifications accepted so far; normal time from the bursts sent before ``calm_before`` (the first fault)."""
    probes = [ProbeTimes(partition, sent, probe_delivered(keys, accepted)) for partition, sent, keys in bursts]
    _, normal = normal_latency(probes, calm_before)
    return caught_up_at(since, probes, normal) is not None


def recovery(
    faults: Sequence[tuple[float, float]], probes: Sequence[ProbeTimes], normal_s: float
) -> list[tuple[float | None, float | None]]:
    """Per fault (began, ended): seconds from its start, and from its end, to the pipeline caught up (None: never
    within the run); from its end 0 when it had caught up before the fault was over (another process took over)."""
    out: list[tuple[float | None, float | None]] = []
    for began, ended in faults:
        moment = caught_up_at(began, probes, normal_s)
        if moment is None:
            out.append((None, None))
        else:
            out.append((round(moment - began, 1), round(max(0.0, moment - ended), 1)))
    return out


def check_alerts(expected: set[tuple[str, str]], seen: Sequence[tuple[str, str, bytes]]) -> dict[str, object]:
    """The alerts topic against the replay's alerts: (alert id, transition) missing or extra; copies of one
    event on the topic (a re-processed record sends its alerts again: allowed), and copies that differ."""
    values: dict[tuple[str, str], set[bytes]] = defaultdict(set)
    count: Counter[tuple[str, str]] = Counter()
    for alert_id, event, value in seen:
        values[(alert_id, event)].add(value)
        count[(alert_id, event)] += 1
    return {
        "alerts_expected": len(expected),
        "alerts_missing": len(expected - values.keys()),
        "alerts_extra": len(values.keys() - expected),
        "alert_events_on_topic": sum(count.values()),
        "alert_events_repeated": sum(n - 1 for n in count.values()),
        "alert_events_repeated_differently": sum(len(v) > 1 for v in values.values()),
        "examples_missing": sorted(expected - values.keys())[:5],
    }


def check_states(
    replay_states: Mapping[str, bytes],
    replay_last: Mapping[str, float],
    replay_readings: Mapping[str, int],
    final_last: Mapping[str, float],
    comparable: Mapping[str, bytes],
    left_out: Mapping[str, int | None],
) -> dict[str, object]:
    """Each meter's final state (the changelog's newest value, made ``comparable``: its count of late readings
    aside) against the fault-free replay's. Readings not reflected: a meter without a state counts all its
    readings; one whose state stops early, the hourly readings after its newest one; one that went on but
    differs, the readings of the record whose leaving out gives its state (``left_out``: found by replaying
    its records without each in turn), or it is unexplained."""
    missing = sorted(set(replay_states) - set(comparable))
    differing = sorted(m for m in replay_states if m in comparable and comparable[m] != replay_states[m])
    behind = {m: max(0, round((replay_last[m] - final_last[m]) / 3600.0)) for m in differing}
    gaps = {m: left_out.get(m) for m in differing if not behind[m]}
    return {
        "meters": len(replay_states),
        "meters_state_missing": len(missing),
        "meters_state_differs": len(differing),
        "meters_state_unexplained": sum(n is None for n in gaps.values()),
        "readings_not_reflected": sum(replay_readings.get(m, 0) for m in missing)
        + sum(behind.values())
        + sum(n or 0 for n in gaps.values()),
        "examples_differing": differing[:5],
    }
