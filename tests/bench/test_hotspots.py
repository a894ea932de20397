"""bench/hotspots.py: the streams it simulates, the bound it reports, and a quick run of both detectors."""

from __future__ import annotations

import random

import pytest

from bench.hotspots import WEEK_S, arrivals, evaluate, markdown, np_bound


def test_arrivals_are_a_seeded_poisson_process_at_the_rate() -> None:
    times = arrivals(random.Random(1), 3.0, 0.0, 400 * WEEK_S)
    assert 3.0 * 400 * 0.9 < len(times) < 3.0 * 400 * 1.1
    assert times == sorted(times) and times == arrivals(random.Random(1), 3.0, 0.0, 400 * WEEK_S)


def test_the_bound_is_the_neyman_pearson_power_at_the_budget() -> None:
    # baseline 3: reject 9 or more (P = 0.0038), and 8 with the probability that spends the rest of 0.01
    assert 0.64 < np_bound(3.0, 3.0, 0.01) < 0.65
    assert np_bound(3.0, 1.0, 0.01) == pytest.approx(0.01)
    assert np_bound(6.0, 3.0, 0.01) > np_bound(3.0, 3.0, 0.01) > np_bound(3.0, 2.0, 0.01)


def test_a_quick_run_compares_both_detectors_and_the_new_one_keeps_its_budget() -> None:
    result = evaluate(quick=True, processes=1)
    steady = {(s["detector"], s["rate"]): s for s in result["steady"]}
    assert set(steady) == {(d, r) for d in ("window", "cusum") for r in (1.0, 3.0, 6.0)}
    assert steady[("window", 6.0)]["per_series_week"] > 0.05  # the old test's false hotspots show
    assert all(steady[("cusum", r)]["per_series_week"] <= 0.01 for r in (1.0, 3.0, 6.0))
    [step] = [s for s in result["steps"] if s["detector"] == "cusum"]
    assert (step["base"], step["factor"]) == (3.0, 3.0) and 0 <= step["detected"] <= 1
    table = markdown(result)
    assert "| 6 | 12 |" in table and "bound" in table
