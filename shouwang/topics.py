"""The names of Shouwang's Kafka topics, under the configured prefix (one home for them)."""

from __future__ import annotations

from dataclasses import dataclass

from shouwang.settings import Settings


@dataclass(frozen=True)
class Topics:
    """The names of Shouwang's topics under the configured prefix."""

    readings: str
    incidents: str
    alerts: str
    deadletter: str
    feedback: str  # people's verdicts on alarms and enrolment's routine hints, for the detectors (keyed by meter)
    daily: str  # each meter's day summaries (first water use, litres), for the all-is-well message (keyed by meter)
    incident_areas: str  # classified reports of cells with neighbours, for the area watch (one key)

    @classmethod
    def from_settings(cls, settings: Settings) -> Topics:
        return cls(
            readings=settings.topic("readings"),
            incidents=settings.topic("incidents"),
            alerts=settings.topic("alerts"),
            deadletter=settings.topic("deadletter"),
            feedback=settings.topic("feedback"),
            daily=settings.topic("daily"),
            incident_areas=settings.topic("incident-areas"),
        )
