from __future__ import annotations

from datetime import UTC, datetime

from detectors import DetectorBank, MeterFlagsDetector, Observation

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def test_no_flags_no_findings() -> None:
    assert MeterFlagsDetector().update(Observation("m1", T0, 10.0)) == []


def test_each_known_flag_gives_one_finding_with_its_kind() -> None:
    findings = MeterFlagsDetector().update(Observation("m1", T0, 10.0, frozenset({"leak", "tamper", "valve_closed"})))
    assert [(f.kind, f.severity) for f in findings] == [("continuous_flow", "medium"), ("data_quality", "low")]
    leak = findings[0]
    assert leak.since == leak.at == T0
    assert "漏水" in leak.explanation_zh and "leak" in leak.explanation_en
    assert leak.facts["register_l"] == 10.0


def test_the_bank_reports_the_meters_own_flags_beside_its_detectors() -> None:
    bank = DetectorBank(tz="UTC")
    findings = bank.update(Observation("m1", T0, 1.0, frozenset({"burst", "low_battery"})))
    assert sorted(f.kind for f in findings) == ["data_quality", "spike"]
