"""The one home for event schemas: versioned JSON on Kafka and over HTTP.

Every message carries ``"v": 1`` (schema version; missing means 1) and, where a topic holds
more than one shape, a ``"type"``. Decoding never raises anything but ``EventError``, whose
message is the precise reason a dead letter or an HTTP 4xx reports.

Timestamps are ISO 8601 with a UTC offset, or epoch seconds; a timestamp without an offset
is rejected (its meaning would depend on where it was read).
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

SCHEMA_VERSION = 1
MAX_MESSAGE_BYTES = 1_000_000
MAX_BATCH_READINGS = 2_000
# A household water register in litres: 10^9 L is a million cubic metres, far past any meter.
MAX_REGISTER_L = 1e9
# Readings' times must lie in [EARLIEST_TIMESTAMP, LATEST_TIMESTAMP): the one home of these bounds
# (the API, the worker's decoders and the replay's CSV reader all check against them).
EARLIEST_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_TIMESTAMP = datetime(2100, 1, 1, tzinfo=UTC)
EARLIEST_EPOCH_S = EARLIEST_TIMESTAMP.timestamp()
LATEST_EPOCH_S = LATEST_TIMESTAMP.timestamp()
TIMESTAMP_RANGE = f"{EARLIEST_TIMESTAMP.year}–{LATEST_TIMESTAMP.year - 1}"  # "2000–2099", for messages


_Event = TypeVar("_Event", bound=BaseModel)


class EventError(ValueError):
    """A message that cannot be accepted; ``str(error)`` is the reason, one line."""


def parse_timestamp(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("timestamp must be ISO 8601 or epoch seconds, not a boolean")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError("timestamp must be a finite number of epoch seconds")
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError(f"epoch seconds {value} out of range") from exc
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"{value[:40]!r} is not an ISO 8601 timestamp") from exc
        if parsed.tzinfo is None:
            raise ValueError(f"timestamp {value[:40]!r} has no UTC offset")
        return parsed
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("timestamp has no UTC offset")
        return value
    raise ValueError("timestamp must be ISO 8601 with an offset, or epoch seconds")


def check_timestamp_range(value: datetime) -> datetime:
    if not EARLIEST_TIMESTAMP <= value < LATEST_TIMESTAMP:
        raise ValueError(f"timestamp {value.isoformat()} is outside {TIMESTAMP_RANGE}")
    return value


Timestamp = Annotated[datetime, BeforeValidator(parse_timestamp), AfterValidator(check_timestamp_range)]
"""An aware datetime; accepts ISO 8601 with an offset or epoch seconds."""

METER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
MeterId = Annotated[str, StringConstraints(pattern=METER_ID_PATTERN)]
"""1–64 characters: letters, digits and ``. _ : -``, starting with a letter or digit."""

GridCell = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")]
"""A grid cell code such as ``FT-12-3``: 1–32 letters, digits and ``. _ -``."""


def _finite_register(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("register_l must be a finite number")
    return value


RegisterLitres = Annotated[
    float,
    Field(ge=0, le=MAX_REGISTER_L, strict=False),
    AfterValidator(_finite_register),
]


class MeterFlag(StrEnum):
    """Status flags that smart meters report beside the register."""

    LEAK = "leak"  # the meter's own leak alarm (continuous flow)
    BURST = "burst"  # the meter's own burst / high-flow alarm
    REVERSE_FLOW = "reverse_flow"
    TAMPER = "tamper"  # magnetic or mechanical tampering
    LOW_BATTERY = "low_battery"
    VALVE_CLOSED = "valve_closed"


class _Strict(BaseModel):
    # Unknown fields are errors: a typo such as "register" instead of "register_l" must not
    # silently turn into a reading without a value.
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class IntervalValue(_Strict):
    """One interval value inside a batch upload."""

    ts: Timestamp
    register_l: RegisterLitres


class MeterReading(_Strict):
    """A cumulative-register reading of one water meter."""

    v: Literal[1] = 1
    type: Literal["reading"] = "reading"
    meter_id: MeterId
    ts: Timestamp
    register_l: RegisterLitres
    battery_pct: float | None = Field(default=None, ge=0, le=100)
    signal_dbm: float | None = Field(default=None, ge=-150, le=0)
    flags: tuple[MeterFlag, ...] = ()


class ReadingBatch(_Strict):
    """Several interval readings of one meter in one upload (how NB-IoT meters report)."""

    v: Literal[1] = 1
    type: Literal["reading_batch"] = "reading_batch"
    meter_id: MeterId
    readings: tuple[IntervalValue, ...] = Field(min_length=1, max_length=MAX_BATCH_READINGS)
    battery_pct: float | None = Field(default=None, ge=0, le=100)
    signal_dbm: float | None = Field(default=None, ge=-150, le=0)
    flags: tuple[MeterFlag, ...] = ()

    def split(self) -> list[MeterReading]:
        """One ``MeterReading`` per interval value, in event-time order; status on the last."""
        ordered = sorted(self.readings, key=lambda item: item.ts)
        last = len(ordered) - 1
        return [
            MeterReading(
                meter_id=self.meter_id,
                ts=item.ts,
                register_l=item.register_l,
                battery_pct=self.battery_pct if index == last else None,
                signal_dbm=self.signal_dbm if index == last else None,
                flags=self.flags if index == last else (),
            )
            for index, item in enumerate(ordered)
        ]


class IncidentReport(_Strict):
    """A resident's snap-and-report (随手拍) incident report."""

    v: Literal[1] = 1
    type: Literal["incident"] = "incident"
    incident_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,64}$")]
    text: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    grid_cell: GridCell
    ts: Timestamp
    reporter: Annotated[str, StringConstraints(max_length=100)] | None = None
    photo_url: Annotated[str, StringConstraints(pattern=r"^https?://\S{1,2000}$")] | None = None


class AreaCount(_Strict):
    """One classified report of a grid cell that has neighbours, on the incident-areas topic (one key, so one
    area watch sees every cell): counted towards the areas around the cell. ``hotspots``: the categories the
    cell is a hotspot of on its own now (an area hotspot of those would only repeat the cell's)."""

    v: Literal[1] = 1
    type: Literal["area_count"] = "area_count"
    incident_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,64}$")]  # the report's
    grid_cell: GridCell
    category: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}$")]
    ts: Timestamp
    hotspots: tuple[Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}$")], ...] = Field(
        default=(), max_length=32
    )


class AlertKind(StrEnum):
    NO_USAGE = "no_usage"
    CONTINUOUS_FLOW = "continuous_flow"
    SPIKE = "spike"
    METER_OFFLINE = "meter_offline"
    DATA_QUALITY = "data_quality"
    ROUTINE_CHANGE = "routine_change"
    INCIDENT = "incident"
    HOTSPOT = "hotspot"


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Explanation(_Strict):
    """The same facts in plain words, in Simplified Chinese (default) and English."""

    zh: Annotated[str, StringConstraints(min_length=1, max_length=1000)]
    en: Annotated[str, StringConstraints(min_length=1, max_length=1000)]


class AlertEvent(_Strict):
    """A detector's finding, raised or resolved, on the alerts topic (keyed by meter id)."""

    v: Literal[1] = 1
    type: Literal["alert"] = "alert"
    alert_id: Annotated[str, StringConstraints(pattern=r"^al_[0-9a-f]{24}$")]
    # escalated: the detector raised the severity; check_in: ask the resident first (no_usage), before raised
    event: Literal["check_in", "raised", "escalated", "resolved"]
    meter_id: MeterId | None = None
    grid_cell: GridCell | None = None
    kind: AlertKind
    severity: Severity
    since: Timestamp  # when the condition began (event time)
    at: Timestamp  # the event time at which this transition was decided
    explanation: Explanation
    facts: dict[str, float | int | str | bool] = Field(default_factory=dict)


def alert_id_for(subject: str, kind: AlertKind | str, since: datetime) -> str:
    """A stable id for one episode: the same (subject, kind, start) always gives the same id,
    so an event processed twice after a crash or a rebalance is recognisably the same alert."""
    start = since.astimezone(UTC).isoformat(timespec="seconds")
    digest = hashlib.sha256(f"{subject}|{kind}|{start}".encode()).hexdigest()
    return f"al_{digest[:24]}"


ClockTime = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
"""A local time of day, ``HH:MM`` (24-hour clock)."""

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _calendar_day(value: str) -> str:
    try:
        date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a calendar day (YYYY-MM-DD)") from exc
    return value


def minute_of_day(clock: str) -> int:
    """``"07:30"`` → 450."""
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


class Outing(_Strict):
    """A regular time away from home, e.g. the morning market 08:00–11:00 on weekdays."""

    days: tuple[Weekday, ...] = Field(min_length=1, max_length=7)
    start: ClockTime
    end: ClockTime

    def weekday_mask(self) -> int:
        """Monday = bit 0 … Sunday = bit 6."""
        return sum(1 << WEEKDAYS.index(day) for day in set(self.days))


class RoutineHints(_Strict):
    """What enrolment knows of an elder's routine, for a new household's detector to start from."""

    wake_up: ClockTime | None = None  # the usual getting-up time
    outings: tuple[Outing, ...] = Field(default=(), max_length=10)


class OutcomeFeedback(_Strict):
    """A person's verdict on an alarm, on the feedback topic (keyed by meter id): the detector learns
    that the silence it raised on was normal for that household (``false_alarm``, ``resident_fine``)."""

    v: Literal[1] = 1
    type: Literal["feedback"] = "feedback"
    alert_id: Annotated[str, StringConstraints(pattern=r"^al_[0-9a-f]{24}$")]
    meter_id: MeterId
    kind: AlertKind
    since: Timestamp
    silence_h: float = Field(gt=0, le=24 * 31)
    outcome: Literal["false_alarm", "resident_fine"]
    at: Timestamp  # when the person answered


class MeterHints(_Strict):
    """Routine hints for one meter's detector, on the feedback topic (keyed by meter id)."""

    v: Literal[1] = 1
    type: Literal["routine_hints"] = "routine_hints"
    meter_id: MeterId
    hints: RoutineHints


LocalDay = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"), AfterValidator(_calendar_day)]
"""A calendar day in the household's local time, ``YYYY-MM-DD``."""


class DailySummary(_Strict):
    """One meter's local day, on the daily topic (keyed by meter id): sent when the morning's first water use
    is seen (``complete`` false) and again when the day is over (``complete`` true). The router turns it into
    the family's all-is-well (平安) message; a later summary of the same day replaces an earlier one."""

    v: Literal[1] = 1
    type: Literal["daily_summary"] = "daily_summary"
    meter_id: MeterId
    day: LocalDay
    first_use_at: Timestamp | None = None  # with the household's offset; None: no morning use seen
    litres: float = Field(ge=0, le=MAX_REGISTER_L, allow_inf_nan=False)
    hours_with_use: int = Field(ge=0, le=24)
    complete: bool


class ConsentChange(_Strict):
    """The household of this meter withdrew its consent (the worker drops its readings and deletes the
    meter's learned state) or gave it again (the worker starts afresh), on the feedback topic."""

    v: Literal[1] = 1
    type: Literal["consent"] = "consent"
    meter_id: MeterId
    withdrawn: bool
    at: Timestamp


class MeterErased(_Strict):
    """The household of this meter was erased on request, on the feedback topic: the worker deletes the meter's
    learned state for good (a marker replaces it) and refuses its readings from then on."""

    v: Literal[1] = 1
    type: Literal["erase"] = "erase"
    meter_id: MeterId
    at: Timestamp


FeedbackMessage = Annotated[OutcomeFeedback | MeterHints | ConsentChange | MeterErased, Field(discriminator="type")]
_FEEDBACK_MESSAGE: TypeAdapter[OutcomeFeedback | MeterHints | ConsentChange | MeterErased] = TypeAdapter(
    FeedbackMessage
)

ReadingMessage = Annotated[MeterReading | ReadingBatch, Field(discriminator="type")]
_READING_MESSAGE: TypeAdapter[MeterReading | ReadingBatch] = TypeAdapter(ReadingMessage)


def load_json(raw: bytes) -> Any:
    """A message's JSON within the size limit, UTF-8 only, no NaN or Infinity; else ``EventError``."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise EventError(f"message is {len(raw)} bytes; the limit is {MAX_MESSAGE_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EventError(f"not UTF-8 (byte {exc.start})") from exc
    try:
        # parse_constant refuses NaN/Infinity, which the JSON standard does not allow.
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise EventError(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc


def _refuse_constant(name: str) -> Any:
    raise EventError(f"not JSON: {name} is not a JSON number")


def _check_envelope(data: Any, default_type: str | None) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise EventError(f"expected a JSON object, got {type(data).__name__}")
    version = data.get("v", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise EventError(f"unsupported schema version v={version!r}; this service reads v=1")
    if "type" not in data and default_type is not None:
        data = {**data, "type": default_type}
    return data


_PATTERN_HINTS = {
    "meter_id": "must be 1–64 letters, digits or . _ : - (starting with a letter or digit)",
    "grid_cell": "must be 1–32 letters, digits or . _ - (starting with a letter or digit)",
    "alert_id": "must look like al_ followed by 24 hex digits",
    "incident_id": "must be 1–64 letters, digits or . _ : -",
    "photo_url": "must be an http(s) URL without spaces",
}


# A union's tag appears in pydantic's error locations; the reader knows the type already.
_TYPE_TAGS = frozenset({"reading", "reading_batch", "feedback", "routine_hints", "consent", "erase"})


def describe_validation_error(error: ValidationError) -> str:
    """The first few problems of a pydantic error as one line: ``field: what is wrong``."""
    parts = []
    for item in error.errors()[:3]:
        where = ".".join(str(part) for part in item["loc"] if part not in _TYPE_TAGS)
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        elif item["type"] == "string_pattern_mismatch":
            message = _PATTERN_HINTS.get(str(item["loc"][-1]), message)
        parts.append(f"{where or 'message'}: {message}")
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def validate_reading_message(data: Any) -> MeterReading | ReadingBatch:
    """A parsed reading or batch (``type`` optional: a ``readings`` list means a batch)."""
    if isinstance(data, dict) and "type" not in data:
        default_type = "reading_batch" if "readings" in data else "reading"
    else:
        default_type = None
    data = _check_envelope(data, default_type)
    try:
        return _READING_MESSAGE.validate_python(data)
    except ValidationError as exc:
        raise EventError(describe_validation_error(exc)) from exc


def decode_reading_message(raw: bytes) -> MeterReading | ReadingBatch:
    """Bytes from the readings topic → a reading or a batch, or ``EventError`` with the reason."""
    return validate_reading_message(load_json(raw))


def _decode(raw: bytes, model: type[_Event], default_type: str) -> _Event:
    data = _check_envelope(load_json(raw), default_type)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise EventError(describe_validation_error(exc)) from exc


def decode_incident(raw: bytes) -> IncidentReport:
    """Bytes from the incidents topic → a report, or ``EventError`` with the reason."""
    return _decode(raw, IncidentReport, "incident")


def decode_area_count(raw: bytes) -> AreaCount:
    """Bytes from the incident-areas topic → a report's area count, or ``EventError`` with the reason."""
    return _decode(raw, AreaCount, "area_count")


def decode_alert(raw: bytes) -> AlertEvent:
    """Bytes from the alerts topic → an alert event, or ``EventError`` with the reason."""
    return _decode(raw, AlertEvent, "alert")


def decode_feedback(raw: bytes) -> OutcomeFeedback | MeterHints | ConsentChange | MeterErased:
    """Bytes from the feedback topic → an outcome, routine hints, a consent change or an erasure, or
    ``EventError`` with the reason."""
    data = _check_envelope(load_json(raw), None)
    if "type" not in data:
        raise EventError("type: required (feedback, routine_hints, consent or erase)")
    try:
        return _FEEDBACK_MESSAGE.validate_python(data)
    except ValidationError as exc:
        raise EventError(describe_validation_error(exc)) from exc


def decode_daily_summary(raw: bytes) -> DailySummary:
    """Bytes from the daily topic → a meter's day summary, or ``EventError`` with the reason."""
    return _decode(raw, DailySummary, "daily_summary")


def encode(event: BaseModel) -> bytes:
    """Compact JSON bytes for Kafka; timestamps as ISO 8601 with offset."""
    return event.model_dump_json(exclude_none=True).encode()
