"""Trusted time in the worker: a reading dated after its clock (beyond SHOUWANG_CLOCK_SKEW_S) is dead-lettered
with its reason and never moves the meter's clock, so the blinding attack (one reading dated 2099 makes
every real one after it "late") no longer silences ``no_usage``."""

from __future__ import annotations

import json

from streams.processing import ReadingProcessor, SourceRecord
from tests.detectors.series import Household, at_day

METER = "m-test"  # the synthetic household's meter


def _record(meter: str, points: list[tuple[float, float]], offset: int) -> SourceRecord:
    value = json.dumps({"meter_id": meter, "readings": [{"ts": t, "register_l": r} for t, r in points]}).encode()
    return SourceRecord(topic="t.readings", partition=0, offset=offset, key=meter.encode(), value=value)


def _run(processor: ReadingProcessor, attack: bool) -> tuple[list[str], list[str]]:
    """Three weeks of routine, (the attack), then a collapse: the no_usage events and the dead letters."""
    readings = Household(days=23, collapse_at=at_day(21, 9)).build()
    points = [(r.ts.timestamp(), r.register_l) for r in readings]
    before, after = points[: 20 * 24], points[20 * 24 :]
    batches = [before[i : i + 24] for i in range(0, len(before), 24)]
    if attack:
        batches.append([(4_070_908_800.0, before[-1][1])])  # 2099-01-01, the register unchanged
    batches += [after[i : i + 24] for i in range(0, len(after), 24)]
    state, found, letters = None, [], []
    for offset, batch in enumerate(batches):
        outcome = processor.process(_record(METER, batch, offset), state)
        state = outcome.state or state
        found += [f"{a.event} since {a.since:%m-%d %H:%M}" for a in outcome.alerts if a.kind.value == "no_usage"]
        if outcome.dead_letter is not None:
            letters.append(outcome.dead_letter.reason)
    return found, letters


def test_a_reading_from_the_future_no_longer_blinds_the_meter() -> None:
    now = at_day(23, 0).timestamp()  # the worker's clock: the end of the series
    processor = ReadingProcessor(clock=lambda: now, max_skew_s=600.0)
    honest, no_letters = _run(processor, attack=False)
    attacked, letters = _run(processor, attack=True)
    collapse = [line for line in honest if line.startswith("raised")]
    assert collapse and no_letters == []
    assert attacked == honest  # the collapse is raised as if the forged reading had never come
    assert len(letters) == 1 and "after this worker's clock" in letters[0] and "2099-01-01" in letters[0]


def test_without_the_check_the_attack_would_blind_it() -> None:
    # The same attack with a clock far in the future (no effective check): a bogus silence is raised in 2099,
    # and the real collapse never is (every real reading after the forged one is "late").
    processor = ReadingProcessor(clock=lambda: 5_000_000_000.0, max_skew_s=600.0)
    honest, _ = _run(ReadingProcessor(clock=lambda: at_day(23, 0).timestamp()), attack=False)
    attacked, letters = _run(processor, attack=True)
    collapse = [line for line in honest if line.startswith("raised")][-1]
    assert collapse not in attacked and letters == []


def test_a_batch_keeps_its_good_readings_and_letters_the_future_ones() -> None:
    now = at_day(1, 0).timestamp()
    processor = ReadingProcessor(clock=lambda: now, max_skew_s=600.0)
    good = [(now - 7200.0, 10.0), (now - 3600.0, 11.0)]
    outcome = processor.process(_record(METER, [*good, (now + 3600.0, 12.0)], 0))
    assert outcome.reading_count == 2 and outcome.state is not None
    assert outcome.dead_letter is not None and "1 reading(s)" in outcome.dead_letter.reason
