"""What every detector sees and says. Kept free of the service's schemas on purpose:
``detectors`` imports none of the other packages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

Transition = Literal["raised", "resolved"]


@dataclass(frozen=True, slots=True)
class Observation:
    """One reading of one meter: event time, cumulative register in litres, status flags."""

    meter_id: str
    ts: datetime
    register_l: float
    flags: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Finding:
    """A detector's decision: an episode of ``kind`` was raised or resolved at event time ``at``.

    ``since`` is when the condition began; (meter, kind, since) identifies the episode.
    ``explanation_zh``/``explanation_en`` say it in plain words with the numbers that matter.
    """

    transition: Transition
    kind: str
    severity: str
    since: datetime
    at: datetime
    explanation_zh: str
    explanation_en: str
    facts: dict[str, float | int | str | bool] = field(default_factory=dict)


class Detector(Protocol):
    """One kind of check over one meter's stream of observations."""

    name: str

    def update(self, observation: Observation) -> list[Finding]:
        """Learn from one observation and return the findings it triggers (often none)."""
        ...
