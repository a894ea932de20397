"""bench/area_hotspots.py: a quick run over three neighbouring cells, and its table."""

from __future__ import annotations

from bench.area_hotspots import evaluate, feed, markdown


def test_a_rise_spread_over_the_cells_is_found_by_the_area_and_the_table_says_so() -> None:
    day = 86400.0
    # A report a week in each cell for four weeks, then four in each in six days (tests/streams/test_incident_areas.py)
    steady = {c: [i * 7 * day + j * 5 * 3600.0 for i in range(4)] for j, c in enumerate("ABC")}
    rise = {c: [28 * day + i * 1.5 * day + j * 3 * 3600.0 for i in range(4)] for j, c in enumerate("ABC")}
    cells, areas = feed({c: steady[c] + rise[c] for c in "ABC"})
    assert cells == [] and len(areas) == 1 and areas[0] >= 28 * day
    result = evaluate(quick=True, processes=1)
    [steady_row] = result["steady"]
    assert steady_row["rate"] == 3.0 and 0 <= steady_row["per_area_week"] <= 0.05
    [step] = result["steps"]
    assert (step["base"], step["factor"]) == (3.0, 3.0) and step["either"] >= max(step["cells"], step["area"])
    table = markdown(result)
    assert "| 3 | 8 |" in table and "bound (sum)" in table
