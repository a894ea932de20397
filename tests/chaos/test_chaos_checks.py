"""The fault run's own logic, without servers: its invariants catch what they must (a lost notification, a
second webhook-id, a duplicate, a state that stopped early), its recovery measure, the seeded schedule, and a
load whose bursts raise exactly the alerts announced."""

from __future__ import annotations

import json

from bench.chaos_check import (
    AlertRef,
    ProbeTimes,
    caught_up_at,
    caught_up_so_far,
    check_alerts,
    check_notifications,
    check_states,
    expected_notifications,
    normal_latency,
    recovery,
)
from bench.chaos_faults import KINDS, Profile, draw_schedule
from bench.chaos_load import FIRST_PROBE_TICK, HOUR, T0, TZ, Load, comparable_state, left_out, replay
from bench.chaos_receivers import Post
from bench.chaos_report import invariants_hold
from shouwang.settings import Settings
from streams.detection import bank_factory
from streams.processing import ReadingProcessor, SourceRecord

SUBSCRIBERS = {"m1": ["fam-m1", "grid-0"], "m2": ["fam-m2", "grid-0"]}


def post(alert: str, kind: str, recipient: str, webhook_id: str, *, status: int = 200, at: float = 1.0) -> Post:
    return Post(recipient, webhook_id, kind, alert, status, at, True)


def test_notifications_lost_under_two_ids_and_duplicated_are_each_counted() -> None:
    expected = expected_notifications([AlertRef("a1", "raised", "m1"), AlertRef("a2", "resolved", "m2")], SUBSCRIBERS)
    assert expected == {
        ("a1", "alert.raised", "fam-m1"),
        ("a1", "alert.raised", "grid-0"),
        ("a2", "alert.resolved", "fam-m2"),
        ("a2", "alert.resolved", "grid-0"),
    }
    posts = [
        post("a1", "alert.raised", "fam-m1", "msg_1", status=503, at=1.0),  # refused: not yet delivered
        post("a1", "alert.raised", "fam-m1", "msg_1", at=3.0),
        post("a1", "alert.raised", "fam-m1", "msg_1", at=4.0),  # the same id again: a duplicate
        post("a1", "alert.raised", "grid-0", "msg_2", at=2.0),
        post("a1", "alert.raised", "grid-0", "msg_3", at=5.0),  # a second id for one notification
        post("a2", "alert.resolved", "fam-m2", "msg_4", at=2.0),
        post("a9", "alert.raised", "fam-m2", "msg_5", at=2.0),  # no fault-free run gives it
    ]
    check = check_notifications(expected, posts)
    assert check.lost == [("a2", "alert.resolved", "grid-0")]
    assert check.two_ids == [("a1", "alert.raised", "grid-0")]
    assert check.duplicates == 1
    assert check.unexpected == [("a9", "alert.raised", "fam-m2")]
    assert (check.delivered, check.refused, check.posts, check.unsigned) == (3, 1, 7, 0)
    assert check.first_accepted[("a1", "alert.raised", "fam-m1")] == 3.0
    assert check.all_clear_first == 0
    late_raise = [
        post("a2", "alert.resolved", "grid-0", "msg_6", at=1.0),
        post("a2", "alert.raised", "grid-0", "m7", at=2.0),
    ]
    assert check_notifications(expected, late_raise).all_clear_first == 1
    unsigned = check_notifications(expected, [Post("fam-m1", "msg_1", "alert.raised", "a1", 200, 1.0, False)])
    assert unsigned.unsigned == 1


def test_caught_up_is_when_every_partition_is_through_its_backlog_in_normal_time() -> None:
    probes = [
        ProbeTimes(0, 8.0, 9.0),  # through before the fault
        ProbeTimes(1, 9.0, 22.0),  # on its way when the fault began: part of the backlog
        ProbeTimes(0, 11.0, 12.0),  # partition 0 unaffected: caught up at 12
        ProbeTimes(1, 11.0, 24.0),  # stuck
        ProbeTimes(1, 20.0, 25.0),  # still 5 s: not normal yet (normal: under 3 s)
        ProbeTimes(1, 23.0, 24.5),  # normal again, once the earlier ones are through (25)
    ]
    assert caught_up_at(10.0, probes, normal_s=3.0) == 25.0
    assert recovery([(10.0, 14.0), (30.0, 31.0)], probes, normal_s=3.0) == [(15.0, 11.0), (None, None)]
    assert caught_up_at(10.0, [*probes, ProbeTimes(0, 10.5, None)], normal_s=3.0) is None  # never delivered
    assert normal_latency(probes, before=9.0, floor_s=0.5) == (1.0, 3.0)  # the calm before: one probe, 1 s


def test_the_run_waits_for_the_catch_up_the_report_will_measure() -> None:
    """Before the next fault, the run waits until the last one's catch-up as the report counts it: every burst
    through, and on each partition one sent since the fault through in normal time (here under 5 s)."""
    keys = {n: [(f"a{n}", "alert.raised", "fam"), (f"a{n}", "alert.resolved", "fam")] for n in range(5)}
    bursts = [(0, 1.0, keys[0]), (1, 2.0, keys[1]), (0, 12.0, keys[2]), (1, 13.0, keys[3]), (1, 20.0, keys[4])]
    accepted = {keys[0][0]: 1.5, keys[0][1]: 2.0, keys[1][0]: 2.5, keys[1][1]: 3.0}  # 1 s each: calm
    accepted |= {keys[2][0]: 13.0, keys[2][1]: 14.0}  # partition 0 normal again
    assert not caught_up_so_far(bursts, accepted, calm_before=10.0, since=10.0)  # partition 1: nothing yet
    accepted |= {keys[3][0]: 30.0, keys[3][1]: 31.0}  # through, but 18 s: not normal
    assert not caught_up_so_far(bursts, accepted, calm_before=10.0, since=10.0)
    accepted[keys[4][0]] = 22.0
    assert not caught_up_so_far(bursts, accepted, calm_before=10.0, since=10.0)  # its all-clear missing
    accepted[keys[4][1]] = 23.0  # 3 s
    assert caught_up_so_far(bursts, accepted, calm_before=10.0, since=10.0)


def test_alerts_missing_and_repeated_on_the_topic() -> None:
    seen = [("a1", "raised", b"x"), ("a1", "raised", b"x"), ("a2", "raised", b"y"), ("a2", "raised", b"z")]
    result = check_alerts({("a1", "raised"), ("a1", "resolved"), ("a2", "raised")}, seen)
    assert result["alerts_missing"] == 1 and result["alerts_extra"] == 0
    assert result["alert_events_repeated"] == 2 and result["alert_events_repeated_differently"] == 1


def test_the_schedule_is_the_seed_s_and_leaves_a_calm_start_and_end() -> None:
    profile = Profile()
    first = draw_schedule(7, 900.0, profile, KINDS)
    again = draw_schedule(7, 900.0, profile, KINDS)
    assert [(f.kind, f.duration_s) for f in first.faults] == [(f.kind, f.duration_s) for f in again.faults]
    assert first.gaps == again.gaps and first.gaps[0] == profile.first_at_s
    assert {f.kind for f in first.faults} == set(KINDS)  # 15 minutes: each kind at least once
    assert sum(first.gaps) + sum(f.duration_s for f in first.faults) <= 900.0 - profile.quiet_tail_s
    other = draw_schedule(8, 900.0, profile, KINDS)
    assert [f.kind for f in other.faults] != [f.kind for f in first.faults]
    assert draw_schedule(7, 900.0, profile, ()).faults == []


def test_the_load_s_bursts_raise_and_resolve_the_alerts_announced_and_nothing_else() -> None:
    settings = Settings(household_tz=TZ)
    load = Load(120, 4, seed=3, invalid_every=5)
    ticks = [load.tick(n) for n in range(30)]
    records = [record for tick in ticks for record in tick.records]
    again = Load(120, 4, seed=3, invalid_every=5)
    assert [r for n in range(30) for r in again.tick(n).records] == records  # deterministic
    probes = [probe for tick in ticks for probe in tick.probes]
    assert len(probes) == 4 * (30 - FIRST_PROBE_TICK)  # one per partition and tick
    result = replay(settings, records)
    assert result.invalid == sum(tick.invalid for tick in ticks) == 6
    assert result.readings == sum(tick.readings for tick in ticks)
    raised = {(a.meter_id, a.at.timestamp()) for a in result.alerts.values() if a.event == "raised"}
    assert raised == {(p.meter, float(T0 + HOUR * p.hour)) for p in probes}
    assert {(a.kind.value, a.event) for a in result.alerts.values()} == {("spike", "raised"), ("spike", "resolved")}
    assert {a.alert_id for a in result.alerts.values() if a.event == "resolved"} == {
        a.alert_id for a in result.alerts.values() if a.event == "raised"
    }
    # The run tells while it goes on which bursts went through by their alert ids: the replay's, known ahead.
    raised_ids = {(a.meter_id, a.at.timestamp()): a.alert_id for a in result.alerts.values() if a.event == "raised"}
    assert [p.alert_id for p in probes] == [raised_ids[(p.meter, float(T0 + HOUR * p.hour))] for p in probes]


def test_a_batch_read_twice_leaves_a_comparable_state_and_a_missing_one_is_counted() -> None:
    settings = Settings(household_tz=TZ)
    processor = ReadingProcessor(bank_factory(settings))
    batch = json.dumps({"meter_id": "m1", "readings": [{"ts": T0 + HOUR * h, "register_l": 10.0 * h} for h in (0, 1)]})
    record = SourceRecord("readings", 0, 0, b"m1", batch.encode())
    once = processor.process(record).state
    assert once is not None
    twice = processor.process(record, once).state  # at-least-once: the same record again after a crash
    assert twice is not None and twice != once
    assert comparable_state(settings, twice) == comparable_state(settings, once)
    states = {"m1": comparable_state(settings, once), "m2": b"m2", "m3": b"m3", "m4": b"m4"}
    result = check_states(
        states,
        {"m1": T0 + HOUR * 5.0, "m2": T0 + HOUR * 1.0, "m3": T0 + HOUR * 9.0, "m4": T0 + HOUR * 9.0},
        {"m1": 6, "m2": 2, "m3": 10, "m4": 10},
        {"m1": T0 + HOUR * 1.0, "m3": T0 + HOUR * 9.0, "m4": T0 + HOUR * 9.0},
        {"m1": b"older", "m3": b"went on, less", "m4": b"went on, other"},
        {"m3": 3, "m4": None},  # m3: one record of 3 readings left out; m4: no single record explains it
    )
    assert result["meters_state_missing"] == 1 and result["meters_state_differs"] == 3
    assert result["meters_state_unexplained"] == 1
    assert result["readings_not_reflected"] == 2 + 4 + 3  # all of m2's, m1's four hours after its last, m3's 3


def test_the_record_whose_readings_a_state_lacks_is_found() -> None:
    settings = Settings(household_tz=TZ)
    records = [
        (b"m1", json.dumps({"meter_id": "m1", "readings": [{"ts": T0 + HOUR * h, "register_l": 10.0 * h}]}).encode())
        for h in range(6)
    ]
    without_third = replay(settings, [*records[:2], *records[3:]]).states["m1"]
    assert left_out(settings, records, comparable_state(settings, without_third)) == 1
    assert left_out(settings, records, comparable_state(settings, replay(settings, records[:3]).states["m1"])) is None


def test_a_run_with_a_crashed_or_hung_process_does_not_hold_whatever_the_counts() -> None:
    clean: dict[str, object] = {
        "alerts_missing": 0,
        "notifications_lost": 0,
        "notifications_under_two_ids": 0,
        "meters_state_missing": 0,
        "meters_state_differs": 0,
        "meters_state_unexplained": 0,
        "readings_not_reflected": 0,
        "posts_badly_signed": 0,
        "never_caught_up": 0,
        "dead_letters_from_readings": 3,
        "invalid_records_sent": 3,
        "unexpected_exits": [],
        "stuck_workers": [],
    }
    assert invariants_hold(clean)
    assert not invariants_hold({**clean, "unexpected_exits": ["router-2 exited with 1: Traceback…"]})
    assert not invariants_hold({**clean, "stuck_workers": ["worker-1 processed nothing for 60 s: …"]})
    assert not invariants_hold({**clean, "dead_letters_from_readings": 2})
