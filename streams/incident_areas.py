"""The pure core of the area agent: a report's area count in, area hotspot alerts out, the changed
states of the area watch (one per cell, one for the areas raised) to store.

The incidents agent passes on every report of a cell the neighbour registry knows (``AreaCount``,
on the incident-areas topic, one key): an area's cells lie in different partitions of the incidents
topic, so one watch must see them all. The alert keeps a hotspot alert's shape (kind ``hotspot``,
the same facts) about the area's centre cell, with the area's cells in the fact ``cells``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detectors.incidents.area import AreaFinding, AreaWatch, GridNeighbours, NeighboursError
from shouwang.events import AlertEvent, AlertKind, EventError, Explanation, Severity, alert_id_for, decode_area_count
from streams.incidents import IncidentOutcome
from streams.processing import SourceRecord, dead_letter_for

log = logging.getLogger(__name__)


@dataclass(slots=True)
class AreaOutcome(IncidentOutcome):
    """An incident outcome whose new states are several keys' (``states``: key → state)."""

    states: dict[str, dict[str, Any]] = field(default_factory=dict)


def load_neighbours(path: Path) -> GridNeighbours:
    """The neighbour registry in a JSON file (``SHOUWANG_GRID_NEIGHBOURS``): ``NeighboursError``, one line
    naming the setting, the file and the bad entry, if it cannot be used."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise NeighboursError(f"SHOUWANG_GRID_NEIGHBOURS: {path}: cannot read it ({exc})") from None
    try:
        return GridNeighbours.from_json(text)
    except NeighboursError as exc:
        raise NeighboursError(f"SHOUWANG_GRID_NEIGHBOURS: {path}: {exc}") from None


def process_area_count(
    record: SourceRecord, neighbours: GridNeighbours, load_state: Callable[[str], dict[str, Any] | None]
) -> AreaOutcome:
    """``load_state(key)`` returns the area watch's stored state of a key (a cell, or the areas raised)."""
    try:
        if record.value is None:
            raise EventError("empty message (null value)")
        count = decode_area_count(record.value)
        watch = AreaWatch(neighbours, load_state, _unreadable)
        findings = watch.update(
            count.grid_cell, count.category, count.ts, hotspots=count.hotspots, report_id=count.incident_id
        )
        return AreaOutcome(alerts=[area_alert(f) for f in findings], states=watch.states(), grid_cell=count.grid_cell)
    except (EventError, ValueError) as exc:
        return AreaOutcome(dead_letter=dead_letter_for(record, str(exc).splitlines()[0][:300], "invalid"))
    except Exception as exc:  # one bad record must never stop the worker
        log.exception("area count at %s[%d]@%d failed", record.topic, record.partition, record.offset)
        return AreaOutcome(dead_letter=dead_letter_for(record, f"internal error: {type(exc).__name__}", "internal"))


def _unreadable(key: str, error: Exception) -> None:
    log.warning("area state of %s not readable (%s): starting it afresh", key, error)


def area_alert(finding: AreaFinding) -> AlertEvent:
    """An area hotspot as a hotspot alert about the area's centre cell; its cells in the fact ``cells``."""
    area = finding.area
    return AlertEvent(
        alert_id=alert_id_for(f"area:{area.centre}:{finding.category}", AlertKind.HOTSPOT, finding.since),
        event="raised" if finding.transition == "raised" else "resolved",
        grid_cell=area.centre,
        kind=AlertKind.HOTSPOT,
        severity=Severity.MEDIUM,
        since=finding.since,
        at=finding.at,
        explanation=Explanation(zh=finding.explanation_zh[:1000], en=finding.explanation_en[:1000]),
        facts={
            "category": finding.category,
            "count": finding.count,
            "baseline_per_week": round(finding.baseline_per_week, 3),
            "p_value": finding.p_value,
            "cells": ",".join(area.cells),  # facts are scalars: the cells comma-separated
        },
    )
