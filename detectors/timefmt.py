"""Event-time helpers shared by the detectors: epoch seconds ↔ local clock, plain-words times."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

_ZONES: dict[float, timezone] = {}


def local_datetime(t: float, utc_offset: float) -> datetime:
    """Epoch seconds as an aware datetime in the household's offset."""
    zone = _ZONES.get(utc_offset)
    if zone is None:
        zone = _ZONES.setdefault(utc_offset, timezone(timedelta(seconds=utc_offset)))
    return datetime.fromtimestamp(t, zone)


def local_hour(t: float, utc_offset: float) -> float:
    """Hour of the local day, 0 ≤ h < 24, as a float."""
    return ((t + utc_offset) % 86400.0) / 3600.0


def local_day(t: float, utc_offset: float) -> int:
    """Days since the epoch in local time (a new day starts at local midnight)."""
    return int((t + utc_offset) // 86400.0)


def clock(t: float, utc_offset: float) -> str:
    return local_datetime(t, utc_offset).strftime("%H:%M")


def clock_of_minute(minute: float) -> str:
    whole = round(minute) % 1440
    return f"{whole // 60:02d}:{whole % 60:02d}"


def when_zh(t: float, now: float, utc_offset: float) -> str:
    """``今天 07:40``, ``昨天 21:15`` or ``3月2日 21:15``, relative to ``now``."""
    days = local_day(now, utc_offset) - local_day(t, utc_offset)
    moment = local_datetime(t, utc_offset)
    prefix = {0: "今天", 1: "昨天", 2: "前天"}.get(days, f"{moment.month}月{moment.day}日")
    return f"{prefix} {moment:%H:%M}"


def when_en(t: float, now: float, utc_offset: float) -> str:
    """``07:40 today``, ``21:15 yesterday`` or ``21:15 on 2 Mar``."""
    days = local_day(now, utc_offset) - local_day(t, utc_offset)
    moment = local_datetime(t, utc_offset)
    suffix = {0: "today", 1: "yesterday"}.get(days, f"on {moment.day} {moment:%b}")
    return f"{moment:%H:%M} {suffix}"


def duration_zh(seconds: float) -> str:
    minutes = round(seconds / 60.0)
    hours, minutes = divmod(minutes, 60)
    if hours and minutes:
        return f"{hours} 小时 {minutes} 分钟"
    return f"{hours} 小时" if hours else f"{minutes} 分钟"


def duration_en(seconds: float) -> str:
    minutes = round(seconds / 60.0)
    hours, minutes = divmod(minutes, 60)
    if hours and minutes:
        return f"{hours} h {minutes} min"
    return f"{hours} h" if hours else f"{minutes} min"
