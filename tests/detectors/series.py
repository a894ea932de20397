"""Generated meter histories for detector tests: a regular household with known episodes."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from detectors import DetectorBank, Finding, Observation
from detectors.base import Interval

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday; the bank's tz in tests is UTC
HOUR = timedelta(hours=1)


@dataclass
class Household:
    """Hourly readings of a routine: mornings 07–09, lunch, evenings 18–22, quiet nights."""

    seed: int = 7
    days: int = 42
    meter_id: str = "m-test"
    collapse_at: datetime | None = None  # all use stops from here
    leak_from: datetime | None = None  # constant extra flow from here
    leak_lph: float = 5.0
    burst_at: datetime | None = None  # extra litres within the hour ending here
    burst_l: float = 500.0
    offline: tuple[datetime, datetime] | None = None  # no readings in [start, end)
    shift_from: datetime | None = None  # the routine starts 3 h later and uses half as much
    readings: list[Observation] = field(default_factory=list)

    def build(self) -> list[Observation]:
        rng = random.Random(self.seed)
        register = 1000.0
        out = []
        for step in range(1, self.days * 24 + 1):
            ts = START + step * HOUR
            hour = (ts - HOUR).hour
            shifted = self.shift_from is not None and ts >= self.shift_from
            active = {7: 0.9, 8: 0.8, 12: 0.6, 18: 0.7, 19: 0.9, 20: 0.8, 21: 0.6, 22: 0.4}
            if shifted:
                active = {(h + 3) % 24: p for h, p in active.items() if h < 18} | {19: 0.5, 20: 0.4}
            used = rng.uniform(5, 40) * (0.5 if shifted else 1.0) if rng.random() < active.get(hour, 0.03) else 0.0
            if self.collapse_at is not None and ts > self.collapse_at:
                used = 0.0
            if self.leak_from is not None and ts > self.leak_from:
                used += self.leak_lph
            if self.burst_at is not None and ts == self.burst_at:
                used += self.burst_l
            register += round(used)
            if self.offline is not None and self.offline[0] <= ts < self.offline[1]:
                continue
            out.append(Observation(self.meter_id, ts, register))
        self.readings = out
        return out


def at_day(day: int, hour: int) -> datetime:
    return START + timedelta(days=day, hours=hour)


def add_use(readings: list[Observation], extra: dict[datetime, float]) -> list[Observation]:
    """The readings with ``extra[ts]`` more litres used in the hour ending at ``ts`` (kept by the register)."""
    added = 0.0
    out = []
    for reading in readings:
        added += extra.get(reading.ts, 0.0)
        out.append(replace(reading, register_l=reading.register_l + added))
    return out


def hourly_intervals(
    litres: list[float | None], start: datetime = START, utc_offset: float = 0.0, step_s: float = 3600.0
) -> list[Interval]:
    """Consecutive intervals of ``step_s`` seconds from ``start`` with the given usage."""
    t0 = start.timestamp()
    return [Interval(t0 + i * step_s, t0 + (i + 1) * step_s, value, utc_offset) for i, value in enumerate(litres)]


def feed(bank: DetectorBank, readings: list[Observation]) -> list[Finding]:
    """Every finding the bank gives over ``readings``, in order."""
    return [finding for reading in readings for finding in bank.update(reading)]
