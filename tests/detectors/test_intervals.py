"""Readings → intervals: duplicates, late readings, jitter, drops, rollovers and glitches."""

from __future__ import annotations

import pytest

from detectors.base import Interval
from detectors.intervals import IntervalBuilder

H = 3600.0


def accept_all(builder: IntervalBuilder, readings: list[tuple[float, float]]) -> list[Interval | None]:
    return [builder.accept(ts, register, 0.0) for ts, register in readings]


def test_the_first_reading_is_a_zero_length_interval_without_use() -> None:
    builder = IntervalBuilder()
    first = builder.accept(H, 1234.0, 0.0)
    assert first is not None and (first.start, first.end, first.litres, first.issues) == (H, H, 0.0, ())
    assert builder.last_ts == H


def test_a_normal_step_is_the_litres_between_two_readings() -> None:
    builder = IntervalBuilder()
    _, interval = accept_all(builder, [(0.0, 1000.0), (H, 1012.5)])
    assert interval == Interval(0.0, H, 12.5, 0.0)
    assert interval.hours == 1.0


def test_the_utc_offset_is_passed_through() -> None:
    builder = IntervalBuilder()
    builder.accept(0.0, 10.0, 28800.0)
    interval = builder.accept(H, 11.0, 28800.0)
    assert interval is not None and interval.utc_offset == 28800.0


def test_a_duplicate_reading_is_ignored() -> None:
    builder = IntervalBuilder()
    results = accept_all(builder, [(0.0, 1000.0), (H, 1010.0), (H, 1010.0), (2 * H, 1015.0)])
    assert results[2] is None
    assert results[3] == Interval(H, 2 * H, 5.0, 0.0)
    assert builder.late == 0


def test_same_time_different_register_is_a_conflicting_duplicate_and_the_first_stands() -> None:
    builder = IntervalBuilder()
    results = accept_all(builder, [(0.0, 1000.0), (H, 1010.0), (H, 1090.0), (2 * H, 1015.0)])
    conflict = results[2]
    assert conflict is not None
    assert conflict.litres is None
    assert conflict.issues == ("conflicting_duplicate",)
    assert conflict.start == conflict.end == H
    assert results[3] == Interval(H, 2 * H, 5.0, 0.0)  # measured from the first register, 1010


def test_a_late_reading_is_ignored_and_counted() -> None:
    builder = IntervalBuilder()
    results = accept_all(builder, [(0.0, 1000.0), (2 * H, 1020.0), (H, 1010.0), (0.5 * H, 1005.0), (3 * H, 1030.0)])
    assert results[2] is None and results[3] is None
    assert builder.late == 2
    assert results[4] == Interval(2 * H, 3 * H, 10.0, 0.0)


def test_a_small_step_back_is_no_use_and_the_higher_base_is_kept() -> None:
    builder = IntervalBuilder(jitter_l=5.0)
    results = accept_all(builder, [(0.0, 1000.0), (H, 997.0), (2 * H, 1002.0)])
    assert results[1] == Interval(0.0, H, 0.0, 0.0)
    # The next forward step counts from 1000, not from 997: 2 litres, not 5.
    assert results[2] == Interval(H, 2 * H, 2.0, 0.0)


def test_a_duplicate_of_a_jittered_reading_is_still_only_a_duplicate() -> None:
    builder = IntervalBuilder(jitter_l=5.0)
    results = accept_all(builder, [(0.0, 1000.0), (H, 997.0), (H, 997.0)])
    assert results[2] is None


def test_a_big_drop_is_backwards_with_unknown_use_and_becomes_the_base() -> None:
    builder = IntervalBuilder()
    results = accept_all(builder, [(0.0, 5000.0), (H, 4000.0), (2 * H, 4010.0)])
    dropped = results[1]
    assert dropped is not None
    assert dropped.litres is None
    assert dropped.issues == ("backwards",)
    assert results[2] == Interval(H, 2 * H, 10.0, 0.0)


def test_a_drop_to_almost_nothing_is_a_reset() -> None:
    builder = IntervalBuilder()
    results = accept_all(builder, [(0.0, 52000.0), (H, 3.0), (2 * H, 10.0)])
    reset = results[1]
    assert reset is not None
    assert reset.litres is None
    assert reset.issues == ("reset",)
    assert results[2] == Interval(H, 2 * H, 7.0, 0.0)


@pytest.mark.parametrize(
    ("before", "after", "litres"), [(99990.0, 20.0, 30.0), (99999.0, 4.0, 5.0), (9995.0, 5.0, 10.0)]
)
def test_a_rollover_counts_the_distance_across_the_wrap(before: float, after: float, litres: float) -> None:
    builder = IntervalBuilder()
    _, rolled = accept_all(builder, [(0.0, before), (H, after)])
    assert rolled is not None
    assert rolled.issues == ("rollover",)
    assert rolled.litres == pytest.approx(litres)


def test_a_fractional_register_just_below_the_wrap_rolls_over() -> None:
    builder = IntervalBuilder()
    _, rolled = accept_all(builder, [(0.0, 99999.5), (H, 3.0)])
    assert rolled is not None
    assert rolled.issues == ("rollover",)
    assert rolled.litres == pytest.approx(3.5)


def test_an_impossible_rate_is_unknown_use_with_an_issue() -> None:
    builder = IntervalBuilder(max_rate_lph=5000.0)
    results = accept_all(builder, [(0.0, 1000.0), (H, 1000.0 + 20000.0), (2 * H, 21005.0)])
    glitch = results[1]
    assert glitch is not None
    assert glitch.litres is None
    assert glitch.issues == ("impossible_rate",)
    assert results[2] == Interval(H, 2 * H, 5.0, 0.0)


def test_the_impossible_rate_scales_with_the_interval_length() -> None:
    builder = IntervalBuilder(max_rate_lph=5000.0)
    # 6000 L in two hours is possible, in one hour it is not.
    results = accept_all(builder, [(0.0, 0.0), (2 * H, 6000.0), (3 * H, 12000.0)])
    assert results[1] == Interval(0.0, 2 * H, 6000.0, 0.0)
    assert results[2] is not None and results[2].litres is None


def test_a_rollover_faster_than_a_connection_can_pass_is_also_impossible() -> None:
    builder = IntervalBuilder(max_rate_lph=100.0)
    _, rolled = accept_all(builder, [(0.0, 99000.0), (H, 5000.0)])
    assert rolled is not None
    assert rolled.litres is None
    assert rolled.issues == ("rollover", "impossible_rate")


def test_dump_and_load_continue_exactly() -> None:
    readings = [(0.0, 1000.0), (H, 1010.0), (0.5 * H, 1003.0), (2 * H, 1007.0), (3 * H, 1020.0)]
    whole = IntervalBuilder()
    accept_all(whole, readings[:4])
    restored = IntervalBuilder()
    restored.load(whole.dump())
    assert restored.dump() == whole.dump()
    assert restored.late == 1 and restored.last_ts == 2 * H
    # The jitter base (1010) survives the round trip: 10 litres, not 13.
    assert restored.accept(*readings[4], 0.0) == whole.accept(*readings[4], 0.0) == Interval(2 * H, 3 * H, 10.0, 0.0)


def test_a_fresh_builder_round_trips_to_a_fresh_builder() -> None:
    restored = IntervalBuilder()
    restored.accept(5.0, 1.0, 0.0)
    restored.load(IntervalBuilder().dump())
    again = restored.accept(H, 100.0, 0.0)  # again the first reading
    assert again is not None and again.start == again.end == H


def test_a_bad_blob_is_refused() -> None:
    with pytest.raises(ValueError):
        IntervalBuilder().load(IntervalBuilder().dump()[:-1])
