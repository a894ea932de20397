"""``data_quality``: one episode per run of meter-data issues, resolved after a clean day."""

from __future__ import annotations

from dataclasses import replace

import pytest

from detectors import DetectorBank, Observation
from detectors.base import Finding, Interval
from detectors.data_quality import DataQualityDetector
from detectors.intervals import IntervalBuilder
from tests.detectors.series import HOUR, START, Household, at_day, feed, hourly_intervals

H = 3600.0
ISSUE_READINGS: dict[str, list[tuple[float, float]]] = {
    # readings (hours from START, register) whose last one shows the issue
    "backwards": [(0, 5000.0), (1, 5010.0), (2, 4000.0)],
    "reset": [(0, 52000.0), (1, 52010.0), (2, 3.0)],
    "rollover": [(0, 99980.0), (1, 99990.0), (2, 20.0)],
    "impossible_rate": [(0, 1000.0), (1, 1010.0), (2, 30000.0)],
    "conflicting_duplicate": [(0, 1000.0), (1, 1010.0), (1, 1050.0)],
}


def intervals_of(readings: list[tuple[float, float]]) -> list[Interval]:
    builder = IntervalBuilder()
    t0 = START.timestamp()
    made = [builder.accept(t0 + hours * H, register, 0.0) for hours, register in readings]
    return [interval for interval in made if interval is not None]


def clean_hours(after: float, hours: int) -> list[Interval]:
    """``hours`` clean hourly intervals starting ``after`` epoch seconds."""
    return [Interval(after + k * H, after + (k + 1) * H, 2.0, 0.0) for k in range(hours)]


def run(detector: DataQualityDetector, intervals: list[Interval]) -> list[Finding]:
    return [finding for interval in intervals for finding in detector.update(interval)]


@pytest.mark.parametrize("issue", sorted(ISSUE_READINGS))
def test_each_issue_raises_once(issue: str) -> None:
    intervals = intervals_of(ISSUE_READINGS[issue])
    assert intervals[-1].issues[0] == issue
    findings = run(DataQualityDetector(), intervals)
    assert [(f.kind, f.transition, f.severity) for f in findings] == [("data_quality", "raised", "low")]
    raised = findings[0]
    assert raised.facts["issues"].split(",")[0] == issue
    assert raised.since == raised.at
    assert raised.at.timestamp() == intervals[-1].end
    if intervals[-1].litres is None:
        assert "未知" in raised.explanation_zh and "unknown" in raised.explanation_en


def test_a_rollover_is_not_said_to_lose_the_use() -> None:
    intervals = intervals_of(ISSUE_READINGS["rollover"])
    assert intervals[-1].litres == 30.0
    raised = run(DataQualityDetector(), intervals)[0]
    assert "unknown" not in raised.explanation_en and "未知" not in raised.explanation_zh


def test_the_explanation_names_the_problem() -> None:
    backwards = run(DataQualityDetector(), intervals_of(ISSUE_READINGS["backwards"]))[0]
    assert "倒退" in backwards.explanation_zh and "backwards" in backwards.explanation_en
    reset = run(DataQualityDetector(), intervals_of(ISSUE_READINGS["reset"]))[0]
    assert "归零" in reset.explanation_zh and "reset" in reset.explanation_en


def test_clean_intervals_raise_nothing() -> None:
    assert run(DataQualityDetector(), hourly_intervals([3.0, 0.0, 10.0] * 30)) == []


def test_more_issues_join_the_open_episode() -> None:
    detector = DataQualityDetector()
    t0 = START.timestamp()
    first = Interval(t0, t0 + H, None, 0.0, ("backwards",))
    more = [
        Interval(t0 + k * H, t0 + (k + 1) * H, None, 0.0, (issue,))
        for k, issue in enumerate(["reset", "impossible_rate", "backwards"], start=3)
    ]
    findings = run(detector, [first, *clean_hours(t0 + H, 2), *more, *clean_hours(t0 + 6 * H, 10)])
    assert [f.transition for f in findings] == ["raised"]


def test_a_clean_day_resolves_with_the_count() -> None:
    detector = DataQualityDetector()
    t0 = START.timestamp()
    issues = [
        Interval(t0, t0 + H, None, 0.0, ("backwards",)),
        Interval(t0 + 2 * H, t0 + 3 * H, None, 0.0, ("reset",)),
        Interval(t0 + 3 * H, t0 + 3 * H, None, 0.0, ("conflicting_duplicate",)),
        Interval(t0 + 4 * H, t0 + 5 * H, None, 0.0, ("rollover", "impossible_rate")),
    ]
    timeline = [issues[0], *clean_hours(t0 + H, 1), *issues[1:], *clean_hours(t0 + 5 * H, 30)]
    findings = run(detector, timeline)
    assert [f.transition for f in findings] == ["raised", "resolved"]
    raised, resolved = findings
    assert resolved.since == raised.since
    assert resolved.at.timestamp() == t0 + 5 * H + 24 * H  # a full day after the last issue
    assert resolved.facts["count"] == 4
    assert set(str(resolved.facts["issues"]).split(",")) == {
        "backwards",
        "reset",
        "conflicting_duplicate",
        "rollover",
        "impossible_rate",
    }
    assert "4" in resolved.explanation_zh and "4 problems" in resolved.explanation_en


def test_an_issue_within_the_clean_day_keeps_it_open() -> None:
    detector = DataQualityDetector()
    t0 = START.timestamp()
    timeline = [
        Interval(t0, t0 + H, None, 0.0, ("backwards",)),
        *clean_hours(t0 + H, 20),
        Interval(t0 + 21 * H, t0 + 22 * H, None, 0.0, ("backwards",)),
        *clean_hours(t0 + 22 * H, 23),
    ]
    assert [f.transition for f in run(detector, timeline)] == ["raised"]
    assert [f.transition for f in run(detector, clean_hours(t0 + 45 * H, 1))] == ["resolved"]


def test_a_new_episode_counts_afresh() -> None:
    detector = DataQualityDetector()
    t0 = START.timestamp()
    first = [
        Interval(t0, t0 + H, None, 0.0, ("backwards",)),
        Interval(t0 + H, t0 + 2 * H, None, 0.0, ("reset",)),
        *clean_hours(t0 + 2 * H, 24),
    ]
    second = [Interval(t0 + 26 * H, t0 + 27 * H, None, 0.0, ("impossible_rate",)), *clean_hours(t0 + 27 * H, 24)]
    findings = run(detector, first + second)
    assert [f.transition for f in findings] == ["raised", "resolved", "raised", "resolved"]
    assert findings[1].facts["count"] == 2
    assert findings[3].facts["count"] == 1
    assert findings[3].facts["issues"] == "impossible_rate"


def test_in_a_bank_a_replaced_meter_is_one_episode_and_never_for_families() -> None:
    readings = Household(days=20).build()
    cut = next(i for i, r in enumerate(readings) if r.ts >= at_day(10, 12))
    base = readings[cut].register_l - 3
    replaced: list[Observation] = readings[:cut] + [replace(r, register_l=r.register_l - base) for r in readings[cut:]]
    findings = feed(DetectorBank(tz="UTC"), replaced)
    quality = [f for f in findings if f.kind == "data_quality"]
    assert [(f.transition, f.facts["issues"]) for f in quality[:1]] == [("raised", "reset")]
    assert [f.transition for f in quality] == ["raised", "resolved"]
    assert quality[1].at == at_day(10, 12) + 24 * HOUR
    assert "usage_hourly_l" not in quality[0].facts
    asked = {f.since for f in findings if f.transition == "check_in"}  # ordinary check-ins of the resident
    others = [f for f in findings if f.kind != "data_quality" and not (f.kind == "no_usage" and f.since in asked)]
    assert others == []


def test_state_round_trip_keeps_the_open_episode_and_its_count() -> None:
    detector = DataQualityDetector()
    t0 = START.timestamp()
    run(
        detector, [Interval(t0, t0 + H, None, 0.0, ("backwards",)), Interval(t0 + H, t0 + 2 * H, None, 0.0, ("reset",))]
    )
    restored = DataQualityDetector()
    restored.load(detector.dump())
    assert restored.update(Interval(t0 + 2 * H, t0 + 3 * H, None, 0.0, ("backwards",))) == []
    resolved = run(restored, clean_hours(t0 + 3 * H, 24))
    assert [f.transition for f in resolved] == ["resolved"]
    assert resolved[0].facts["count"] == 3
