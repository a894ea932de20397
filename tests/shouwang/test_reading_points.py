"""The worker's direct decoding of readings gives the pydantic models' answer, or leaves it to them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shouwang.events import EventError, decode_reading_message
from shouwang.reading_points import ReadingPoints, _fast_points, _model_points, decode_reading_points

_ABSENT = object()


def _with(fields: dict[str, Any], **optional: Any) -> dict[str, Any]:
    return {**fields, **{name: value for name, value in optional.items() if value is not _ABSENT}}


# Each field: (right values, wrong or unusual values). A message is drawn right, then up to two
# of its fields are drawn from the wrong side, so about half the messages are valid.
FIELDS: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
    "meter_id": (
        st.sampled_from(["SZ-FT-1", "m1", "A.b_c:d-9", "a" * 64]),
        st.one_of(
            st.sampled_from(["", " SZ-1", "SZ-1 ", "-lead", "a" * 65, "M\n", "M 1", "电表1"]), st.integers(), st.none()
        ),
    ),
    "ts": (
        st.one_of(
            st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30), timezones=st.just(UTC)).map(
                lambda moment: moment.isoformat()
            ),
            st.sampled_from(
                [
                    "2026-03-01T07:40:00+08:00",
                    "2026-03-01T07:40:00Z",
                    "2026-03-01T07:40:00z",
                    " 2026-03-01T07:40:00+08:00 ",
                ]
            ),
            st.integers(min_value=946_771_200, max_value=4_000_000_000),
            st.floats(min_value=946_771_200, max_value=4_000_000_000),
        ),
        st.one_of(
            st.datetimes(
                min_value=datetime(1990, 1, 1), max_value=datetime(2110, 1, 1), timezones=st.sampled_from([UTC, None])
            ).map(lambda moment: moment.isoformat()),
            st.sampled_from(["2026-03-01", "yesterday", "", "1999-12-31T23:59:59Z", "2100-01-01T00:00:00Z"]),
            st.integers(),
            st.floats(allow_nan=False),
            st.booleans(),
            st.none(),
            st.lists(st.integers(), max_size=1),
        ),
    ),
    "register_l": (
        st.one_of(
            st.floats(min_value=0, max_value=1e9),
            st.integers(min_value=0, max_value=10**9),
            st.sampled_from([0, 0.0, 1e9, -0.0]),
        ),
        st.one_of(
            st.floats(min_value=1e9, max_value=1e12, exclude_min=True),
            st.floats(max_value=0, exclude_max=True),
            st.integers(max_value=-1),
            st.integers(min_value=10**9 + 1),
            st.sampled_from([1e9 + 1, 10**30, -1e-9, "12.5", True, None]),
        ),
    ),
    "battery_pct": (
        st.one_of(st.just(_ABSENT), st.none(), st.floats(min_value=0, max_value=100), st.integers(0, 100)),
        st.one_of(st.floats(allow_nan=False), st.integers(), st.sampled_from(["50", True, [1]])),
    ),
    "signal_dbm": (
        st.one_of(st.just(_ABSENT), st.none(), st.floats(min_value=-150, max_value=0), st.integers(-150, 0)),
        st.one_of(st.floats(allow_nan=False), st.integers(), st.sampled_from(["-90", False])),
    ),
    "flags": (
        st.one_of(
            st.just(_ABSENT),
            st.lists(
                st.sampled_from(["leak", "burst", "reverse_flow", "tamper", "low_battery", "valve_closed"]), max_size=3
            ),
        ),
        st.one_of(
            st.just("leak"),
            st.none(),
            st.lists(st.sampled_from(["leak", "LEAK", " leak", "odd", 3, None]), min_size=1, max_size=3),
        ),
    ),
    "v": (st.sampled_from([_ABSENT, 1]), st.sampled_from([2, True, 1.0, "1", None, 0])),
    "readings": (st.just(None), st.sampled_from(["empty", "extra", "missing", "not a list"])),
    "type": (st.just(None), st.sampled_from(["swapped", "alert", 1])),
    "unknown field": (st.just(_ABSENT), st.sampled_from([1.0, "x"])),
    "encoding": (st.just("utf-8"), st.sampled_from(["utf-16", "utf-32"])),
}


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    wrong = set(draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=2))) if draw(st.booleans()) else set()

    def field(name: str) -> Any:
        right, unusual = FIELDS[name]
        return draw(unusual if name in wrong else right)

    batch = draw(st.booleans())
    body = _with(
        {"meter_id": field("meter_id")},
        v=field("v"),
        battery_pct=field("battery_pct"),
        signal_dbm=field("signal_dbm"),
        flags=field("flags"),
        register=field("unknown field"),
    )
    kind, declared = ("reading_batch", "reading") if batch else ("reading", "reading_batch")
    match field("type"):
        case None:
            if draw(st.booleans()):
                body["type"] = kind
        case "swapped":
            body["type"] = declared
        case other:
            body["type"] = other
    if batch:
        size = draw(st.integers(1, 4))
        items = [{"ts": field("ts"), "register_l": field("register_l")} for _ in range(size)]
        match field("readings"):
            case "empty":
                items = []
            case "extra":
                items[-1]["note"] = "x"
            case "missing":
                del items[0][draw(st.sampled_from(["ts", "register_l"]))]
            case "not a list":
                items = items[0]  # type: ignore[assignment]
        body["readings"] = items
    else:
        body.update(ts=field("ts"), register_l=field("register_l"))
    return json.dumps(body).encode(field("encoding"))


def _answer(decode: Any, raw: bytes) -> ReadingPoints | str:
    try:
        return decode(raw)
    except EventError as exc:
        return f"refused: {exc}"


@pytest.mark.slow
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
@example(b'{"meter_id": "m1", "ts": 1e400, "register_l": 1}')
@example(b'{"meter_id": "m1", "ts": 1767225600, "register_l": 1e400}')
@example(b'{"meter_id": "m1", "ts": 1767225600, "register_l": NaN}')
@example(b'\xef\xbb\xbf{"meter_id": "m1", "ts": 1767225600, "register_l": 1}')
@example(b"[1, 2]")
@example(b'{"meter_id": "m1", "ts": 1767225600, "register_l": 1000000001}')
@example(b'{"meter_id": "m1", "readings": [{"ts": 1767225600, "register_l": -0.5}]}')
@example(b'{"meter_id": "m1", "ts": 1767225600, "register_l": 1, "battery_pct": 100.5}')
@example(b'{"meter_id": "m1", "ts": 1767225600, "register_l": 1, "signal_dbm": 0.5}')
@example(b'{"meter_id": "m1", "ts": 1767225600, "register_l": 1, "meter_id": "m2"}')
def test_the_direct_path_agrees_with_the_models(raw: bytes) -> None:
    expected = _answer(_model_points, raw)
    fast = _fast_points(raw)
    if isinstance(expected, str):
        assert fast is None, f"accepted what the models refuse ({expected})"
    elif fast is not None:
        assert fast == expected
    assert _answer(decode_reading_points, raw) == expected


@pytest.mark.parametrize(
    "body",
    [
        {"meter_id": "SZ-FT-1", "ts": "2026-03-01T07:40:00+08:00", "register_l": 1234.5},
        {
            "v": 1,
            "type": "reading",
            "meter_id": "m1",
            "ts": 1_767_225_600,
            "register_l": 7,
            "battery_pct": 80,
            "signal_dbm": -90.5,
            "flags": ["leak", "burst"],
        },
        {
            "meter_id": "m1",
            "readings": [
                {"ts": "2026-03-01T02:00:00Z", "register_l": 11.5},
                {"ts": "2026-03-01T01:00:00Z", "register_l": 10},
            ],
            "flags": [],
        },
        {
            "v": 1,
            "type": "reading_batch",
            "meter_id": "m1",
            "battery_pct": None,
            "readings": [{"ts": 1_767_225_600.5, "register_l": 0}],
        },
    ],
)
def test_plain_valid_messages_take_the_direct_path(body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    fast = _fast_points(raw)
    assert fast is not None
    assert fast == _model_points(raw)


def test_points_come_in_event_time_order_with_the_flags() -> None:
    raw = json.dumps(
        {
            "meter_id": "m1",
            "flags": ["leak"],
            "readings": [
                {"ts": "2026-03-01T02:00:00Z", "register_l": 11.5},
                {"ts": "2026-03-01T01:00:00Z", "register_l": 10},
            ],
        }
    )
    points = decode_reading_points(raw.encode())
    assert points.meter_id == "m1"
    assert points.points == [
        (datetime(2026, 3, 1, 1, tzinfo=UTC).timestamp(), 10.0),
        (datetime(2026, 3, 1, 2, tzinfo=UTC).timestamp(), 11.5),
    ]
    assert points.flags == frozenset({"leak"})
    assert points.flagged_at == datetime(2026, 3, 1, 2, tzinfo=UTC)


def test_the_flagged_point_keeps_the_time_as_sent() -> None:
    raw = json.dumps(
        {
            "meter_id": "m1",
            "flags": ["burst"],
            "readings": [
                {"ts": "2026-03-01T10:00:00+08:00", "register_l": 11.5},
                {"ts": 1_772_326_800, "register_l": 10},
            ],
        }
    )
    points = decode_reading_points(raw.encode())
    assert points.points == [(1_772_326_800.0, 10.0), (1_772_330_400.0, 11.5)]
    assert points.flagged_at is not None and points.flagged_at.isoformat() == "2026-03-01T10:00:00+08:00"
    assert points == _model_points(raw.encode())


def test_a_refused_message_has_the_models_reason() -> None:
    raw = b'{"meter_id": "m1", "ts": "2026-03-01T07:40:00", "register_l": 1}'
    with pytest.raises(EventError) as refused:
        decode_reading_points(raw)
    with pytest.raises(EventError) as by_models:
        decode_reading_message(raw)
    assert str(refused.value) == str(by_models.value)
    assert "no UTC offset" in str(refused.value)
