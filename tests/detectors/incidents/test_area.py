"""Area hotspots over neighbouring cells: the registry, a rise spread over cells, what is left to a cell's
own hotspot, overlapping areas, and the state split by key."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from detectors.incidents import HotspotDetector
from detectors.incidents.area import RAISED_KEY, AreaFinding, AreaWatch, GridNeighbours, NeighboursError

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LINE = GridNeighbours({"A": ["B"], "B": ["C"]})  # A – B – C: areas {A, B}, {A, B, C}, {B, C}


def spread(cells: str = "ABC", *, per_week: int = 2, weeks: int = 10, rise: int = 6, days: int = 6) -> list:
    """Each cell: ``per_week`` reports a week, evenly, for ``weeks``; then ``rise`` reports in ``days`` days."""
    events = []
    for j, cell in enumerate(cells):
        step = timedelta(days=7) / per_week
        events += [(T0 + i * step + timedelta(hours=5 * j), cell) for i in range(per_week * weeks)]
        start = T0 + timedelta(weeks=weeks)
        events += [(start + timedelta(days=days) * i / rise + timedelta(hours=3 * j), cell) for i in range(rise)]
    return sorted(events)


class Feed:
    """Reports fed as the worker does: each cell's own detector first (its hotspots go with the report),
    then the area watch; with ``store``, a fresh watch per report over the stored states."""

    def __init__(self, neighbours: GridNeighbours = LINE, store: dict[str, Any] | None = None) -> None:
        self.neighbours, self.store = neighbours, store
        self.cells: dict[str, HotspotDetector] = {}
        self.watch = AreaWatch(neighbours)
        self.cell_findings: list[tuple[str, str]] = []
        self.found: list[AreaFinding] = []

    def report(self, ts: datetime, cell: str, category: str = "clutter", report_id: str | None = None) -> None:
        detector = self.cells.setdefault(cell, HotspotDetector())
        findings = detector.advance(ts)
        finding = detector.update(cell, category, ts)
        findings += [finding] if finding else []
        self.cell_findings += [(f.transition, f.grid_cell) for f in findings]
        hotspots = [c for g, c in detector.active() if g == cell]
        if self.store is not None:
            self.watch = AreaWatch(self.neighbours, self.store.get)
        self.found += self.watch.update(cell, category, ts, hotspots=hotspots, report_id=report_id)
        if self.store is not None:
            self.store.update(json.loads(json.dumps(self.watch.states())))

    def run(self, events: list) -> Feed:
        for i, (ts, cell) in enumerate(events):
            self.report(ts, cell, report_id=f"r{i}")
        return self


def test_three_neighbouring_cells_each_rising_a_little_raise_one_area_hotspot() -> None:
    feed = Feed().run(spread())
    assert feed.cell_findings == []  # no cell is unusual alone
    [raised] = feed.found
    assert (raised.transition, raised.area.centre, raised.area.cells) == ("raised", "B", ("A", "B", "C"))
    assert raised.count == sum(n for _, n in raised.cell_counts) >= 12 and raised.p_value < 0.01
    assert 5 < raised.baseline_per_week < 7  # three cells at 2 a week
    counts = ", ".join(f"{c} {n}" for c, n in raised.cell_counts)
    assert f"in 7 days across neighbouring cells A, B and C ({counts}; usually" in raised.explanation_en
    assert "No cell stands out alone" in raised.explanation_en and "stairwell clutter" in raised.explanation_en
    assert "相邻网格 A、B、C" in raised.explanation_zh and "“楼道堆物”" in raised.explanation_zh
    assert feed.watch.active() == [("B", "clutter")]
    resolved = feed.watch.advance(raised.at + timedelta(weeks=3))
    assert [(f.transition, f.area.centre, f.since) for f in resolved] == [("resolved", "B", raised.since)]
    assert "subsided" in resolved[0].explanation_en and "回落" in resolved[0].explanation_zh
    assert feed.watch.active() == []


def test_a_burst_spread_over_the_cells_is_raised_at_once() -> None:
    """Six reports within 90 minutes, two in each cell: too few for any cell's burst scan, not for the area's."""
    quiet = [e for e in spread(rise=0) if e[0] < T0 + timedelta(weeks=10)]
    burst = [(T0 + timedelta(weeks=10, days=2, minutes=15 * i), "ABC"[i % 3]) for i in range(6)]
    feed = Feed().run(quiet + burst)
    [raised] = feed.found
    assert feed.cell_findings == [] and raised.at - burst[0][0] < timedelta(hours=2)
    assert (
        raised.count == 5
        and "5 reports of stairwell clutter within 2 hours across neighbouring" in raised.explanation_en
    )
    assert "2 小时内共有 5 起" in raised.explanation_zh and "chance" not in raised.explanation_en


def test_a_steady_rate_in_every_cell_raises_nothing() -> None:
    events = [e for e in spread(weeks=16, rise=0) if e[0] < T0 + timedelta(weeks=16)]
    assert Feed().run(events).found == []


def test_a_cells_own_hotspot_is_not_raised_again_for_its_area() -> None:
    """A flood in B: B's hotspot says it; the areas around B stay quiet though their sums rose."""
    events = [e for e in spread(rise=0) if e[0] < T0 + timedelta(weeks=10)]
    flood = [(T0 + timedelta(weeks=10, hours=i), "B") for i in range(8)]
    feed = Feed().run(events + flood)
    assert ("raised", "B") in feed.cell_findings and feed.found == []


def test_a_rise_in_one_cell_alone_is_left_to_that_cell() -> None:
    """All of the rise in A: not a spreading problem, whether or not A's own detector raised it."""
    events = spread("ABC", rise=0) + [(T0 + timedelta(weeks=10, hours=10 * i), "A") for i in range(12)]
    watch = AreaWatch(LINE)
    found = [f for i, (ts, cell) in enumerate(sorted(events)) for f in watch.update(cell, "clutter", ts)]
    assert found == []


def test_overlapping_areas_raise_one_alert() -> None:
    # The pair A–B alone would be raised by this stream too (a registry that knows only that pair) …
    pair = Feed(GridNeighbours({"A": ["B"]})).run(spread())
    assert [(f.transition, f.area.cells) for f in pair.found] == [("raised", ("A", "B"))]
    # … but in the line A – B – C, the first area raised stands for the problem until it resolves.
    line = Feed().run(spread())
    assert [f.transition for f in line.found] == ["raised"]


def test_the_state_split_by_key_round_trips_through_json() -> None:
    """A fresh watch per report over the stored states decides exactly as one watch kept in memory."""
    events = spread()
    store: dict[str, Any] = {}
    stored = Feed(store=store).run(events)
    kept = Feed().run(events)
    assert [(f.transition, f.area, f.since, f.count) for f in stored.found] == [
        (f.transition, f.area, f.since, f.count) for f in kept.found
    ]
    assert set(store) == {"A", "B", "C", RAISED_KEY}
    assert store[RAISED_KEY]["raised"][0]["cells"] == ["A", "B", "C"]
    assert store["B"]["v"] == 1 and sum(store["B"]["counts"]["clutter"].values()) == 26


def test_a_state_that_cannot_be_read_starts_afresh_and_says_so() -> None:
    store: dict[str, Any] = {"A": {"v": 99}, RAISED_KEY: {"v": 1, "raised": [{"centre": "B"}]}}
    told: list[str] = []
    watch = AreaWatch(LINE, store.get, lambda key, error: told.append(f"{key}: {error!r}"))
    assert watch.update("A", "clutter", T0, report_id="r1") == []
    assert told == ["@areas: KeyError('cells')", "A: ValueError('unsupported area cell state version 99')"]
    assert sum(watch.states()["A"]["counts"]["clutter"].values()) == 1


def test_a_report_processed_twice_is_counted_once() -> None:
    store: dict[str, Any] = {}
    for _ in range(3):  # the same report after two crashes
        watch = AreaWatch(LINE, store.get)
        watch.update("A", "clutter", T0, report_id="r1")
        store.update(watch.states())
    assert store["A"]["counts"] == {"clutter": {str(int(T0.timestamp()) // 3600): 1}}


def test_old_counts_are_dropped_from_the_stored_state() -> None:
    watch = AreaWatch(LINE)
    watch.update("A", "clutter", T0, report_id="old")
    watch.update("A", "clutter", T0 + timedelta(weeks=20), report_id="new")
    state = watch.states()["A"]
    assert sum(state["counts"]["clutter"].values()) == 1 and list(state["seen"]) == ["new"]


def test_the_registry_is_made_symmetric_and_one_neighbourhood_is_one_area() -> None:
    triangle = GridNeighbours({"A": ["B", "C"], "B": ["C"]})
    assert triangle.of("C") == ("A", "B") and triangle.knows("C") and not triangle.knows("D")
    assert list(triangle.areas.values()) == [triangle.areas["A"]] and triangle.areas["A"].cells == ("A", "B", "C")
    assert [a.centre for a in LINE.areas_with("A")] == ["A", "B"] and LINE.areas["C"].cells == ("B", "C")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "expected a JSON object {cell: [neighbouring cells]}, got list"),
        ('{"A": ["B"', "not JSON: Expecting"),
        ('{"A": "B"}', "cell 'A': expected a list of neighbouring cells, got str"),
        ('{"A": ["B", 7]}', "cell 'A': neighbour 7 is not a string"),
        ('{"A": ["bad cell!"]}', "cell 'A': neighbour 'bad cell!' is not a grid cell code"),
        ('{"-A": ["B"]}', "cell '-A' is not a grid cell code (1–32 letters"),
        ('{"A": ["B", "A"]}', "cell 'A' lists itself as its neighbour"),
        (json.dumps({"A": [f"N{i}" for i in range(21)]}), "cell 'A' has 21 neighbours (at most 20"),
    ],
)
def test_a_bad_registry_is_refused_naming_the_entry(text: str, message: str) -> None:
    with pytest.raises(NeighboursError) as caught:
        GridNeighbours.from_json(text)
    assert message in str(caught.value) and "\n" not in str(caught.value)
