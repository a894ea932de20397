"""Pure detectors: plain Python, numpy and scikit-learn only; no Kafka, no I/O, no wall clock.

A detector turns one meter's readings (in event time) into findings. ``streams`` feeds it
from Kafka, the replay command from CSV; both call exactly the same code.

The household detectors may run compiled (mypyc, ``detectors/compiled.py``): the same source,
used only while the build matches it.
"""

from detectors.compiled import use_compiled

COMPILED = use_compiled(__path__)  # before any compiled module is imported

from detectors.bank import DetectorBank  # noqa: E402
from detectors.base import Finding, Observation  # noqa: E402
from detectors.meter_flags import MeterFlagsDetector  # noqa: E402

__all__ = ["COMPILED", "DetectorBank", "Finding", "MeterFlagsDetector", "Observation"]
