"""``shouwang replay --check-ins --feedback``: the check tier and people's answers, on real homes."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from detectors import DetectorBank
from shouwang.events import alert_id_for
from shouwang.settings import Settings
from streams.detection import BankFactory, bank_factory
from streams.replay import ReadingsFile, read_readings, replay

SLICE = Path(__file__).resolve().parent.parent / "data" / "daiad_slice.csv"
TZ = "Europe/Madrid"


@pytest.fixture(scope="module")
def readings() -> ReadingsFile:
    with SLICE.open(encoding="utf-8") as lines:
        return read_readings(lines, TZ)


def factory(check_ins_per_month: float = 2.0) -> Callable[[], DetectorBank]:
    made = bank_factory(Settings(), tz=TZ)
    assert isinstance(made, BankFactory)
    return dataclasses.replace(made, check_ins_per_month=check_ins_per_month)


def lines(records: list[dict[str, Any]], *events: str) -> list[tuple[str, str, str, str, str]]:
    return [(r["meter_id"], r["kind"], r["event"], r["since"], r["at"]) for r in records if r["event"] in events]


def no_usage(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["kind"] == "no_usage"]


def test_without_flags_the_output_is_what_it_was_before_the_check_tier(readings: ReadingsFile) -> None:
    before = list(replay(readings, factory(check_ins_per_month=0.0)))  # a bank without the check tier
    now = list(replay(readings, factory()))
    assert before and now == before
    # The check tier did speak on these homes: the flag is what keeps it out of the output.
    assert any(r["event"] == "check_in" for r in replay(readings, factory(), check_ins=True))


def test_check_ins_add_their_own_lines_and_nothing_else(readings: ReadingsFile) -> None:
    plain = list(replay(readings, factory()))
    flagged = list(replay(readings, factory(), check_ins=True))
    check_ins = [r for r in flagged if r["event"] == "check_in"]
    assert check_ins and all(r["kind"] == "no_usage" for r in check_ins)
    assert lines(flagged, "raised", "escalated") == lines(plain, "raised", "escalated")
    alarmed = {(r["meter_id"], r["since"]) for r in plain if r["event"] == "raised"}
    # Every resolved line is an alarm's, or the all-clear of a silence that only reached a check-in.
    asked = {(r["meter_id"], r["since"]) for r in check_ins}
    for record in flagged:
        if record["event"] == "resolved" and (record["meter_id"], record["since"]) not in alarmed:
            assert record["kind"] == "no_usage" and (record["meter_id"], record["since"]) in asked
    assert [r for r in flagged if r["event"] != "check_in" and (r["meter_id"], r["since"]) not in asked] == [
        r for r in plain if (r["meter_id"], r["since"]) not in asked
    ]


def test_a_check_in_and_the_alarm_it_becomes_share_one_alert_id(readings: ReadingsFile) -> None:
    flagged = no_usage(list(replay(readings, factory(), check_ins=True)))
    raised = {(r["meter_id"], r["since"]): r for r in flagged if r["event"] == "raised"}
    both = 0
    for check_in in (r for r in flagged if r["event"] == "check_in"):
        assert check_in["alert_id"] == alert_id_for(check_in["meter_id"], "no_usage", moment(check_in["since"]))
        assert check_in["facts"]["check_limit_h"] <= check_in["facts"]["limit_h"]
        alarm = raised.get((check_in["meter_id"], check_in["since"]))
        if alarm is not None:
            both += 1
            assert alarm["alert_id"] == check_in["alert_id"]
            assert check_in["at"] < alarm["at"]
    assert both, "no silence on these homes went from a check-in to an alarm"


def moment(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text)


def test_feedback_changes_what_comes_later_for_a_meter_and_nothing_before(readings: ReadingsFile) -> None:
    without = no_usage(list(replay(readings, factory(), check_ins=True)))
    taught = no_usage(list(replay(readings, factory(), check_ins=True, feedback=True)))
    # The slice's one alarm is on a silence that ended within a day: it is answered false_alarm when it ends.
    answered = [
        r
        for r in without
        if r["event"] == "resolved"
        and any(a["event"] == "raised" and a["alert_id"] == r["alert_id"] for a in without)
        and (moment(r["at"]) - moment(r["since"])).total_seconds() <= 24 * 3600
    ]
    assert answered
    meter, taught_at = answered[0]["meter_id"], answered[0]["at"]
    for run in (without, taught):
        assert [r for r in run if r["at"] <= taught_at] == [r for r in without if r["at"] <= taught_at]
    later = [
        lines([r], "check_in", "raised", "resolved") for r in without if r["meter_id"] == meter and r["at"] > taught_at
    ]
    later_taught = [
        lines([r], "check_in", "raised", "resolved") for r in taught if r["meter_id"] == meter and r["at"] > taught_at
    ]
    # What the household taught lengthened its limits: a later silence is asked about later, or not at all.
    assert later_taught != later
    first_ask = [
        r["at"] for r in without if r["meter_id"] == meter and r["at"] > taught_at and r["event"] == "check_in"
    ]
    first_ask_taught = [
        r["at"] for r in taught if r["meter_id"] == meter and r["at"] > taught_at and r["event"] == "check_in"
    ]
    assert first_ask and (not first_ask_taught or moment(first_ask_taught[0]) > moment(first_ask[0]))
    # The other meters had no alarm to answer: they are unchanged.
    assert [r for r in taught if r["meter_id"] != meter] == [r for r in without if r["meter_id"] != meter]


def test_feedback_changes_later_alarms_of_a_household_whose_alarms_were_needless() -> None:
    """The slice has one alarm and nothing after it to change. A household with a harmless day out
    every Sunday (no water 08:00–21:00) and a sensitive alarm (3 a month) shows feedback quietening
    the alarms themselves: the detector's own learning alone keeps raising them."""
    text = ["meter_id,ts,register_l"]
    register = 0.0
    start = 1_772_323_200  # 2026-03-01 00:00 UTC, a Sunday
    for hour in range(24 * 7 * 16):
        day, clock = divmod(hour, 24)
        used = clock in (7, 21) if day % 7 == 0 else clock in (7, 8, 19, 20)
        register += 20.0 if used else 0.0
        text.append(f"home,{start + 3600 * (hour + 1)},{register}")
    parsed = read_readings(text, "UTC")
    make = dataclasses.replace(factory(check_ins_per_month=0.0), tz="UTC", false_alarms_per_month=3.0)

    def raised(feedback: bool) -> list[str]:
        records = replay(parsed, make, feedback=feedback)
        return [r["since"] for r in records if r["kind"] == "no_usage" and r["event"] == "raised"]

    plain, taught = raised(False), raised(True)
    assert len(plain) >= 10, "the Sunday outings did not keep raising: nothing for feedback to change"
    assert taught[:1] == plain[:1]  # the first alarm comes before anyone could answer it
    assert len(taught) <= len(plain) // 2


def test_the_command_takes_both_flags(tmp_path: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    command = [sys.executable, "-m", "cli", "replay", "--readings", str(SLICE), "--tz", TZ, "--out", str(out)]
    done = subprocess.run([*command, "--check-ins", "--feedback"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert '"event": "check_in"' in out.read_text(encoding="utf-8")
