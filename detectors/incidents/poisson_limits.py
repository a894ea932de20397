"""Poisson arithmetic for the hotspot tests: tail probabilities, a daily Poisson CUSUM's in-control
average run length (Brook & Evans 1972) and design (Lucas 1985), and the burst scan's limit.
Pure numpy and the standard library; designs are cached on a 2.5 % grid of rates."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

_WEEK_H = 7 * 24


def poisson_tail(k: int, mean: float) -> float:
    """P(N ≥ k) for N ~ Poisson(mean)."""
    if k <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    log_term = -mean + k * math.log(mean) - math.lgamma(k + 1)  # log P(N = k)
    if k > mean:  # sum the upper tail directly: terms fall off quickly and nothing cancels
        total, term, i = 0.0, math.exp(log_term), k
        while term > 1e-18 * max(total, 1e-300) and i < k + 10_000:
            total += term
            i += 1
            term *= mean / i
        return min(1.0, total)
    below, term = 0.0, math.exp(-mean)
    for i in range(k):
        below += term
        term *= mean / (i + 1)
    return max(0.0, 1.0 - below)


def _poisson_pmf(mean: float, n: int) -> np.ndarray:
    x = np.arange(n + 1, dtype=float)
    logs = -mean + x * math.log(mean) - np.array([math.lgamma(i + 1) for i in range(n + 1)])
    return np.asarray(np.exp(logs))


def cusum_arl(rate_per_day: float, k_units: int, h_units: int, units: int) -> float:
    """In-control average run length in days of a daily Poisson CUSUM ``S = max(0, S + x − k)`` with
    k = k_units / units and limit h = h_units / units, started at 0 (Brook & Evans's Markov chain)."""
    if h_units < 1:
        return 1.0
    xmax = int(rate_per_day + 12 * math.sqrt(rate_per_day) + 15)
    pmf = _poisson_pmf(rate_per_day, xmax)
    q = np.zeros((h_units, h_units))
    rows = np.arange(h_units)
    for x in range(xmax + 1):
        nxt = rows + x * units - k_units
        inside = nxt < h_units
        if not inside.any():
            break
        q[rows[inside], np.maximum(nxt[inside], 0)] += pmf[x]
    run = np.linalg.solve(np.eye(h_units) - q, np.ones(h_units))
    return float(run[0])


@lru_cache(maxsize=8192)
def _design_cached(rate_key: int, shift: float, arl_days: float) -> tuple[int, int, int]:
    rate = math.exp(rate_key / 40)
    k = (shift - 1) * rate / math.log(shift)
    units = min(20, max(2, math.ceil(4 / k)))
    k_units = max(1, round(k * units))
    low, high = 1, units
    while cusum_arl(rate, k_units, high, units) < arl_days:
        low, high = high, high * 2
        if high > 4000:
            return k_units, high, units
    while low < high:  # the smallest limit that meets the budget
        mid = (low + high) // 2
        if cusum_arl(rate, k_units, mid, units) >= arl_days:
            high = mid
        else:
            low = mid + 1
    return k_units, high, units


def cusum_design(rate_per_week: float, shift: float, arl_weeks: float) -> tuple[float, float]:
    """(k, h) in reports for a daily Poisson CUSUM: the reference value for a rise to ``shift`` ×
    the rate and the smallest limit whose in-control ARL is at least ``arl_weeks``. The rate is
    rounded to a 2.5 % grid so that designs can be cached."""
    rate_key = round(40 * math.log(max(rate_per_week, 1e-4) / 7))
    k_units, h_units, units = _design_cached(rate_key, shift, arl_weeks * 7)
    return k_units / units, h_units / units


def gamma_quantile(shape: float, z: float) -> float:
    """Wilson–Hilferty approximation of a Gamma(shape, 1) quantile at the normal deviate z."""
    c = 1 / (9 * shape)
    return shape * max(0.0, 1 - c + z * math.sqrt(c)) ** 3


@lru_cache(maxsize=8192)
def _burst_limit_cached(rate_key: int, burst_hours: int, arl_weeks: float) -> int:
    rate_per_hour = math.exp(rate_key / 40) / _WEEK_H
    blocks = _WEEK_H / burst_hours
    n = 1
    while blocks * poisson_tail(n, 2 * burst_hours * rate_per_hour) > 1 / arl_weeks:
        n += 1
    return n


def burst_limit(rate_per_week: float, burst_hours: int, arl_weeks: float) -> int:
    """The fewest reports in ``burst_hours`` hourly bins that a steady stream at ``rate_per_week``
    reaches less often than once in ``arl_weeks`` weeks (a conservative bound for a sliding scan)."""
    rate_key = math.ceil(40 * math.log(max(rate_per_week, 1e-4)))  # rounded up: never a looser limit
    return _burst_limit_cached(rate_key, burst_hours, arl_weeks)
