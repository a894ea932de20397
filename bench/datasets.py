"""Dev data sets -> one common shape -> the replay CSV contract (``meter_id,ts,register_l``).

    .venv/bin/python bench/datasets.py daiad --out var/daiad.csv --meters 5 --days 30
    .venv/bin/python bench/datasets.py weusedto --out var/weusedto.csv
    .venv/bin/python bench/datasets.py ciws --out var/ciws.csv

Common shape: ``{meter_id: [(epoch_seconds_utc, cumulative_register_litres), ...]}``, each list sorted by
time, one entry per reading. DAIAD is kept as recorded (hourly); WEUSEDTO and CIWS are high-resolution
flow/pulse data, turned into a register and resampled to one reading per 15 minutes (epoch-aligned
boundaries, which are also local quarter hours). Where a source was silent (sensor outage) no reading is
emitted: a gap in the readings means "meter offline", never "no water used". Loaders fill an optional
``stats`` dict: ``meters`` and ``rows`` returned, source rows ``read`` and ``skipped`` (unparsable).
"""

from __future__ import annotations

import argparse
import gzip
import io
import math
import re
import sys
import zipfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from shouwang.events import EARLIEST_EPOCH_S, METER_ID_PATTERN

Points = list[tuple[float, float]]
Meters = dict[str, Points]

REPO_ROOT = Path(__file__).resolve().parent.parent
DEV_DATA = REPO_ROOT.parent / "shared" / "data" / "dev"
STEP_S = 900  # 15-minute readings
US_GALLON_L = 3.785411784
CIWS_GAL_PER_PULSE = 0.041619  # see load_ciws for the evidence that this holds for site 019
CIWS_LITRES_PER_PULSE = CIWS_GAL_PER_PULSE * US_GALLON_L  # 0.157546...
LOCAL_TZ = {"daiad": "Europe/Madrid", "weusedto": "Europe/Rome", "ciws": "America/Denver"}
_METER_ID = re.compile(METER_ID_PATTERN)
_DAIAD_TS = re.compile(r"(\d{2})/(\d{2})/(\d{4}) (\d{2}):(\d{2}):(\d{2})")
_CIWS_TS = re.compile(r"(\d{2}|\d{4})-(\d{1,2})-(\d{1,2}) (\d{1,2}):(\d{2}):(\d{2})")


def resample_register(
    points: Sequence[tuple[float, float]], step_s: float, *, max_gap_s: float | None = None
) -> Points:
    """Register values at every multiple of ``step_s`` (epoch-aligned) inside the span of ``points``.

    ``points`` are (epoch_s, register_l) sorted by time. A boundary that coincides with a reading takes that
    reading (the last one if several share the time); otherwise the register is interpolated linearly between
    the readings either side. With ``max_gap_s``, a boundary whose neighbouring readings are more than
    ``max_gap_s`` apart gets no value: the meter was silent there, and a straight line would invent use.
    """
    if step_s <= 0:
        raise ValueError("step_s must be positive")
    if not points:
        return []
    t = np.fromiter((p[0] for p in points), dtype=float, count=len(points))
    r = np.fromiter((p[1] for p in points), dtype=float, count=len(points))
    if np.any(np.diff(t) < 0):
        raise ValueError("points must be sorted by time")
    first, last = math.ceil(t[0] / step_s), math.floor(t[-1] / step_s)
    if last < first:
        return []
    grid = np.arange(first, last + 1, dtype=float) * step_s
    hi = np.searchsorted(t, grid, side="right")  # first reading after the boundary
    lo = hi - 1  # last reading at or before it (grid >= t[0])
    hi = np.minimum(hi, len(t) - 1)
    span = t[hi] - t[lo]
    exact = t[lo] == grid
    frac = np.divide(grid - t[lo], span, out=np.zeros_like(grid), where=span > 0)
    values = np.where(exact, r[lo], r[lo] + frac * (r[hi] - r[lo]))
    keep = exact | (span <= max_gap_s) if max_gap_s is not None else np.ones(len(grid), dtype=bool)
    return [(float(g), float(v)) for g, v in zip(grid[keep], values[keep], strict=True)]


def write_replay_csv(
    meters: Mapping[str, Sequence[tuple[float, float]]], out_path: str | Path, tz: tzinfo | str | None = None
) -> int:
    """Write ``meter_id,ts,register_l`` rows (meters in id order, readings in the given order); returns rows.

    ``ts`` is ISO 8601 with the UTC offset of ``tz`` (an IANA name or tzinfo; UTC ``+00:00`` if None), whole
    seconds unless the epoch has a fraction. ``register_l`` has at most 3 decimals, trailing zeros dropped.
    """
    zone = ZoneInfo(tz) if isinstance(tz, str) else (tz or UTC)
    rows = 0
    with open(out_path, "w", encoding="utf-8", newline="") as out:
        out.write("meter_id,ts,register_l\n")
        for meter_id in sorted(meters):
            if not _METER_ID.match(meter_id):
                raise ValueError(f"meter id {meter_id!r} does not fit the contract")
            for epoch, litres in meters[meter_id]:
                spec = "seconds" if float(epoch).is_integer() else "milliseconds"
                stamp = datetime.fromtimestamp(epoch, zone).isoformat(timespec=spec)
                out.write(f"{meter_id},{stamp},{format_litres(litres)}\n")
                rows += 1
    return rows


def format_litres(litres: float) -> str:
    """``68321.0`` -> ``68321``, ``1.23456`` -> ``1.235``, ``-0.0001`` -> ``0``."""
    if not math.isfinite(litres):
        raise ValueError(f"register value {litres!r} is not finite")
    text = f"{litres:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def load_daiad(zip_path: str | Path, *, stats: dict[str, int] | None = None) -> Meters:
    """DAIAD trial A smart-meter readings (hourly, litres), read straight from the zip.

    Rows are ``user.key;datetime;meter.reading;diff`` with ``dd/mm/YYYY HH:MM:SS`` local time of the trial,
    converted with Europe/Madrid. Rows are kept as recorded (no cleaning: decreasing registers and glitches
    stay); unparsable rows are skipped and counted in ``stats["skipped"]``. At the October fall-back the
    meters report the repeated hour twice in the same local time (e.g. 02:08:53 twice); deterministically,
    an ambiguous local time gets fold=0 (summer time) unless the same meter already had a reading at or after
    it, in which case fold=1 (the second pass). Non-existent spring-forward times (none in this file) get
    fold=0. Meter ids are ``daiad-`` + the first 8 hex digits of the UUID key, longer if that collides.
    """
    zone = ZoneInfo("Europe/Madrid")
    raw: dict[str, Points] = {}
    last_local: dict[str, datetime] = {}
    skipped = 0
    with zipfile.ZipFile(zip_path) as archive:
        names = [n for n in archive.namelist() if n.endswith(".csv") and not Path(n).name.startswith("._")]
        if len(names) != 1:
            raise ValueError(f"{zip_path}: expected one CSV inside, found {names}")
        with archive.open(names[0]) as handle:
            text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
            header = text.readline().strip().lower().split(";")
            if header[:3] != ["user.key", "datetime", "meter.reading"]:
                raise ValueError(f"{zip_path}: unexpected header {header}")
            for line in filter(str.strip, text):
                parts = line.rstrip("\r\n").split(";")
                match = _DAIAD_TS.fullmatch(parts[1].strip()) if len(parts) >= 3 and parts[0].strip() else None
                local = _datetime(match, (2, 1, 0, 3, 4, 5))
                litres = _float(parts[2]) if local is not None else None
                if local is None or litres is None:
                    skipped += 1
                    continue
                key = parts[0].strip()
                summer, winter = local.replace(tzinfo=zone).utcoffset(), local.replace(tzinfo=zone, fold=1).utcoffset()
                previous = last_local.get(key)
                ambiguous = summer is not None and winter is not None and summer > winter
                fold = int(ambiguous and previous is not None and previous >= local)
                last_local[key] = local
                raw.setdefault(key, []).append((local.replace(tzinfo=zone, fold=fold).timestamp(), litres))
    ids = _short_ids(list(raw), prefix="daiad-")
    meters = {ids[key]: sorted(points, key=lambda p: p[0]) for key, points in raw.items()}
    _count(stats, meters, skipped=skipped, read=sum(map(len, raw.values())))
    return meters


def _datetime(match: re.Match[str] | None, order: tuple[int, ...]) -> datetime | None:
    """Naive datetime from a timestamp match whose groups, taken in ``order``, are Y M D h m s; None if invalid."""
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(match.group(i + 1)) for i in order)
    try:
        return datetime(year + 2000 if year < 100 else year, month, day, hour, minute, second)
    except ValueError:
        return None


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _short_ids(keys: list[str], *, prefix: str, length: int = 8) -> dict[str, str]:
    plain = {key: key.replace("-", "").lower() for key in keys}
    longest = max((len(v) for v in plain.values()), default=length)
    while length < longest and len({v[:length] for v in plain.values()}) < len(keys):
        length += 1
    ids = {key: prefix + value[:length] for key, value in plain.items()}
    if len(set(ids.values())) < len(keys):
        raise ValueError("meter keys are not unique")
    return ids


def load_weusedto(data_dir: str | Path, *, stats: dict[str, int] | None = None) -> Meters:
    """WEUSEDTO single-occupant apartment (Naples): ``weusedto-house`` and ``weusedto-fixtures``, 15-min readings.

    Units (the README states none), with the evidence:

    * ``feed_WholeHouse.MYD.csv`` (``epoch value``, ~10 s) is the average flow in L/s since the previous
      record, from a register of 1-litre resolution: ``value * (t - t_prev)`` is a whole number of litres for
      every sane record (0.1111 = 1 L/9 s, 0.1818 = 2 L/11 s, 0.003610 = 1 L/277 s). It is neither a volume
      per sample nor a register (mostly 0, no trend); its register is the running sum of ``value * dt``.
      Despite the README (Sept-Oct 2020) it covers 2020-08-04..08-30 only, in three regimes: (1) until 08-27
      15:50 UTC every intraday record is 0 and each day's volume arrives in one record just after 00:00 UTC
      (118, 210, 196 L/day; 1136 L after a 17-day outage; 29, 37, 32 L/day); (2) 08-27 16:00 to 08-30 01:09
      the increments are corrupt (+/-1.27e9 L, alternating); (3) 08-30 01:19-11:14 UTC, valid (87 L).
      Increments < 0 or > 10 m3 are dropped as corrupt (sane ones are <= 1136 L, all 2279 corrupt ones
      >= 2e8 L) and break the series. Only stretches with intraday detail (non-zero increments in at least
      two UTC hours) become readings, so ``weusedto-house`` is ~10 hours of 2020-08-30: daily-batched days,
      flat with a midnight jump, would look like inactivity followed by a burst.
    * Fixture feeds (``Bidet``, ``Kitchenfaucet``, ``Shower``, ``Washbasin``, ``Washingmachine``: 1 s samples
      while water flows, a 0 heartbeat every ~301 s otherwise) are flows in mL/s: WEUSEDTO's own splitter
      integrates ``flow / 1000`` over seconds as "volume [l]", giving 2.7 L/min at the kitchen tap, 5.4 L/min
      in the shower, 11 L/min into the washing machine. ``feed.Toilet.csv`` and ``feed_Dishwasher30.MYD.csv``
      are events ``start volume_l end`` (12 L per flush over 360 s; 10.2 L per 30-min cycle).
    * Cross-check: over 2020-08-04..08-26 the whole-house daily totals add up to 1758 L and the fixture sum
      to 1776 L; over the valid 08-30 01:30-11:00 UTC window, 87 L against 86.3 L. Pulses/s of a 7.5 Hz per
      L/min sensor would make the flow feeds 2.2 times larger and break this. Full days of the fixture sum
      average 51-135 L/day by month, plausible for one person.

    ``weusedto-fixtures`` sums all fixture feeds into one register. This is defensible because every fixture
    of the apartment is metered (README: 7 fixtures, all monitored), so the sum is what a household meter
    would see, minus what no fixture sensor sees (a pipe leak; the "Dishwasher 50eco" feed, absent here). It
    covers 2019-03..2020-11 (344 days with readings, 217 complete; none 2019-10-29..2020-07-01), against 10
    hours for the house feed. A flow sample stands for ``flow * dt`` over the ``dt`` since the previous one
    when ``dt`` <= 5 s, else for 1 s (WEUSEDTO's ``liters()`` with idle gaps bounded); events are spread
    evenly over their duration. A reading is emitted only when the four heartbeat feeds (bidet, kitchen,
    shower, washbasin) were all reporting (records <= 30 min apart around the boundary); the washing machine
    feed exists only on the 38 days it ran and toilet/dishwasher are event logs, so their silence is no
    outage. Records dated before 2000 (one ``0`` epoch in the washbasin feed) are skipped.
    """
    folder = Path(data_dir)
    skipped = [0]
    whole = _read_columns(folder / "feed_WholeHouse.MYD.csv", skipped, nonnegative=False)
    house = _weusedto_house(whole)
    flows = {
        name: _read_columns(folder / f"feed_{name}.MYD.csv", skipped)
        for name in ("Bidet", "Kitchenfaucet", "Shower", "Washbasin", "Washingmachine")
    }
    events = [_read_columns(folder / name, skipped) for name in ("feed.Toilet.csv", "feed_Dishwasher30.MYD.csv")]
    registers = []
    for table in flows.values():
        t, q = table[:, 0], table[:, 1]
        dt = np.diff(t, prepend=-np.inf)
        width = np.where((dt > 0) & (dt <= 5), dt, 1.0)
        registers.append(_intervals_to_register(t - width, t, q / 1000 * width))
    for table in events:
        ends = np.where(table[:, 2] > table[:, 0], table[:, 2], table[:, 0] + 1)
        registers.append(_intervals_to_register(table[:, 0], ends, table[:, 1]))
    beats = [flows[name][:, 0] for name in ("Bidet", "Kitchenfaucet", "Shower", "Washbasin")]
    first, last = math.ceil(min(b[0] for b in beats) / STEP_S), math.floor(max(b[-1] for b in beats) / STEP_S)
    grid = np.arange(first, last + 1, dtype=float) * STEP_S
    live = np.logical_and.reduce([_reporting(b, grid, 1800.0) for b in beats])
    total = np.sum([np.interp(grid[live], knots, cum) for knots, cum in registers], axis=0)
    meters = {
        "weusedto-house": house,
        "weusedto-fixtures": [(float(g), float(v)) for g, v in zip(grid[live], total, strict=True)],
    }
    read = len(whole) + sum(map(len, flows.values())) + sum(map(len, events))
    _count(stats, meters, skipped=skipped[0], read=read)
    return meters


def _read_columns(path: Path, skipped: list[int], *, nonnegative: bool = True) -> np.ndarray:
    """Numeric rows (comma or space separated, optional header) as a time-sorted array; bad rows counted."""
    rows: list[list[float]] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            fields = [f for f in re.split(r"[,\s]+", line.strip()) if f]
            if not fields:
                continue
            try:
                values = [float(f) for f in fields]
            except ValueError:
                skipped[0] += number > 0  # a header line is expected, not a skipped row
                continue
            if (
                len(values) < 2
                or not all(map(math.isfinite, values))
                or values[0] < EARLIEST_EPOCH_S
                or (nonnegative and values[1] < 0)
            ):
                skipped[0] += 1
                continue
            rows.append(values)
    if not rows:
        raise ValueError(f"{path}: no data rows")
    width = min(len(r) for r in rows)
    table = np.array([r[:width] for r in rows], dtype=float)
    return table[np.argsort(table[:, 0], kind="stable")]


def _intervals_to_register(starts: np.ndarray, ends: np.ndarray, litres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots (times, cumulative litres) of volumes spread evenly over [start, end] intervals (overlaps allowed)."""
    rate = litres / (ends - starts)
    knots, where = np.unique(np.concatenate([starts, ends]), return_inverse=True)
    rate_after = np.cumsum(np.bincount(where, np.concatenate([rate, -rate]), minlength=len(knots)))
    rate_after[np.abs(rate_after) < 1e-12] = 0.0  # float residue where rates cancel out: idle, not a trickle
    cumulative = np.concatenate([[0.0], np.cumsum(rate_after[:-1] * np.diff(knots))])
    return knots, cumulative


def _reporting(times: np.ndarray, grid: np.ndarray, max_gap_s: float) -> np.ndarray:
    """True where a feed's records around the boundary are at most ``max_gap_s`` apart."""
    hi = np.searchsorted(times, grid, side="right")
    inside = (hi > 0) & (hi < len(times))
    lo, hi = np.clip(hi - 1, 0, len(times) - 1), np.clip(hi, 0, len(times) - 1)
    return (inside & (times[hi] - times[lo] <= max_gap_s)) | (times[lo] == grid)


def _weusedto_house(table: np.ndarray, max_gap_s: float = 1800.0, max_increment_l: float = 10_000.0) -> Points:
    """15-min register of the whole-house feed (L/s since the previous record); see ``load_weusedto``."""
    out: Points = []
    register = 0.0
    segment: Points = []
    hours: set[int] = set()

    def close() -> None:
        if len(hours) >= 2:
            out.extend(resample_register(segment, STEP_S))
        segment.clear()
        hours.clear()

    previous: float | None = None
    for t, flow in table[:, :2]:
        increment = flow * (t - previous) if previous is not None else 0.0
        previous = t
        if not (math.isfinite(increment) and 0 <= increment <= max_increment_l):
            close()  # corrupt record: the series breaks here
            continue
        register += increment
        if segment and t - segment[-1][0] > max_gap_s:
            close()  # an outage: this increment spans it, no intraday detail
        elif segment and increment > 0:
            hours.add(datetime.fromtimestamp(t, UTC).hour)
        segment.append((float(t), register))
    close()
    return out


def load_ciws(data_dir: str | Path, *, stats: dict[str, int] | None = None, max_gap_s: float = 60.0) -> Meters:
    """CIWS site 019 (Logan, Utah): 4-second pulse counts -> register in litres, 15-min readings, ``ciws-019``.

    Litres per pulse: the file header gives only ``Meter Size: 1"``, no resolution, and site019's LICENSE
    (BSD-3, UCHIC) says nothing on units. The vischallenge2020 readme gives 0.041619 gal/pulse for its own
    site. For site 019 the same value is supported by its ``ClusterEventsData.csv`` (volumes in gallons):
    all 381 ``FilteredVolume`` values are exact multiples of 0.041619; for 46 events ``OriginalVolume``
    equals the pulses in the event window times 0.041619 exactly; and the events add up to 1177.1 gal
    against 29015 raw pulses * 0.041619 = 1207.6 gal (97.5 %, the rest unclassified). So 0.041619 US gal
    = 0.15755 L per pulse (~940 L/day here). Timestamps (``yy-m-d H:M:S``) are taken as local wall time in
    America/Denver: use is ~0 between 00:00 and 04:00 and peaks at 06:00 and in the evening of that clock.
    vischallenge2020 is ignored: it holds classified events only, and unclassified flow such as leaks was
    left out of it, so a register built from it would miss exactly what the detectors look for.
    """
    folder = Path(data_dir)
    files = sorted({*folder.glob("*.CSV.gz"), *folder.glob("*.csv.gz")})
    if not files:
        raise FileNotFoundError(f"{folder}: no *.CSV.gz pulse file")
    zone = ZoneInfo("America/Denver")
    meters: Meters = {}
    skipped = read = 0
    for path in files:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
            info = dict(line.split(":", 1) for line in (handle.readline() for _ in range(3)) if ":" in line)
            site = info.get("Site #", path.name.split("_")[0]).strip()
            if handle.readline().strip().replace('"', "").split(",")[:3] != ["Time", "Record", "Pulses"]:
                raise ValueError(f"{path}: unexpected column header")
            times: list[float] = []
            pulses: list[int] = []
            for line in filter(str.strip, handle):
                fields = [f.strip().strip('"') for f in line.split(",")]
                match = _CIWS_TS.fullmatch(fields[0]) if len(fields) >= 3 and fields[2].isdigit() else None
                local = _datetime(match, (0, 1, 2, 3, 4, 5))
                if local is None:
                    skipped += 1
                    continue
                times.append(local.replace(tzinfo=zone).timestamp())
                pulses.append(int(fields[2]))
        read += len(times)
        order = np.argsort(times, kind="stable")
        t = np.asarray(times)[order]
        register = np.cumsum(np.asarray(pulses, dtype=float)[order]) * CIWS_LITRES_PER_PULSE
        meter_id = f"ciws-{site}"
        meters[meter_id] = sorted(
            meters.get(meter_id, [])
            + resample_register(list(zip(t.tolist(), register.tolist(), strict=True)), STEP_S, max_gap_s=max_gap_s)
        )
    _count(stats, meters, skipped=skipped, read=read)
    return meters


def _count(stats: dict[str, int] | None, meters: Meters, *, skipped: int, read: int) -> None:
    if stats is not None:
        stats.update(meters=len(meters), rows=sum(map(len, meters.values())), read=read, skipped=skipped)


def select(
    meters: Meters, *, count: int | None = None, days: float | None = None, ids: Sequence[str] | None = None
) -> Meters:
    """The given ids (or the first ``count`` by sorted id), each cut to its first ``days`` days."""
    chosen = list(ids) if ids else sorted(meters)[:count] if count is not None else sorted(meters)
    missing = [m for m in chosen if m not in meters]
    if missing:
        raise KeyError(f"unknown meter ids: {', '.join(missing)}")
    if days is None:
        return {m: list(meters[m]) for m in chosen}
    return {m: [p for p in meters[m] if p[0] < meters[m][0][0] + days * 86400] for m in chosen if meters[m]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Convert a dev data set to the replay CSV contract.")
    parser.add_argument("dataset", choices=["daiad", "weusedto", "ciws"])
    parser.add_argument("--data-dir", type=Path, help="default: ../shared/data/dev/<dataset> beside the repo")
    parser.add_argument("--out", type=Path, required=True, help="replay CSV to write")
    parser.add_argument("--meters", type=int, help="keep the first N meters (sorted ids)")
    parser.add_argument("--days", type=float, help="keep the first D days of each meter")
    parser.add_argument("--ids", help="comma-separated meter ids to keep instead of --meters")
    parser.add_argument("--tz", help="zone of the ts offsets (default: the data set's local zone; UTC for +00:00)")
    args = parser.parse_args(argv)
    default = {"daiad": "daiad-2016", "weusedto": "weusedto", "ciws": "ciws/site019-4s"}[args.dataset]
    data_dir: Path = args.data_dir or DEV_DATA / default
    if not data_dir.exists():
        print(f"error: data directory not found: {data_dir} (pass --data-dir)", file=sys.stderr)
        return 2
    stats: dict[str, int] = {}
    if args.dataset == "daiad":
        archive = data_dir if data_dir.is_file() else data_dir / "swm_trialA_clean.zip"
        meters = load_daiad(archive, stats=stats)
    elif args.dataset == "weusedto":
        meters = load_weusedto(data_dir, stats=stats)
    else:
        meters = load_ciws(data_dir, stats=stats)
    ids = [i.strip() for i in args.ids.split(",") if i.strip()] if args.ids else None
    meters = select(meters, count=args.meters, days=args.days, ids=ids)
    rows = write_replay_csv(meters, args.out, tz=args.tz or LOCAL_TZ[args.dataset])
    print(
        f"{args.dataset}: {len(meters)} meters, {rows} rows -> {args.out} (source: {stats['read']} rows parsed, "
        f"{stats['skipped']} unparsable skipped)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
