"""The readings topic's messages reduced to what the detectors need: a meter, its points, its flags.

The worker decodes every record on the hot path, and the pydantic models of ``shouwang.events``
cost more per batch than the detectors do: a Python validator per timestamp, and a model object
per value. ``decode_reading_points`` first tries a direct check of the common, valid shapes, using
the schema's own timestamp rules. Anything it is not sure of (an unusual type, an extra field,
any error) goes to the pydantic models, which remain the one definition of the schema and give
the reason a message is refused. A property test holds the two to the same answers.

Points carry their time as epoch seconds, the detectors' event time: a whole-second epoch
timestamp (what meters send) is checked and kept as it is, without a datetime made and undone
per reading. The time of the flagged (last) point is kept as parsed, with its own UTC offset.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shouwang.events import (
    EARLIEST_EPOCH_S,
    LATEST_EPOCH_S,
    MAX_BATCH_READINGS,
    MAX_REGISTER_L,
    METER_ID_PATTERN,
    SCHEMA_VERSION,
    EventError,
    MeterFlag,
    ReadingBatch,
    check_timestamp_range,
    decode_reading_message,
    load_json,
    parse_timestamp,
)

_METER_ID = re.compile(METER_ID_PATTERN.removeprefix("^").removesuffix("$"))
_FLAGS = frozenset(flag.value for flag in MeterFlag)
_COMMON = frozenset({"v", "type", "meter_id", "battery_pct", "signal_dbm", "flags"})
_READING_FIELDS = _COMMON | {"ts", "register_l"}
_BATCH_FIELDS = _COMMON | {"readings"}
_VALUE_FIELDS = frozenset({"ts", "register_l"})
_NO_FLAGS: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ReadingPoints:
    """One record of the readings topic: its meter, its (time, register litres) points in
    event-time order, and the status flags the meter sent with the last of them."""

    meter_id: str
    points: list[tuple[float, float]]  # (epoch seconds, register litres)
    flags: frozenset[str]
    flagged_at: datetime | None = None  # the last point's time as sent (its offset kept), when flags came


def decode_reading_points(raw: bytes) -> ReadingPoints:
    """Bytes from the readings topic → its points, or ``EventError`` with the reason."""
    fast = _fast_points(raw)
    return fast if fast is not None else _model_points(raw)


def _model_points(raw: bytes) -> ReadingPoints:
    """The points by way of the pydantic models: the schema's definition, and its reasons."""
    message = decode_reading_message(raw)
    items = sorted(message.readings, key=_by_time) if isinstance(message, ReadingBatch) else [message]
    flags = frozenset(flag.value for flag in message.flags)
    return ReadingPoints(
        message.meter_id,
        [(item.ts.timestamp(), item.register_l) for item in items],
        flags,
        items[-1].ts if flags else None,
    )


def _by_time(item: Any) -> datetime:
    return item.ts


def _fast_points(raw: bytes) -> ReadingPoints | None:
    """The points of a plainly valid message; None for anything else (the models then decide)."""
    try:
        data = load_json(raw)
    except EventError:  # too large, not UTF-8, not JSON, or NaN/Infinity: the models give the reason
        return None
    if type(data) is not dict:
        return None
    kind = data.get("type", "reading_batch" if "readings" in data else "reading")
    if kind == "reading_batch":
        if not data.keys() <= _BATCH_FIELDS:
            return None
        values = data.get("readings")
        if type(values) is not list or not 1 <= len(values) <= MAX_BATCH_READINGS:
            return None
        points = []
        for value in values:
            if type(value) is not dict or value.keys() != _VALUE_FIELDS:
                return None
            point = _point(value["ts"], value["register_l"])
            if point is None:
                return None
            points.append(point)
        points.sort(key=_first)
    elif kind == "reading":
        if not data.keys() <= _READING_FIELDS or "ts" not in data or "register_l" not in data:
            return None
        point = _point(data["ts"], data["register_l"])
        if point is None:
            return None
        points, values = [point], [data]
    else:
        return None
    meter_id = data.get("meter_id")
    version = data.get("v", SCHEMA_VERSION)
    if (
        type(meter_id) is not str
        or _METER_ID.fullmatch(meter_id) is None
        or type(version) is not int
        or version != SCHEMA_VERSION
        or not _in_range(data.get("battery_pct"), 0, 100)
        or not _in_range(data.get("signal_dbm"), -150, 0)
    ):
        return None
    flags = data.get("flags", [])  # null is not a list: the models decide
    if type(flags) is not list or any(type(flag) is not str or flag not in _FLAGS for flag in flags):
        return None
    if not flags:
        return ReadingPoints(meter_id, points, _NO_FLAGS)
    return ReadingPoints(meter_id, points, frozenset(flags), parse_timestamp(_last_ts(values, points[-1][0])))


def _point(ts: Any, register: Any) -> tuple[float, float] | None:
    if type(register) is not float and type(register) is not int:
        return None
    if not 0 <= register <= MAX_REGISTER_L or not math.isfinite(register):
        return None
    if type(ts) is int or (type(ts) is float and ts.is_integer()):
        # Whole epoch seconds: exact as a float, and the schema's range is two bounds on it.
        return (float(ts), float(register)) if EARLIEST_EPOCH_S <= ts < LATEST_EPOCH_S else None
    if type(ts) is not str and type(ts) is not float:
        return None
    try:
        return check_timestamp_range(parse_timestamp(ts)).timestamp(), float(register)
    except ValueError:
        return None


def _last_ts(values: list[dict[str, Any]], t: float) -> Any:
    """The raw time of the (last, sorted) point at epoch second ``t``: the last of the values with it."""
    for value in reversed(values):
        point = _point(value["ts"], 0)
        if point is not None and point[0] == t:
            return value["ts"]
    raise AssertionError("a sorted point comes from the values")


def _first(point: tuple[float, float]) -> float:
    return point[0]


def _in_range(value: Any, low: float, high: float) -> bool:
    """An optional number field: absent, null, or a finite number within [low, high]."""
    if value is None:
        return True
    return (type(value) is float or type(value) is int) and low <= value <= high


__all__ = ["EventError", "ReadingPoints", "decode_reading_points"]
