"""JSON Lines in, JSON Lines out: the pure core of ``shouwang incidents classify``.

Each input line is an object with a ``text`` (and optionally an ``id`` or ``incident_id``, echoed
back). Each output line is ``{"line", "category", "urgency", "confidence", "explanation",
"explanation_en", "reasons", "reasons_en", "top_terms", "needs_review"}`` (plus the echoed id),
or ``{"line", "error"}`` for a line that cannot be read. Blank lines are skipped. Nothing here
reads files, stdin or the clock; the caller does the I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from detectors.incidents.assessment import classify
from detectors.incidents.classifier import IncidentClassifier


def _dump(obj: dict[str, object]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def classify_line(line: str, number: int, classifier: IncidentClassifier | None = None) -> str:
    """One input line → one output line (never raises for bad input)."""
    try:
        item = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as exc:
        return _dump({"line": number, "error": f"line {number}: not valid JSON ({exc})"})
    if not isinstance(item, dict):
        return _dump({"line": number, "error": f'line {number}: expected a JSON object with a "text" field'})
    text = item.get("text")
    if not isinstance(text, str):
        return _dump({"line": number, "error": f'line {number}: "text" must be a string'})
    try:
        result = classify(text, classifier)
    except ValueError as exc:
        return _dump({"line": number, "error": f"line {number}: {exc}"})
    out: dict[str, object] = {"line": number}
    for key in ("id", "incident_id"):
        if isinstance(item.get(key), str | int):
            out[key] = item[key]
    out.update(
        {
            "category": result.category,
            "urgency": result.urgency,
            "confidence": result.confidence,
            "explanation": result.explanation_zh,
            "explanation_en": result.explanation_en,
            "reasons": result.reasons,
            "reasons_en": result.reasons_en,
            "top_terms": result.top_terms,
            "needs_review": result.needs_review,
        }
    )
    return _dump(out)


def classify_lines(lines: Iterable[str], classifier: IncidentClassifier | None = None) -> Iterator[str]:
    """Classify JSON Lines ``{"text": ...}``; yield one JSON line (without newline) per non-blank input line.

    Line numbers count every input line from 1, blank ones included, so they match the file."""
    for number, line in enumerate(lines, 1):
        if isinstance(line, bytes):
            line = line.decode("utf-8", "replace")
        if not line.strip():
            continue
        yield classify_line(line, number, classifier)
