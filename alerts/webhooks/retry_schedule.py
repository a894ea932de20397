"""Retry schedule of webhook deliveries.

The default follows the Standard Webhooks suggestion: spread nine retries over roughly three days so that a
receiver that is down for a deploy, a night or a weekend outage still gets the alert, then dead-letter.
Jitter keeps the retries of many deliveries that failed together (one receiver outage) from arriving at the
recovering receiver in one burst.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

#: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h.
STANDARD_SCHEDULE: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)", re.IGNORECASE)
# Module-level so that unseeded callers do not all start from the same state.
_RNG = random.Random()


def parse_schedule(text: str) -> tuple[float, ...]:
    """Parse ``"5s,5m,30m,2h"`` (units s, m, h, d; no unit means seconds) into delays in seconds.

    Raises ValueError naming the offending entry, so a bad setting fails at startup, not at the first retry.
    """
    if not text.strip():
        raise ValueError("retry schedule is empty; give comma-separated delays such as '5s,5m,30m,2h'")
    delays: list[float] = []
    for position, raw in enumerate(text.split(","), start=1):
        entry = raw.strip()
        if not entry:
            raise ValueError(f"retry schedule entry {position} is empty in {text!r}")
        if entry.startswith("-"):
            raise ValueError(f"retry schedule entry {entry!r} is negative")
        match = _DURATION_RE.fullmatch(entry)
        if match is None:
            raise ValueError(f"retry schedule entry {entry!r} is not a duration like '30s', '5m' or '2h'")
        delays.append(float(match.group(1)) * _UNITS[match.group(2).lower()])
    return tuple(delays)


def next_delay(
    attempts_made: int, schedule: Sequence[float], *, jitter: float = 0.1, rng: random.Random | None = None
) -> float | None:
    """Seconds to wait before the next attempt, after ``attempts_made`` failed attempts.

    After the first failure (``attempts_made == 1``) the delay is ``schedule[0]``, and so on; each delay is
    scaled by a uniform factor in ``[1 - jitter, 1 + jitter]``. ``None`` means the schedule is exhausted
    and the delivery should be dead-lettered (so a schedule of n delays allows n + 1 attempts in total).
    """
    if attempts_made < 1:
        raise ValueError(f"attempts_made must be at least 1, got {attempts_made}")
    if not 0.0 <= jitter < 1.0:
        raise ValueError(f"jitter must be in [0, 1), got {jitter}")
    if attempts_made > len(schedule):
        return None
    base = float(schedule[attempts_made - 1])
    if jitter == 0.0:
        return base
    factor = 1.0 + (rng or _RNG).uniform(-jitter, jitter)
    return max(0.0, base * factor)
