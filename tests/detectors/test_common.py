"""The checks every detector must pass (River's idea: one battery, every estimator).

Each detector runs alone in a bank over a generated household with episodes for every kind.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import pytest

from detectors import DetectorBank, Finding, Observation
from detectors.bank import default_detectors
from detectors.base import Detector
from tests.detectors.series import Household, at_day

DETECTORS: dict[str, Callable[[], Detector]] = {d.name: type(d) for d in default_detectors()}  # type: ignore[misc]


def eventful() -> list[Observation]:
    """Two months with a changed routine, an outage, a burst, a collapse, a leak and a reset register."""
    readings = Household(
        days=60,
        shift_from=at_day(28, 0),
        offline=(at_day(30, 2), at_day(30, 14)),
        burst_at=at_day(36, 19),
        collapse_at=at_day(40, 9),
        leak_from=at_day(50, 3),
    ).build()
    # The register is replaced on day 55: it restarts near zero.
    cut = next(i for i, r in enumerate(readings) if r.ts >= at_day(55, 12))
    base = readings[cut].register_l - 3
    return readings[:cut] + [replace(r, register_l=r.register_l - base) for r in readings[cut:]]


def run(name: str, readings: list[Observation], bank: DetectorBank | None = None) -> tuple[list[Finding], bytes]:
    bank = bank or DetectorBank([DETECTORS[name]()], tz="UTC")
    findings = [finding for reading in readings for finding in bank.update(reading)]
    return findings, bank.dump()


@pytest.fixture(scope="module")
def readings() -> list[Observation]:
    return eventful()


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_the_series_exercises_every_detector(name: str, readings: list[Observation]) -> None:
    findings, _ = run(name, readings)
    assert {f.transition for f in findings} >= {"raised"}, f"{name} never raised: the checks below would be vacuous"


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_state_round_trip_continues_exactly(name: str, readings: list[Observation]) -> None:
    whole, whole_state = run(name, readings)
    half = len(readings) // 2 + 7
    first, state = run(name, readings[:half])
    restored = DetectorBank([DETECTORS[name]()], tz="UTC")
    restored.load(state)
    assert restored.dump() == state
    rest, rest_state = run(name, readings[half:], restored)
    assert first + rest == whole
    assert rest_state == whole_state


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_advance_finds_nothing_before_wake_at_and_something_after_a_finite_one(
    name: str, readings: list[Observation]
) -> None:
    # The worker asks only meters whose wake_at has passed: wake_at must never be late.
    for cut in (len(readings) // 3, len(readings) // 2, len(readings) - 1):
        bank = DetectorBank([DETECTORS[name]()], tz="UTC")
        run(name, readings[:cut], bank)
        last = readings[cut - 1].ts.timestamp()
        wake = bank.wake_at()
        state = bank.dump()
        probes = [last + 60.0 * 2**k for k in range(16)]  # a minute to a year after the last reading
        for now in probes:
            early = DetectorBank([DETECTORS[name]()], tz="UTC")
            early.load(state)
            found = early.advance(now)
            assert (found != []) == (now > wake), (name, cut, now - last, wake - last)
        if wake != math.inf:
            after = DetectorBank([DETECTORS[name]()], tz="UTC")
            after.load(state)
            assert after.advance(wake + 1.0) and after.wake_at() == math.inf  # told once, until a reading


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_deterministic(name: str, readings: list[Observation]) -> None:
    assert run(name, readings) == run(name, readings)


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_duplicates_and_late_readings_change_nothing(name: str, readings: list[Observation]) -> None:
    messy: list[Observation] = []
    for index, reading in enumerate(readings):
        messy.append(reading)
        if index % 5 == 0:
            messy.append(reading)  # the same reading again
        if index % 7 == 0 and index > 3:
            messy.append(readings[index - 3])  # a late one, already passed
    clean_findings, clean_state = run(name, readings)
    messy_findings, messy_state = run(name, messy)
    assert messy_findings == clean_findings
    # Only the count of late readings differs: the detector state itself is identical.
    assert _detector_part(messy_state) == _detector_part(clean_state)


def _detector_part(state: bytes) -> bytes:
    # bank layout: version byte, then length-prefixed parts: intervals, history, detector
    position = 1
    parts = []
    while position < len(state):
        length = int.from_bytes(state[position : position + 2], "little")
        parts.append(state[position + 2 : position + 2 + length])
        position += 2 + length
    return parts[-1]


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_reset_register_is_never_water_use(name: str, readings: list[Observation]) -> None:
    findings, _ = run(name, readings)
    reset_at = at_day(55, 12)
    near = [f for f in findings if abs((f.at - reset_at).total_seconds()) <= 3600 and f.transition == "raised"]
    assert all(f.kind == "data_quality" for f in near), near


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_every_finding_is_explained_in_both_languages(name: str, readings: list[Observation]) -> None:
    findings, _ = run(name, readings)
    for finding in findings:
        assert finding.kind == name
        assert finding.explanation_zh and finding.explanation_en
        assert finding.since <= finding.at
        assert finding.at.utcoffset() is not None


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_a_bad_state_blob_is_refused(name: str) -> None:
    detector = DETECTORS[name]()
    with pytest.raises(ValueError):
        detector.load(detector.dump()[:-1])
    with pytest.raises(ValueError):
        detector.load(b"\xff" + detector.dump()[1:])


def test_whole_bank_state_is_small(readings: list[Observation]) -> None:
    bank = DetectorBank(tz="UTC")
    for reading in readings:
        bank.update(reading)
    assert len(bank.dump()) <= 2048
