"""``shouwang replay``: the CSV contract in, alert transitions out, through the stream's own bank."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from detectors import DetectorBank
from streams.replay import ReplayError, read_readings, replay

SLICE = Path(__file__).resolve().parent.parent / "data" / "daiad_slice.csv"


def _csv(text: str, tz: str = "Europe/Madrid"):
    return read_readings(io.StringIO(text), tz)


def test_timestamps_with_without_offset_and_epoch_agree() -> None:
    parsed = _csv(
        "meter_id,ts,register_l\n"
        "m1,2026-03-01T08:00:00+01:00,1\n"
        "m1,2026-03-01T09:00:00,2\n"  # no offset: Madrid time
        "m1,1772355600,3\n"
    )  # 2026-03-01T09:00:00Z, i.e. 10:00 in Madrid
    assert [t for t, _ in parsed.meters["m1"]] == [1772348400.0, 1772352000.0, 1772355600.0]
    assert parsed.bad_rows == []


def test_rows_are_sorted_per_meter_and_bad_rows_carry_their_line_numbers() -> None:
    parsed = _csv(
        "register_l,meter_id,ts\n"  # any column order
        "5,m1,2026-03-01T10:00:00Z\n"
        "4,m1,2026-03-01T09:00:00Z\n"
        "x,m1,2026-03-01T11:00:00Z\n"  # line 4
        "6,,2026-03-01T11:00:00Z\n"  # line 5: no meter id
        "6,m1,yesterday\n"  # line 6
        "-1,m2,2026-03-01T11:00:00Z\n"  # line 7
        "7,m2\n"  # line 8
        "\n"
        "8,m2,2026-03-01T12:00:00Z\n"
    )
    assert [r for _, r in parsed.meters["m1"]] == [4.0, 5.0]
    assert [(bad.line, bad.reason.split(" ")[0]) for bad in parsed.bad_rows] == [
        (4, "register_l"),
        (5, "meter_id"),
        (6, "ts"),
        (7, "register_l"),
        (8, "expected"),
    ]
    assert parsed.meters["m2"] == [(datetime.fromisoformat("2026-03-01T12:00:00+00:00").timestamp(), 8.0)]


@pytest.mark.parametrize(("text", "reason"), [("", "empty"), ("meter,ts,register\n", "missing meter_id")])
def test_a_file_without_the_header_is_refused_in_one_line(text: str, reason: str) -> None:
    with pytest.raises(ReplayError, match=reason):
        _csv(text)


def test_replay_output_follows_the_contract_on_real_homes() -> None:
    with SLICE.open(encoding="utf-8") as lines:
        parsed = read_readings(lines, "Europe/Madrid")
    assert len(parsed.meters) == 3 and parsed.bad_rows == []
    records = list(replay(parsed, lambda: DetectorBank(tz="Europe/Madrid")))
    assert records, "70 days of three real homes raise something (at least a meter gap)"
    for record in records:
        assert {"event", "meter_id", "kind", "severity", "at", "since", "explanation"} <= record.keys()
        assert record["event"] in {"raised", "resolved"}
        at, since = datetime.fromisoformat(record["at"]), datetime.fromisoformat(record["since"])
        assert at.utcoffset() is not None and since <= at
        assert record["explanation"]
    raised = {r["alert_id"] for r in records if r["event"] == "raised"}
    assert len(raised) == sum(1 for r in records if r["event"] == "raised"), "one raise per episode"


def test_the_command_on_a_real_file_with_a_bad_row(tmp_path: Path) -> None:
    readings = tmp_path / "readings.csv"
    lines = SLICE.read_text(encoding="utf-8").splitlines()
    lines.insert(10, "daiad-broken,2016-03-02T00:00:00+01:00,not-a-number")
    readings.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "alerts.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli",
            "replay",
            "--readings",
            str(readings),
            "--tz",
            "Europe/Madrid",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"{readings}:11: skipped: register_l 'not-a-number' is not a number" in done.stderr
    assert "1 bad rows skipped" in done.stderr
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert records and all(r["meter_id"].startswith("daiad-") for r in records)


def test_the_command_fails_in_one_line_on_a_missing_file(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli",
            "replay",
            "--readings",
            str(tmp_path / "none.csv"),
            "--out",
            str(tmp_path / "o.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"shouwang: {tmp_path / 'none.csv'}: no such file"]


def test_replaying_in_several_processes_gives_the_same_lines_in_the_same_order() -> None:
    from shouwang.settings import Settings
    from streams.detection import bank_factory

    with SLICE.open(encoding="utf-8") as lines:
        parsed = read_readings(lines, "Europe/Madrid")
    make = bank_factory(Settings(), tz="Europe/Madrid")
    alone = list(replay(parsed, make))
    assert alone and list(replay(parsed, make, jobs=2)) == alone


def test_any_printable_meter_id_is_replayed_and_ids_match_the_streams() -> None:
    from streams.processing import finding_to_alert

    text = SLICE.read_text(encoding="utf-8").replace("daiad-df789230", "home 12 (flat 3)")
    parsed = read_readings(io.StringIO(text), "Europe/Madrid")
    assert "home 12 (flat 3)" in parsed.meters and parsed.bad_rows == []
    from detectors import Observation
    from streams.replay import transition_record

    findings = []
    for meter in ("daiad-0e7d65c2", "daiad-177d0a5d"):
        bank = DetectorBank(tz="Europe/Madrid")
        findings += [
            (meter, f)
            for t, r in parsed.meters[meter]
            for f in bank.update(Observation(meter, datetime.fromtimestamp(t, UTC), r))
        ]
    assert findings
    for meter, finding in findings:
        assert transition_record(meter, finding)["alert_id"] == finding_to_alert(meter, finding).alert_id
