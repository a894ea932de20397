"""Replay (backtesting): a CSV of meter history through the very detector bank the stream runs.

Input: CSV with the header ``meter_id,ts,register_l`` (any column order). ``ts`` is ISO 8601, with
an offset or without one (then it is local time in ``tz``), or epoch seconds; ``register_l`` is the
cumulative register in litres. Rows may come in any order; each meter is sorted by time. A bad row
is counted and reported with its line number and reason, never fatal.

Output: one JSON object per alert transition (``raised`` or ``resolved``), with ``at`` and
``since`` in ISO 8601 with the household's offset. ``escalated`` transitions (the same episode
at a higher severity) are written only when asked for, so every episode is one ``raised`` line.
``check_in`` lines (the resident asked first, ``no_usage``) likewise, with the all-clear of a silence
that only ever reached a check-in: without them the output is what it was before the check tier.

``feedback`` simulates people answering: every ``no_usage`` alarm on a silence that ended by itself
within 24 h is answered ``false_alarm`` an hour after it was raised. It is applied when the silence
ends, which teaches the detector the same thing: no limit is decided for that meter in between (a
silence is judged from its start, and the shortest limit is hours long).
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any
from zoneinfo import ZoneInfo

from detectors import DetectorBank, Finding, Observation
from shouwang.events import EARLIEST_EPOCH_S, LATEST_EPOCH_S, MAX_REGISTER_L, TIMESTAMP_RANGE, alert_id_for

_PROGRESS_EVERY = 5000
COLUMNS = ("meter_id", "ts", "register_l")
# Any printable id up to 200 characters: a backtest takes the history's ids as they are.
_METER_ID = re.compile(r"^[^\x00-\x1f\x7f,]{1,200}$")


class ReplayError(Exception):
    """The input cannot be replayed at all (not CSV, wrong header); the message is one line."""


@dataclass(frozen=True, slots=True)
class BadRow:
    line: int
    reason: str


@dataclass
class ReadingsFile:
    """Readings by meter, each list (epoch seconds, register litres) in file order until sorted."""

    meters: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    bad_rows: list[BadRow] = field(default_factory=list)

    @property
    def readings(self) -> int:
        return sum(len(points) for points in self.meters.values())


def read_readings(lines: Iterable[str], tz: str) -> ReadingsFile:
    """Parse the CSV contract; bad rows are collected with their line numbers."""
    zone = ZoneInfo(tz)
    reader = csv.reader(lines)
    try:
        header = [name.strip().lstrip("\ufeff").lower() for name in next(reader)]
    except StopIteration:
        raise ReplayError("the readings file is empty (expected a header meter_id,ts,register_l)") from None
    except csv.Error as exc:
        raise ReplayError(f"not CSV: {exc}") from exc
    missing = [name for name in COLUMNS if name not in header]
    if missing:
        raise ReplayError(f"the header needs meter_id,ts,register_l; missing {','.join(missing)}")
    index = [header.index(name) for name in COLUMNS]
    width = max(index) + 1
    parsed = ReadingsFile()
    line = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            line = reader.line_num
            parsed.bad_rows.append(BadRow(line, f"not CSV: {exc}"))
            continue
        line = reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) < width:
            parsed.bad_rows.append(BadRow(line, f"expected {len(header)} columns, got {len(row)}"))
            continue
        meter_id, ts_text, register_text = (row[i].strip() for i in index)
        reason = None
        if not _METER_ID.match(meter_id):
            reason = f"meter_id {meter_id[:40]!r} must be 1–200 printable characters"
        else:
            ts, reason = _parse_ts(ts_text, zone)
            register, register_reason = _parse_register(register_text)
            reason = reason or register_reason
        if reason:
            parsed.bad_rows.append(BadRow(line, reason))
            continue
        parsed.meters.setdefault(meter_id, []).append((ts, register))
    for points in parsed.meters.values():
        points.sort(key=lambda point: point[0])  # stable: equal timestamps keep file order
    return parsed


def _parse_ts(text: str, zone: ZoneInfo) -> tuple[float, str | None]:
    if not text:
        return 0.0, "ts is empty"
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds) or not EARLIEST_EPOCH_S <= seconds < LATEST_EPOCH_S:
            return 0.0, f"ts {text[:40]!r} is not epoch seconds in {TIMESTAMP_RANGE}"
        return seconds, None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return 0.0, f"ts {text[:40]!r} is not ISO 8601 or epoch seconds"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    if not EARLIEST_EPOCH_S <= moment.timestamp() < LATEST_EPOCH_S:
        return 0.0, f"ts {text[:40]!r} is outside {TIMESTAMP_RANGE}"
    return moment.timestamp(), None


def _parse_register(text: str) -> tuple[float, str | None]:
    try:
        value = float(text)
    except ValueError:
        return 0.0, f"register_l {text[:40]!r} is not a number"
    if not math.isfinite(value) or not 0 <= value <= MAX_REGISTER_L:
        return 0.0, f"register_l {text[:40]!r} must be a finite number of litres from 0 to 1e9"
    return value, None


def replay(
    readings: ReadingsFile,
    bank_factory: Callable[[], DetectorBank],
    *,
    escalations: bool = False,
    progress: Callable[[int], None] | None = None,
    jobs: int = 1,
    check_ins: bool = False,
    feedback: bool = False,
) -> Iterator[dict[str, Any]]:
    """Every meter through a fresh bank, in event-time order; yields one JSON-ready dict per transition.

    With ``jobs`` > 1 meters are replayed in that many processes (each meter on its own, so the
    result is the same); the output keeps the meters' order. ``bank_factory`` must then pickle.
    """
    meters = list(readings.meters.items())
    if jobs <= 1 or len(meters) < 2:
        for meter_id, points in meters:
            yield from replay_meter(
                meter_id,
                points,
                bank_factory,
                escalations=escalations,
                progress=progress,
                check_ins=check_ins,
                feedback=feedback,
            )
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [
            pool.submit(_replay_meter_list, meter_id, points, bank_factory, escalations, check_ins, feedback)
            for meter_id, points in meters
        ]
        for (_, points), future in zip(meters, futures, strict=True):
            yield from future.result()
            if progress is not None:
                progress(len(points))


def replay_meter(
    meter_id: str,
    points: list[tuple[float, float]],
    bank_factory: Callable[[], DetectorBank],
    *,
    escalations: bool = False,
    progress: Callable[[int], None] | None = None,
    check_ins: bool = False,
    feedback: bool = False,
) -> Iterator[dict[str, Any]]:
    """One meter's readings through a fresh bank."""
    bank = bank_factory()
    alarmed: dict[tuple[str, datetime], float] = {}  # (kind, since) of open alarms → silence_h when raised
    for position, (ts, register) in enumerate(points, 1):
        if progress is not None and position % _PROGRESS_EVERY == 0:
            progress(_PROGRESS_EVERY)
        observation = Observation(meter_id, datetime.fromtimestamp(ts, UTC), register)
        for finding in bank.update(observation):
            episode = (finding.kind, finding.since)
            if finding.transition == "raised":
                alarmed[episode] = float(finding.facts.get("silence_h", 0.0))
            elif finding.transition == "resolved":
                raised_silence_h = alarmed.pop(episode, None)
                if raised_silence_h is None and not check_ins and finding.kind == "no_usage":
                    continue  # the all-clear of a silence that only reached a check-in
                if (
                    feedback
                    and raised_silence_h is not None
                    and finding.kind == "no_usage"
                    and (finding.at - finding.since).total_seconds() <= 24 * 3600.0
                ):
                    bank.learn_feedback(finding.kind, finding.since.timestamp(), raised_silence_h)
            if (finding.transition == "escalated" and not escalations) or (
                finding.transition == "check_in" and not check_ins
            ):
                continue
            yield transition_record(meter_id, finding)
    if progress is not None:
        progress(len(points) % _PROGRESS_EVERY)


def _replay_meter_list(
    meter_id: str,
    points: list[tuple[float, float]],
    bank_factory: Callable[[], DetectorBank],
    escalations: bool,
    check_ins: bool,
    feedback: bool,
) -> list[dict[str, Any]]:
    return list(
        replay_meter(meter_id, points, bank_factory, escalations=escalations, check_ins=check_ins, feedback=feedback)
    )


def transition_record(meter_id: str, finding: Finding) -> dict[str, Any]:
    """One output line: the alert event the stream would emit (same id), flattened for reading.

    Built from the finding directly rather than through the Kafka schema, so a history whose meter
    ids the stream would refuse (spaces, 65 characters…) can still be backtested.
    """
    facts = {key: value for key, value in finding.facts.items() if key != "usage_hourly_l"}
    return {
        "event": finding.transition,
        "meter_id": meter_id,
        "kind": finding.kind,
        "severity": finding.severity,
        "at": finding.at.isoformat(),
        "since": finding.since.isoformat(),
        "explanation": finding.explanation_zh,
        "explanation_en": finding.explanation_en,
        "alert_id": alert_id_for(meter_id, finding.kind, finding.since),
        "facts": facts,
    }


def write_jsonl(records: Iterable[dict[str, Any]], out: IO[str]) -> int:
    count = 0
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count
