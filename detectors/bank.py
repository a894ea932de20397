"""A detector bank runs every detector of one meter over each observation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from detectors.base import Detector, Finding, Observation
from detectors.meter_flags import MeterFlagsDetector


def default_detectors() -> list[Detector]:
    return [MeterFlagsDetector()]


@dataclass
class DetectorBank:
    """All detectors for one meter, fed in event-time order."""

    detectors: Sequence[Detector] = field(default_factory=default_detectors)

    def update(self, observation: Observation) -> list[Finding]:
        findings: list[Finding] = []
        for detector in self.detectors:
            findings.extend(detector.update(observation))
        return findings
