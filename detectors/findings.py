"""Building findings from epoch seconds: one helper so every detector words time alike."""

from __future__ import annotations

from detectors.base import Facts, Finding, Transition
from detectors.timefmt import local_datetime


def finding(
    kind: str,
    transition: Transition,
    severity: str,
    *,
    since: float,
    at: float,
    utc_offset: float,
    zh: str,
    en: str,
    facts: Facts | None = None,
) -> Finding:
    return Finding(
        transition=transition,
        kind=kind,
        severity=severity,
        since=local_datetime(since, utc_offset),
        at=local_datetime(at, utc_offset),
        explanation_zh=zh,
        explanation_en=en,
        facts=facts or {},
    )
