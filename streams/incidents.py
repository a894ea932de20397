"""The pure core of the incidents agent: a report in, alert events out, per-cell state kept.

Each report is classified (category, urgency, explanation), merged with similar reports of the
same cell (one incident with a report count, not N alerts), and counted towards its cell's
hotspot detector. The state of a grid cell is a JSON-able dict, stored by the agent in a Faust
table keyed by grid cell (the incidents topic is keyed by grid cell too). A report of a cell the
neighbour registry knows is also passed on to the area watch (``area``: an ``AreaCount`` for the
incident-areas topic, streams/incident_areas.py), since an area's cells lie in different partitions.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from detectors.incidents import HotspotDetector, IncidentMerger, classify
from detectors.incidents.area import GridNeighbours
from detectors.incidents.categories import SEVERITY_OF_URGENCY
from detectors.incidents.hotspot import HotspotFinding
from detectors.incidents.text import has_content
from shouwang.deadletter import DeadLetter
from shouwang.events import (
    AlertEvent,
    AlertKind,
    AreaCount,
    EventError,
    Explanation,
    IncidentReport,
    Severity,
    alert_id_for,
    decode_incident,
)
from streams.processing import SourceRecord, dead_letter_for

log = logging.getLogger(__name__)
_MAX_REPORTERS = 200  # per incident; more says nothing new for a ranking


@dataclass(slots=True)
class IncidentOutcome:
    alerts: list[AlertEvent] = field(default_factory=list)
    dead_letter: DeadLetter | None = None
    state: dict[str, Any] | None = None  # the cell's new state; None: unchanged
    grid_cell: str | None = None
    area: AreaCount | None = None  # for the area watch: the report of a cell with neighbours


def process_incident(
    record: SourceRecord,
    load_state: Callable[[str], dict[str, Any] | None],
    neighbours: GridNeighbours | None = None,
) -> IncidentOutcome:
    """``load_state(grid_cell)`` returns the cell's stored state dict or None; ``neighbours``: the registry
    of neighbouring cells (None: no area watch)."""
    try:
        if record.value is None:
            raise EventError("empty message (null value)")
        report = decode_incident(record.value)
        watched = neighbours is not None and neighbours.knows(report.grid_cell)
        return _process(report, load_state(report.grid_cell), watched)
    except (EventError, ValueError) as exc:
        return IncidentOutcome(dead_letter=dead_letter_for(record, str(exc).splitlines()[0][:300], "invalid"))
    except Exception as exc:  # one bad report must never stop the worker
        log.exception("incident at %s[%d]@%d failed", record.topic, record.partition, record.offset)
        return IncidentOutcome(dead_letter=dead_letter_for(record, f"internal error: {type(exc).__name__}", "internal"))


def _process(report: IncidentReport, state: dict[str, Any] | None, watched: bool = False) -> IncidentOutcome:
    if report.photo_url is None and not has_content(report.text):
        raise EventError("text has no words (only emoji or punctuation) and there is no photo")
    assessment = classify(report.text)
    merger = IncidentMerger.from_dict(state["merger"]) if state else IncidentMerger()
    hotspots = _hotspots_from(state)
    decision = merger.add(report.incident_id, report.text, report.grid_cell, assessment.category, report.ts)
    outcome = IncidentOutcome(grid_cell=report.grid_cell)
    if decision.duplicate:
        return outcome  # the same report again (a retry): nothing changed
    reporters = _reporters_after(state, merger, decision.incident_id, report)
    incident = merger.incident(decision.incident_id) or {}
    first_ts = incident.get("first_ts", report.ts.isoformat())
    since = report.ts if decision.is_new else datetime.fromisoformat(str(first_ts))
    merged_zh = f"（同一网格已合并 {decision.report_count} 条相似报告）" if decision.report_count > 1 else ""
    merged_en = f" ({decision.report_count} similar reports merged)" if decision.report_count > 1 else ""
    outcome.alerts.append(
        AlertEvent(
            alert_id=alert_id_for(f"cell:{report.grid_cell}:{decision.incident_id}", AlertKind.INCIDENT, since),
            event="raised",
            grid_cell=report.grid_cell,
            kind=AlertKind.INCIDENT,
            severity=Severity(SEVERITY_OF_URGENCY[assessment.urgency]),
            since=since,
            at=report.ts,
            explanation=Explanation(
                zh=f"{_excerpt(report.text)} — {assessment.explanation_zh}{merged_zh}",
                en=f"{_excerpt(report.text)} — {assessment.explanation_en}{merged_en}",
            ),
            facts={
                "category": assessment.category,
                "urgency": assessment.urgency,
                "confidence": round(assessment.confidence, 3),
                "report_count": decision.report_count,
                "incident_id": decision.incident_id,
                "households": len(reporters[decision.incident_id]),
                "needs_review": assessment.needs_review,
            },
        )
    )
    # Hotspots of other categories in this cell that have subsided clear now (event time).
    outcome.alerts.extend(_hotspot_alert(f) for f in hotspots.advance(report.ts))
    finding = hotspots.update(report.grid_cell, assessment.category, report.ts)
    if finding is not None:
        outcome.alerts.append(_hotspot_alert(finding))
    outcome.state = {"merger": merger.to_dict(), "hotspot": hotspots.to_dict(), "reporters": reporters}
    if watched:  # the cell has neighbours: the area watch counts the report too
        outcome.area = AreaCount(
            incident_id=report.incident_id,
            grid_cell=report.grid_cell,
            category=assessment.category,
            ts=report.ts,
            hotspots=tuple(category for cell, category in hotspots.active() if cell == report.grid_cell),
        )
    return outcome


def _hotspots_from(state: dict[str, Any] | None) -> HotspotDetector:
    """The cell's hotspot detector as stored (a state of the sliding-window test before it loads with
    its counts); a state it cannot read starts a fresh detector rather than refusing every report."""
    stored = (state or {}).get("hotspot")
    if not stored:
        return HotspotDetector()
    try:
        return HotspotDetector.from_dict(stored)
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("hotspot state not readable (%s): starting afresh", exc)
        return HotspotDetector()


def _reporters_after(
    state: dict[str, Any] | None, merger: IncidentMerger, incident_id: str, report: IncidentReport
) -> dict[str, list[str]]:
    """Who reported each live incident, to count the households concerned: distinct reporters,
    kept only as short hashes (never the names); a report without a reporter counts as its own."""
    incidents = cast("list[dict[str, object]]", merger.to_dict()["incidents"])  # the merger's state: a list of dicts
    live = {str(item["id"]) for item in incidents}
    stored = (state or {}).get("reporters") or {}
    reporters = {k: list(v) for k, v in stored.items() if k in live}
    seen = reporters.setdefault(incident_id, [])
    who = report.reporter.strip() if report.reporter else ""
    tag = hashlib.sha256(who.encode()).hexdigest()[:12] if who else f"anon:{report.incident_id}"
    if tag not in seen and len(seen) < _MAX_REPORTERS:
        seen.append(tag)
    return reporters


def _hotspot_alert(finding: HotspotFinding) -> AlertEvent:
    return AlertEvent(
        alert_id=alert_id_for(f"cell:{finding.grid_cell}:{finding.category}", AlertKind.HOTSPOT, finding.since),
        event="raised" if finding.transition == "raised" else "resolved",
        grid_cell=finding.grid_cell,
        kind=AlertKind.HOTSPOT,
        severity=Severity.MEDIUM,
        since=finding.since,
        at=finding.at,
        explanation=Explanation(zh=finding.explanation_zh, en=finding.explanation_en),
        facts={
            "category": finding.category,
            "count": finding.count,
            "baseline_per_week": round(finding.baseline_per_week, 3),
            "p_value": finding.p_value,
        },
    )


def _excerpt(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
