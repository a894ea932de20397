"""The detector bank every meter gets, configured from settings (stream and replay alike)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from detectors import DetectorBank
from detectors.bank import default_detectors
from detectors.base import Detector
from detectors.meter_offline import MeterOfflineDetector
from detectors.no_usage import NoUsageDetector
from shouwang.settings import Settings


@dataclass(frozen=True)
class BankFactory:
    """Makes a fresh bank for one meter with the configured sensitivity (picklable, for replay's
    worker processes)."""

    tz: str
    false_alarms_per_month: float
    ceiling_h: float
    offline_min_h: float
    check_ins_per_month: float = 0.0
    check_ceiling_h: float = 11.0

    def __call__(self) -> DetectorBank:
        configured: dict[str, Detector] = {
            "no_usage": NoUsageDetector(
                false_alarms_per_month=self.false_alarms_per_month,
                ceiling_h=self.ceiling_h,
                check_ins_per_month=self.check_ins_per_month,
                check_ceiling_h=self.check_ceiling_h,
            ),
            "meter_offline": MeterOfflineDetector(min_h=self.offline_min_h),
        }
        return DetectorBank([configured.get(d.name, d) for d in default_detectors()], tz=self.tz)


def bank_factory(settings: Settings, *, tz: str | None = None) -> Callable[[], DetectorBank]:
    """A function that makes a fresh bank for one meter, from settings."""
    return BankFactory(
        tz=tz or settings.household_tz,
        false_alarms_per_month=settings.no_usage_false_alarms_per_month,
        ceiling_h=settings.no_usage_ceiling_h,
        offline_min_h=settings.offline_min_h,
        check_ins_per_month=settings.check_ins_per_month,
        check_ceiling_h=settings.check_in_ceiling_h,
    )
