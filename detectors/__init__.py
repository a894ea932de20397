"""Pure detectors: plain Python, numpy and scikit-learn only; no Kafka, no I/O, no wall clock.

A detector turns one meter's readings (in event time) into findings. ``streams`` feeds it
from Kafka, the replay command from CSV; both call exactly the same code.
"""

from detectors.bank import DetectorBank
from detectors.base import Finding, Observation
from detectors.meter_flags import MeterFlagsDetector

__all__ = ["DetectorBank", "Finding", "MeterFlagsDetector", "Observation"]
