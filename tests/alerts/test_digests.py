"""The digest planner (alerts/digests.py): alone while there is room, one digest per interval past it,
never over the vendor's limit in any minute; a simulated burst stays a handful of messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.digests import POLICIES, RatePolicy, plan

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
ROBOT = RatePolicy(per_minute=18, individual_per_minute=6, digest_interval_s=30)


def test_a_quiet_day_sends_each_notification_alone_at_once() -> None:
    assert plan(["d1"], [], ROBOT, last_digest_at=None, now=T0).alone == ("d1",)
    recent = [T0 - timedelta(seconds=s) for s in (10, 20, 30, 40, 50)]
    assert plan(["d2"], recent, ROBOT, last_digest_at=None, now=T0).alone == ("d2",)


def test_past_the_individual_room_everything_goes_as_one_digest_then_waits_its_interval() -> None:
    recent = [T0 - timedelta(seconds=s) for s in range(6)]
    first = plan(["a", "b", "c"], recent, ROBOT, last_digest_at=None, now=T0)
    assert first.digest == ("a", "b", "c") and not first.alone
    later = plan(["d"], [*recent, T0], ROBOT, last_digest_at=T0, now=T0 + timedelta(seconds=10))
    assert later.wait_until == T0 + timedelta(seconds=30) and not later.alone and not later.digest


def test_a_full_minute_waits_for_the_window_to_move() -> None:
    recent = [T0 - timedelta(seconds=59 - s) for s in range(18)]
    full = plan(["x"], recent, ROBOT, last_digest_at=None, now=T0)
    assert full.wait_until == recent[0] + timedelta(minutes=1) and not full.alone and not full.digest


def test_a_burst_of_500_in_a_minute_is_a_handful_of_messages_and_loses_none() -> None:
    """500 notifications arrive over 60 s, a dispatcher pass every second; the plan is followed."""
    for policy in (ROBOT, POLICIES["feishu_bot"]):
        arrivals = {f"n{i:03d}": T0 + timedelta(seconds=60 * i / 500) for i in range(500)}
        pending: list[str] = []
        sent: list[datetime] = []
        messages: list[tuple[str, ...]] = []
        last_digest = None
        waiting_until = T0
        for second in range(0, 180):
            now = T0 + timedelta(seconds=second)
            pending += [
                n for n, at in arrivals.items() if now - timedelta(seconds=1) < at <= now or (second == 0 and at <= now)
            ]
            if now < waiting_until:
                continue
            decided = plan(pending, sent, policy, last_digest_at=last_digest, now=now)
            for group in [(n,) for n in decided.alone] if decided.alone else [decided.digest] if decided.digest else []:
                messages.append(group)
                sent.append(now)
                pending = [n for n in pending if n not in group]
            if decided.digest:
                last_digest = now
            waiting_until = decided.wait_until or now
        assert not pending and sorted(n for group in messages for n in group) == sorted(arrivals)
        for moment in sent:
            assert sum(moment <= at < moment + timedelta(minutes=1) for at in sent) <= policy.per_minute
        # the individual messages of the first seconds, then a digest per interval
        assert len(messages) <= policy.individual_per_minute + 6, f"{len(messages)} messages for one burst"
        assert all(at <= T0 + timedelta(seconds=90) for at in sent), "nothing waits long"
