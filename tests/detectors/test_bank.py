"""The detector bank: one meter's detectors, one state blob, event time and the household's clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from detectors import DetectorBank, Finding, Observation
from detectors.bank import state_reading_time
from detectors.history import HOURS
from detectors.meter_offline import MeterOfflineDetector
from detectors.no_usage import NoUsageDetector
from tests.detectors.series import HOUR, START, Household, at_day, feed


@pytest.fixture(scope="module")
def eventful() -> list[Observation]:
    """Eight weeks with a burst, a collapse and use resuming, a leak and a glitch."""
    readings = Household(
        days=56,
        burst_at=at_day(30, 19),
        collapse_at=at_day(36, 9),
        leak_from=at_day(45, 3),
        offline=(at_day(25, 4), at_day(25, 13)),
    ).build()
    glitch = next(i for i, r in enumerate(readings) if r.ts == at_day(20, 10))
    readings[glitch] = replace(readings[glitch], register_l=readings[glitch].register_l + 50000.0)
    return readings


def test_dump_and_load_continue_exactly(eventful: list[Observation]) -> None:
    whole = DetectorBank(tz="UTC")
    whole_findings = feed(whole, eventful)
    half = len(eventful) // 2
    first = DetectorBank(tz="UTC")
    first_findings = feed(first, eventful[:half])
    state = first.dump()
    restored = DetectorBank(tz="UTC")
    restored.load(state)
    assert restored.dump() == state
    assert first_findings + feed(restored, eventful[half:]) == whole_findings
    assert restored.dump() == whole.dump()
    assert {f.kind for f in whole_findings} >= {"spike", "no_usage", "continuous_flow", "data_quality"}


def test_a_truncated_blob_is_refused_at_every_length(eventful: list[Observation]) -> None:
    bank = DetectorBank(tz="UTC")
    feed(bank, eventful[:500])
    state = bank.dump()
    for length in range(len(state)):
        with pytest.raises(ValueError):
            DetectorBank(tz="UTC").load(state[:length])


def test_a_wrong_version_or_trailing_bytes_are_refused() -> None:
    state = DetectorBank(tz="UTC").dump()
    with pytest.raises(ValueError):
        DetectorBank(tz="UTC").load(bytes([state[0] + 1]) + state[1:])
    with pytest.raises(ValueError):
        DetectorBank(tz="UTC").load(state + b"\x00")
    with pytest.raises(ValueError):
        DetectorBank(tz="UTC").load(b"")


def test_a_blob_for_other_detectors_is_refused() -> None:
    state = DetectorBank([NoUsageDetector()], tz="UTC").dump()
    with pytest.raises(ValueError):
        DetectorBank([MeterOfflineDetector()], tz="UTC").load(state)


def test_the_whole_state_stays_small(eventful: list[Observation]) -> None:
    bank = DetectorBank(tz="UTC")
    feed(bank, eventful)
    assert len(bank.dump()) <= 2048


def test_advance_passes_the_time_to_meter_offline() -> None:
    readings = Household(days=3).build()
    bank = DetectorBank(tz="UTC")
    feed(bank, readings)
    last = readings[-1].ts
    assert bank.advance((last + 5 * HOUR).timestamp()) == []
    found = bank.advance((last + 7 * HOUR).timestamp())
    assert [(f.kind, f.transition) for f in found] == [("meter_offline", "raised")]
    assert found[0].since == last and found[0].at == last + 7 * HOUR
    assert bank.advance((last + 9 * HOUR).timestamp()) == []


def test_late_readings_raise_nothing(eventful: list[Observation]) -> None:
    bank = DetectorBank(tz="UTC")
    feed(bank, eventful[:100])
    assert feed(bank, [eventful[50], eventful[10], eventful[99]]) == []


def hour_deltas(readings: list[Observation]) -> dict[datetime, float]:
    return {b.ts: b.register_l - a.register_l for a, b in pairwise(readings)}


def series_of(finding: Finding) -> list[float]:
    return [float(v) for v in str(finding.facts["usage_hourly_l"]).split(",")]


def expected_series(readings: list[Observation], at: datetime) -> list[float]:
    """Hour k back from ``at``: the litres of the reading that ended it (0 for a missing or bad one)."""
    deltas = hour_deltas(readings)
    values = [deltas.get(at - k * HOUR, 0.0) for k in range(HOURS - 1, -1, -1)]
    return [value if 0 <= value < 5000 else 0.0 for value in values]


def test_raised_findings_carry_the_last_48_hours(eventful: list[Observation]) -> None:
    findings = feed(DetectorBank(tz="UTC"), eventful)
    alerting = [f for f in findings if f.transition in ("raised", "escalated") and f.kind != "data_quality"]
    water = [f for f in alerting if f.kind != "meter_offline"]
    assert {f.kind for f in water} >= {"spike", "no_usage", "continuous_flow"}
    for finding in water:
        values = series_of(finding)
        assert len(values) == HOURS
        assert values == pytest.approx(expected_series(eventful, finding.at), abs=0.5), finding.kind
    spike = next(f for f in alerting if f.kind == "spike")
    assert series_of(spike)[-1] == spike.facts["hour_l"]


def test_an_offline_meter_carries_no_water_series(eventful: list[Observation]) -> None:
    # It is about the meter, not water use; and raised from a late reading, its time is hours
    # before the series would end.
    findings = feed(DetectorBank(tz="UTC"), eventful)
    offline = next(f for f in findings if f.kind == "meter_offline" and f.transition == "raised")
    assert "usage_hourly_l" not in offline.facts


def test_resolved_and_data_quality_findings_carry_no_series(eventful: list[Observation]) -> None:
    findings = feed(DetectorBank(tz="UTC"), eventful)
    others = [f for f in findings if f.transition == "resolved" or f.kind == "data_quality"]
    assert others
    assert all("usage_hourly_l" not in f.facts for f in others)


def _first_use_clock(tz: str, shift: timedelta = timedelta(0)) -> tuple[Finding, str]:
    readings = [replace(r, ts=r.ts + shift) for r in Household(collapse_at=at_day(30, 9)).build()]
    findings = feed(DetectorBank([NoUsageDetector()], tz=tz), readings)
    raised = next(f for f in findings if f.kind == "no_usage" and f.transition == "raised")
    return raised, str(raised.facts["usual_first_use"])


def test_the_households_time_zone_sets_its_local_hours() -> None:
    utc, utc_clock = _first_use_clock("UTC")
    shanghai, shanghai_clock = _first_use_clock("Asia/Shanghai")
    assert utc_clock != shanghai_clock
    assert shanghai.at.utcoffset() == timedelta(hours=8) and utc.at.utcoffset() == timedelta(0)
    assert f"usually first water use by {utc_clock}" in utc.explanation_en.lower()
    assert f"usually first water use by {shanghai_clock}" in shanghai.explanation_en.lower()
    assert f"平时一般 {shanghai_clock} 前开始用水" in shanghai.explanation_zh


def test_the_same_local_day_in_another_zone_gives_the_same_words() -> None:
    # The same routine lived eight hours ahead of UTC: the same local clock, the same explanation.
    utc, _ = _first_use_clock("UTC")
    shanghai, _ = _first_use_clock("Asia/Shanghai", shift=-8 * HOUR)
    assert shanghai.explanation_en == utc.explanation_en
    assert shanghai.explanation_zh == utc.explanation_zh
    assert shanghai.since.replace(tzinfo=None) == utc.since.replace(tzinfo=None)
    assert shanghai.since == utc.since - 8 * HOUR


def test_utc_offset_follows_daylight_saving() -> None:
    bank = DetectorBank(tz="Europe/Berlin")
    winter, summer = START.timestamp(), (START + timedelta(days=40)).timestamp()
    assert bank.utc_offset(winter) == 3600.0
    assert bank.utc_offset(summer) == 7200.0
    assert bank.utc_offset(winter) == 3600.0  # the per-hour cache does not stick


def test_a_bank_with_chosen_detectors_runs_only_those() -> None:
    readings = Household(days=42, collapse_at=at_day(30, 9), burst_at=at_day(25, 19)).build()
    findings = feed(DetectorBank([NoUsageDetector()], tz="UTC"), readings)
    assert {f.kind for f in findings} == {"no_usage"}


def test_an_upload_of_points_finds_what_one_observation_at_a_time_finds(eventful: list[Observation]) -> None:
    one_by_one = DetectorBank(tz="Asia/Shanghai")
    uploads = DetectorBank(tz="Asia/Shanghai")
    expected: list[Finding] = []
    found: list[Finding] = []
    for day, first in enumerate(range(0, len(eventful), 24)):
        upload = eventful[first : first + 24]
        flags = frozenset({"leak", "tamper"}) if day % 9 == 4 else frozenset()
        for index, reading in enumerate(upload):
            expected += one_by_one.update(replace(reading, flags=flags if index == len(upload) - 1 else frozenset()))
        points = [(reading.ts.timestamp(), reading.register_l) for reading in upload]
        found += uploads.update_points("m1", points, flags, upload[-1].ts if day % 2 else None)
    assert found == expected
    assert uploads.dump() == one_by_one.dump()
    assert {f.kind for f in found} >= {"spike", "no_usage", "continuous_flow", "data_quality"}
    assert sum(f.facts.get("flag") == "tamper" for f in found) == len(range(4, -(-len(eventful) // 24), 9))


def test_a_states_reading_time_is_read_from_its_header() -> None:
    bank = DetectorBank()
    assert state_reading_time(bank.dump()) is None  # no reading yet
    at = datetime(2026, 3, 6, 7, 0, tzinfo=UTC)
    bank.update(Observation("m-1", at, 100.0))
    bank.update(Observation("m-1", at + timedelta(hours=1), 101.5))
    later = bank.dump()
    assert state_reading_time(later) == (at + timedelta(hours=1)).timestamp()
    for other in (b"", b"\x00erased", b"\x02\x00", b"\x09" + later[1:], later[:5]):
        assert state_reading_time(other) is None, other
