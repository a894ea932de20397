"""The day tracker behind the daily all-is-well message: the morning's first use, the day's litres and hours,
in the household's local time; its state round trip; and a bank state written before it existed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from detectors import DetectorBank, Observation
from detectors.base import Interval
from detectors.day_summary import DaySummary, DayTracker
from detectors.timefmt import local_datetime
from tests.detectors.series import HOUR, START, Household, feed, hourly_intervals

SHANGHAI = 8 * 3600.0


def run(
    tracker: DayTracker, litres: list[float | None], start: datetime = START, offset: float = 0.0
) -> list[DaySummary]:
    out: list[DaySummary] = []
    for interval in hourly_intervals(litres, start=start, utc_offset=offset):
        out.extend(tracker.update(interval))
    return out


def clock(summary: DaySummary) -> str:
    assert summary.first_use is not None
    return local_datetime(summary.first_use, summary.utc_offset).strftime("%H:%M")


def test_the_first_use_is_said_once_then_the_whole_day_when_it_is_over() -> None:
    day = [0.0] * 24
    day[2] = 3.0  # 02:00–03:00: a night visit, not the morning
    day[7], day[8], day[19] = 12.0, 5.0, 20.0  # the morning starts with the hour ending 08:00
    summaries = run(DayTracker(), day)  # START is a UTC midnight; the 24th interval ends at the next one
    assert [s.complete for s in summaries] == [False, True]
    first, whole = summaries
    assert clock(first) == "08:00" and first.litres == pytest.approx(15.0) and first.hours_with_use == 2
    assert whole.day == first.day == int(START.timestamp() // 86400)
    assert whole.first_use == first.first_use
    assert whole.litres == pytest.approx(40.0) and whole.hours_with_use == 4


def test_a_drip_or_unknown_use_is_no_morning_and_a_silent_day_has_no_first_use() -> None:
    day: list[float | None] = [0.2] * 24  # below 0.5 L an hour: no use
    day[9] = None  # a glitch: usage unknown
    summaries = run(DayTracker(), day)
    assert [s.complete for s in summaries] == [True]
    assert summaries[0].first_use is None and summaries[0].hours_with_use == 0
    assert summaries[0].litres == pytest.approx(0.2 * 23)


def test_asia_shanghai_days_start_at_local_midnight() -> None:
    start = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)  # 2 March 00:00 in Shanghai
    day = [0.0] * 30
    day[6] = 8.0  # 06:00–07:00 local: first use at 07:00 local (23:00 UTC the day before)
    day[26] = 4.0  # 3 March 02:00–03:00 local: a night visit of the next day
    summaries = run(DayTracker(), day, start=start, offset=SHANGHAI)
    assert [s.complete for s in summaries] == [False, True]
    assert clock(summaries[0]) == "07:00"
    assert datetime(1970, 1, 1) + timedelta(days=summaries[1].day) == datetime(2026, 3, 2)
    assert summaries[1].litres == pytest.approx(8.0)
    # The same UTC hours read in UTC: the use at 23:00 UTC is at night, and the days split elsewhere.
    in_utc = run(DayTracker(), day, start=start, offset=0.0)
    assert all(s.first_use is None or clock(s) != "07:00" for s in in_utc)


def test_a_gap_across_days_closes_the_day_before_and_counts_for_the_day_it_ends_in() -> None:
    tracker = DayTracker()
    run(tracker, [0.0] * 10)  # up to 10:00 on day 0, nothing used
    t0 = START.timestamp()
    summaries = tracker.update(Interval(t0 + 10 * 3600, t0 + (48 + 9) * 3600, 30.0, 0.0))  # to 09:00 on day 2
    assert [(s.day - summaries[0].day, s.complete, s.first_use is not None) for s in summaries] == [
        (0, True, False),
        (2, False, True),
    ]


def test_state_round_trip_continues_exactly() -> None:
    litres = [float((i * 7) % 5) for i in range(24 * 3)]
    whole = run(DayTracker(), litres)
    first = DayTracker()
    part = run(first, litres[:30])
    restored = DayTracker()
    restored.load(first.dump())
    assert restored.dump() == first.dump()
    assert part + run(restored, litres[30:], start=START + 30 * HOUR) == whole
    with pytest.raises(ValueError):
        DayTracker().load(first.dump()[:-1])


def test_the_bank_hands_over_the_summaries_of_its_last_update_once() -> None:
    readings = Household(days=3).build()
    bank = DetectorBank(tz="Asia/Shanghai")
    taken: list[DaySummary] = []
    for reading in readings:
        bank.update(reading)
        taken.extend(bank.take_day_summaries())
    assert bank.take_day_summaries() == []
    complete = [s for s in taken if s.complete]
    assert len(complete) >= 2 and all(s.first_use is not None for s in complete)
    assert len([s for s in taken if not s.complete]) >= 2
    assert all(s.utc_offset == SHANGHAI for s in taken)


def test_a_bank_state_written_before_the_day_tracker_still_loads() -> None:
    readings = Household(days=10).build()
    bank = DetectorBank(tz="UTC")
    feed(bank, readings[:200])
    new_state = bank.dump()
    assert new_state[0] == 2
    # A version-1 blob is the same parts without the tracker's, which came last.
    old_state = bytes([1]) + new_state[1 : -(2 + len(DayTracker().dump()))]
    upgraded = DetectorBank(tz="UTC")
    upgraded.load(old_state)
    # The learned routine came along: the same findings from here on as the bank that never stopped.
    rest = readings[200:]
    assert feed(upgraded, rest) == feed(bank, rest)
    upgraded.update(Observation("m-test", rest[-1].ts + HOUR, rest[-1].register_l + 30.0))
    assert upgraded.dump()[0] == 2
