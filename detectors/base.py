"""What every detector sees and says. Kept free of the service's schemas on purpose:
``detectors`` imports none of the other packages.

The interface follows River's idea of a detector (``../docs/DETECTION.md``): a small class whose
constructor arguments are its public configuration, with per-meter state that is learned one
reading at a time, serialises to a few hundred bytes and is driven only by the readings' event
time. Turning a score into an alarm happens inside the detector so it can refuse to learn from
the anomaly it is raising.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Literal, Protocol

Transition = Literal["check_in", "raised", "escalated", "resolved"]
"""``escalated`` re-states an open episode at a higher severity (same ``since``, same id); ``check_in``
comes before ``raised`` where a detector asks the resident first (``no_usage``), for the same episode."""

Facts = dict[str, float | int | str | bool]


# Observation and Interval are made for every reading: not frozen, because a frozen dataclass
# costs five times as much to make (object.__setattr__ per field). Treat them as read-only.
@dataclass(slots=True)
class Observation:
    """One reading of one meter: event time, cumulative register in litres, status flags."""

    meter_id: str
    ts: datetime
    register_l: float
    flags: frozenset[str] = frozenset()


@dataclass(slots=True)
class Interval:
    """What happened between two accepted readings of one meter, in epoch seconds.

    ``litres`` is ``None`` when the usage in the interval is unknown (a reset register, a
    glitch); ``issues`` names the data-quality problems seen at its end reading.
    ``utc_offset`` is the household's offset from UTC at ``end`` (for local hour of day).
    """

    start: float
    end: float
    litres: float | None
    utc_offset: float
    issues: tuple[str, ...] = ()

    @property
    def hours(self) -> float:
        return (self.end - self.start) / 3600.0


@dataclass(frozen=True, slots=True)
class Finding:
    """A detector's decision: an episode of ``kind`` was raised, escalated or resolved at
    event time ``at``.

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
    facts: Facts = field(default_factory=dict)


class Detector(Protocol):
    """One kind of check over one meter's intervals. One instance holds one meter's state."""

    name: ClassVar[str]

    def update(self, interval: Interval) -> list[Finding]:
        """Learn from one interval (event-time order) and return the findings it triggers."""
        ...

    def advance(self, now: float, utc_offset: float) -> list[Finding]:
        """Time has reached ``now`` (epoch seconds) without a reading: findings that only the
        passing of time can trigger (an overdue meter). Most detectors return ``[]``."""
        ...

    def wake_at(self) -> float:
        """The earliest epoch second after which ``advance`` could find something (``math.inf``:
        never, until the next reading). Lets a worker ask only the meters time can speak for."""
        ...

    def dump(self) -> bytes:
        """This meter's learned state, compact and deterministic."""
        ...

    def load(self, data: bytes) -> None:
        """Restore the state written by ``dump`` (raises ``ValueError`` on a bad blob)."""
        ...
