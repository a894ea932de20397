"""bench/datasets.py on tiny synthetic inputs and on the shipped DAIAD slice (no ../shared data needed)."""

from __future__ import annotations

import csv
import gzip
import zipfile
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from bench.datasets import (
    _intervals_to_register,
    _short_ids,
    format_litres,
    load_ciws,
    load_daiad,
    resample_register,
    select,
    write_replay_csv,
)

SLICE = Path(__file__).resolve().parent.parent / "data" / "daiad_slice.csv"
MADRID = ZoneInfo("Europe/Madrid")


def test_resample_interpolates_between_readings_on_epoch_aligned_boundaries() -> None:
    points = [(100.0, 5.0), (1000.0, 14.0), (1800.0, 20.0), (2000.0, 20.0), (2800.0, 60.0)]
    assert resample_register(points, 900) == [(900.0, 13.0), (1800.0, 20.0), (2700.0, 55.0)]


def test_resample_boundary_on_a_reading_takes_the_last_reading_there() -> None:
    assert resample_register([(0.0, 1.0), (900.0, 2.0), (900.0, 7.0), (1800.0, 7.0)], 900) == [
        (0.0, 1.0),
        (900.0, 7.0),
        (1800.0, 7.0),
    ]


def test_resample_leaves_out_boundaries_inside_long_gaps() -> None:
    points = [(0.0, 0.0), (60.0, 1.0), (7200.0, 30.0), (7260.0, 31.0)]
    assert [t for t, _ in resample_register(points, 900, max_gap_s=600)] == [0.0, 7200.0]
    assert len(resample_register(points, 900)) == 9


def test_resample_edge_cases() -> None:
    assert resample_register([], 900) == []
    assert resample_register([(10.0, 1.0), (20.0, 2.0)], 900) == []
    with pytest.raises(ValueError, match="sorted"):
        resample_register([(900.0, 1.0), (0.0, 0.0)], 900)
    with pytest.raises(ValueError, match="positive"):
        resample_register([(0.0, 0.0)], 0)


def test_intervals_spread_volume_evenly_and_may_overlap() -> None:
    knots, cumulative = _intervals_to_register(np.array([0.0, 5.0]), np.array([10.0, 15.0]), np.array([10.0, 20.0]))
    assert np.interp([0, 5, 10, 15, 99], knots, cumulative).tolist() == [0.0, 5.0, 20.0, 30.0, 30.0]


def test_format_litres() -> None:
    assert [format_litres(v) for v in (68321.0, 1.23456, 0.1 + 0.2, 2.5, -0.0001, 0.0)] == [
        "68321",
        "1.235",
        "0.3",
        "2.5",
        "0",
        "0",
    ]
    with pytest.raises(ValueError):
        format_litres(float("nan"))


def test_write_replay_csv_round_trip(tmp_path: Path) -> None:
    meters = {"m-b": [(1_456_791_583.0, 68321.0), (1_467_331_200.5, 68330.1234)], "m-a": [(1_456_790_400.0, 0.1 + 0.2)]}
    out = tmp_path / "replay.csv"
    assert write_replay_csv(meters, out, tz="Europe/Madrid") == 3
    text = out.read_text(encoding="utf-8")
    assert text.splitlines() == [
        "meter_id,ts,register_l",
        "m-a,2016-03-01T01:00:00+01:00,0.3",
        "m-b,2016-03-01T01:19:43+01:00,68321",
        "m-b,2016-07-01T02:00:00.500+02:00,68330.123",
    ]
    with open(out, newline="", encoding="utf-8") as handle:
        back = [
            (r["meter_id"], datetime.fromisoformat(r["ts"]).timestamp(), float(r["register_l"]))
            for r in csv.DictReader(handle)
        ]
    assert back == [
        ("m-a", 1_456_790_400.0, 0.3),
        ("m-b", 1_456_791_583.0, 68321.0),
        ("m-b", 1_467_331_200.5, 68330.123),
    ]
    write_replay_csv(meters, out)
    assert out.read_text(encoding="utf-8").splitlines()[1] == "m-a,2016-03-01T00:00:00+00:00,0.3"  # UTC default


def test_write_replay_csv_rejects_ids_outside_the_contract(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="contract"):
        write_replay_csv({"a,b": [(0.0, 1.0)]}, tmp_path / "x.csv")


def test_short_ids_grow_on_collision() -> None:
    keys = ["1f8730a9-5d67-4895-9215-6e247087ea00", "1f8730a9-aaaa-4895-9215-6e247087ea00", "00248e83-0000"]
    assert sorted(_short_ids(keys, prefix="d-").values()) == ["d-00248e830", "d-1f8730a95", "d-1f8730a9a"]
    assert _short_ids(keys[1:], prefix="d-") == {keys[1]: "d-1f8730a9", keys[2]: "d-00248e83"}


def test_load_daiad_parses_the_zip_and_separates_the_repeated_autumn_hour(tmp_path: Path) -> None:
    rows = [
        "user.key;datetime;meter.reading;diff",
        "aaaa1111-0000;30/10/2016 01:10:00;100;0",
        "aaaa1111-0000;30/10/2016 02:10:00;105;5",
        "aaaa1111-0000;30/10/2016 02:10:00;105;0",
        "aaaa1111-0000;30/10/2016 03:10:00;104;-1",
        "bbbb2222-0000;01/03/2016 01:19:43;68321;0",
        "bbbb2222-0000;not a date;1;0",
        "bbbb2222-0000;01/03/2016 02:19:43;lots;0",
        "truncated",
    ]
    archive = tmp_path / "trial.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("trial.csv", "\n".join(rows) + "\n")
        zf.writestr("__MACOSX/._trial.csv", "resource fork")
    stats: dict[str, int] = {}
    meters = load_daiad(archive, stats=stats)
    assert stats == {"meters": 2, "rows": 5, "read": 5, "skipped": 3}
    utc_hours = [datetime.fromtimestamp(t, ZoneInfo("UTC")).strftime("%H:%M") for t, _ in meters["daiad-aaaa1111"]]
    assert utc_hours == ["23:10", "00:10", "01:10", "02:10"]
    assert [r for _, r in meters["daiad-aaaa1111"]] == [100.0, 105.0, 105.0, 104.0]  # kept as recorded
    assert meters["daiad-bbbb2222"] == [(datetime(2016, 3, 1, 1, 19, 43, tzinfo=MADRID).timestamp(), 68321.0)]


def test_load_ciws_turns_pulses_into_litres(tmp_path: Path) -> None:
    lines = ["Site #: 019", "Datalogger ID #: 019", 'Meter Size: 1"', "Time,Record,Pulses"]
    lines += [
        f'"19-10-4 13:{m:02d}:{s:02d}",{i},{1 if m < 5 else 0}'
        for i, (m, s) in enumerate(((m, s) for m in range(0, 16) for s in range(2, 60, 4)), start=1)
    ]
    with gzip.open(tmp_path / "019_0001.CSV.gz", "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    meters = load_ciws(tmp_path)
    ((stamp, litres),) = meters["ciws-019"]
    assert datetime.fromtimestamp(stamp, ZoneInfo("America/Denver")).isoformat() == "2019-10-04T13:15:00-06:00"
    assert litres == pytest.approx(75 * 0.041619 * 3.785411784)


def test_select_keeps_first_meters_and_days() -> None:
    meters = {"b": [(0.0, 1.0), (86_400.0, 2.0)], "a": [(10.0, 1.0)], "c": []}
    assert select(meters, count=2, days=1) == {"a": [(10.0, 1.0)], "b": [(0.0, 1.0)]}
    assert list(select(meters, ids=["c", "a"])) == ["c", "a"]
    with pytest.raises(KeyError):
        select(meters, ids=["zz"])


def test_shipped_daiad_slice_follows_the_contract() -> None:
    assert SLICE.stat().st_size < 300_000
    with open(SLICE, newline="", encoding="utf-8") as handle:
        assert handle.readline() == "meter_id,ts,register_l\n"
        handle.seek(0)
        rows = list(csv.DictReader(handle))
    by_meter: dict[str, list[tuple[datetime, float]]] = {}
    for row in rows:
        ts = datetime.fromisoformat(row["ts"])
        assert ts.utcoffset() == ts.astimezone(MADRID).utcoffset(), row
        assert row["register_l"] == format_litres(float(row["register_l"]))
        by_meter.setdefault(row["meter_id"], []).append((ts, float(row["register_l"])))
    assert sorted(by_meter) == ["daiad-0e7d65c2", "daiad-177d0a5d", "daiad-df789230"]
    for readings in by_meter.values():
        times = [t for t, _ in readings]
        assert times == sorted(times) and len(set(times)) == len(times)
        assert 69 < (times[-1] - times[0]).total_seconds() / 86_400 <= 70
        assert len(readings) > 1600 and all(r >= 0 for _, r in readings)
