"""The fault run's load (bench/chaos.py): a few thousand meters' readings, deterministic from a seed, with
injected bursts whose alerts are known in advance, and the same readings replayed without any fault.

Event time is accelerated: tick ``k`` of the run is event hour ``k`` after ``T0`` (March 2026, in the past,
as the integration tests do). Each meter uploads a batch of its last ``upload_every_h`` hourly readings
every ``upload_every_h`` ticks (as NB-IoT meters upload), staggered so that each tick carries a sixth of
the meters. A household uses a few litres to a few tens of litres an hour by day and nothing from 00:00 to
06:00 local time: neither a silence long enough for ``no_usage`` nor a flow long enough for
``continuous_flow``.

A probe is a burst: 2,000 L in one hour (far above the 700 L that raises ``spike`` for any household,
below the 5,000 L/h that would be a glitch), placed in the middle of a batch so that the same record
raises the alert and, with the next hour back to normal, resolves it. Each tick probes one uploading
meter per readings partition, so a partition that stops moving shows at once. A few records a run are
invalid (a timestamp without its UTC offset): each must end on the dead-letter topic, never in a state.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from detectors import DetectorBank
from shouwang.events import AlertEvent, AlertKind, alert_id_for
from shouwang.settings import Settings
from streams.detection import bank_factory
from streams.offline import partition_of
from streams.processing import ReadingProcessor, SourceRecord

T0 = 1_772_323_200  # 2026-03-01T00:00:00Z: event hour 0 (as tests/kafka_helpers.py)
HOUR = 3600
TZ = "Asia/Shanghai"  # the households' zone (UTC+8, no daylight saving): night is 16:00–22:00 UTC
NIGHT_LOCAL_HOURS = range(0, 6)
BURST_L = 2000.0
UPLOAD_EVERY_H = 6
FIRST_PROBE_TICK = 3  # a burst two hours before the upload's end needs the hour before it in the batch too


@dataclass(frozen=True)
class Probe:
    """A burst injected into ``meter``'s hour ending at event hour ``hour``, sent in tick ``tick``."""

    meter: str
    partition: int
    tick: int
    hour: int

    @property
    def alert_id(self) -> str:
        """The id of the ``spike`` alert the burst raises: its episode starts at the burst hour's start, so the
        run can tell while it goes on whether a burst went through (the replay confirms it at the end)."""
        since = datetime.fromtimestamp(T0 + HOUR * (self.hour - 1), UTC)
        return alert_id_for(self.meter, AlertKind.SPIKE, since)


@dataclass
class Tick:
    """What one tick sends: the records (key, value) in order, the probes among them, the invalid ones."""

    number: int
    records: list[tuple[bytes, bytes]] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    invalid: int = 0
    readings: int = 0


def meter_ids(count: int) -> list[str]:
    return [f"cm-{number:05d}" for number in range(count)]


class Load:
    """The run's readings, tick by tick; ``tick(k)`` must be called for k = 0, 1, 2, … in order."""

    def __init__(
        self, meters: int, partitions: int, *, seed: int, probes_per_tick: int | None = None, invalid_every: int = 10
    ) -> None:
        self.meters = meter_ids(meters)
        self.partitions = partitions
        self.probes_per_tick = partitions if probes_per_tick is None else probes_per_tick
        self.invalid_every = invalid_every  # one invalid record every so many ticks
        self._rng = random.Random(seed)
        self._base = [self._rng.uniform(4.0, 25.0) for _ in self.meters]  # litres an hour by day
        self._register = [self._rng.uniform(0.0, 50_000.0) for _ in self.meters]
        self._points: list[list[tuple[int, float]]] = [[] for _ in self.meters]  # readings not yet uploaded
        self._bursts: dict[int, int] = {}  # meter index -> event hour of a burst to come
        self._probed: dict[str, int] = {}  # how many bursts each meter had (spread them over the meters)
        self._partition = [partition_of(meter, partitions) for meter in self.meters]
        self._next = 0

    def _reading(self, index: int, hour: int) -> tuple[int, float]:
        ts = T0 + HOUR * hour
        if hour > 0:
            local_hour = (hour + 8) % 24  # the hour that ends at ``ts`` began an hour earlier
            if self._bursts.get(index) == hour:
                del self._bursts[index]
                used = BURST_L
            elif (local_hour - 1) % 24 in NIGHT_LOCAL_HOURS:
                used = 0.0
            else:
                used = round(self._base[index] * self._rng.uniform(0.5, 1.5), 1)
            self._register[index] = round(self._register[index] + used, 1)
        return ts, self._register[index]

    def tick(self, number: int) -> Tick:
        if number != self._next:
            raise ValueError(f"ticks must come in order: expected {self._next}, got {number}")
        self._next += 1
        tick = Tick(number)
        uploading = [i for i in range(len(self.meters)) if i % UPLOAD_EVERY_H == number % UPLOAD_EVERY_H]
        # Probes: bursts placed two hours before this upload's end, so this very record raises and resolves.
        if number >= FIRST_PROBE_TICK:
            for partition in self._probe_partitions(number):
                candidates = [i for i in uploading if self._partition[i] == partition and i not in self._bursts]
                if not candidates:
                    continue
                index = min(candidates, key=lambda i: (self._probed.get(self.meters[i], 0), self._rng.random()))
                self._probed[self.meters[index]] = self._probed.get(self.meters[index], 0) + 1
                self._bursts[index] = number - 2
                tick.probes.append(Probe(self.meters[index], partition, number, number - 2))
        for index in uploading:
            first = max(0, number - UPLOAD_EVERY_H + 1)
            points = [self._reading(index, hour) for hour in range(first, number + 1)]
            meter = self.meters[index]
            value = {"meter_id": meter, "readings": [{"ts": ts, "register_l": register} for ts, register in points]}
            tick.records.append((meter.encode(), json.dumps(value).encode()))
            tick.readings += len(points)
        if self.invalid_every and number % self.invalid_every == 0 and uploading:
            meter = self.meters[self._rng.choice(uploading)]
            bad = {"meter_id": meter, "ts": "2026-03-01T00:00:00", "register_l": 1.0}  # no UTC offset
            tick.records.append((meter.encode(), json.dumps(bad).encode()))
            tick.invalid += 1
        return tick

    def _probe_partitions(self, number: int) -> list[int]:
        count = min(self.probes_per_tick, self.partitions)
        start = (number * count) % self.partitions  # rotate, when fewer probes than partitions
        return [(start + i) % self.partitions for i in range(count)]


@dataclass
class Replay:
    """The same records processed once, in order, without any fault: the alerts they must raise and each
    meter's final state."""

    alerts: dict[tuple[str, str], AlertEvent] = field(default_factory=dict)  # (alert id, transition) -> event
    states: dict[str, bytes] = field(default_factory=dict)
    last_ts: dict[str, float] = field(default_factory=dict)  # each meter's newest reading
    readings_of: dict[str, int] = field(default_factory=dict)  # each meter's valid readings
    readings: int = 0
    invalid: int = 0


def replay(settings: Settings, records: Iterable[tuple[bytes, bytes]]) -> Replay:
    """Run the worker's own processor over ``records`` (every meter's records in the order produced)."""
    processor = ReadingProcessor(bank_factory(settings), max_skew_s=settings.clock_skew_s)
    result = Replay()
    for offset, (key, value) in enumerate(records):
        meter = key.decode()
        outcome = processor.process(SourceRecord("readings", 0, offset, key, value), result.states.get(meter))
        if outcome.dead_letter is not None:
            result.invalid += 1
            continue
        result.readings += outcome.reading_count
        result.readings_of[meter] = result.readings_of.get(meter, 0) + outcome.reading_count
        if outcome.state is not None:
            result.states[meter] = outcome.state
        for alert in outcome.alerts:
            result.alerts[(alert.alert_id, alert.event)] = alert
    for meter, state in result.states.items():
        result.last_ts[meter] = last_reading_ts(settings, state)
    return result


def left_out(settings: Settings, records: Sequence[tuple[bytes, bytes]], target: bytes) -> int | None:
    """The valid readings of the one record among a meter's ``records`` whose leaving out gives the final state
    ``target`` (comparable), or None when no single record explains it."""
    for skip in range(len(records)):
        kept = [*records[:skip], *records[skip + 1 :]]
        result = replay(settings, kept)
        if any(comparable_state(settings, state) == target for state in result.states.values()):
            return replay(settings, [records[skip]]).readings
    return None


def comparable_state(settings: Settings, state: bytes) -> bytes:
    """A meter's state with its count of late readings set to 0: at-least-once processing reads a batch
    again after a crash, and its readings, already seen, are counted as late and otherwise ignored."""
    bank = _bank(settings, state)
    bank._intervals.late = 0  # the one field a re-read batch may change (detectors/intervals.py)
    return bank.dump()


def last_reading_ts(settings: Settings, state: bytes) -> float:
    return _bank(settings, state)._intervals.last_ts


def _bank(settings: Settings, state: bytes) -> DetectorBank:
    bank = bank_factory(settings)()
    bank.load(state)
    return bank
