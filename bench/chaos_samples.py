"""What the fault run (bench/chaos.py) samples every few seconds while it goes on, so that a slow catch-up can
be looked into afterwards from its report alone: each worker's readings processed, consumer lag per readings
partition and states held (from its metrics page), each process's CPU time, and how busy the machine was.
"""

from __future__ import annotations

import os
import re
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PROCESSED = re.compile(r"^shouwang_worker_readings_processed_total (\S+)$", re.MULTILINE)
_HELD = re.compile(r"^shouwang_worker_states_held (\S+)$", re.MULTILINE)
_LAG = re.compile(r"^shouwang_worker_consumer_lag_records\{([^}]*)\} (\S+)$", re.MULTILINE)
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def metrics_page(port: str) -> str | None:
    """A worker's metrics page, or None when it does not answer within 2 s."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            return str(response.read().decode())
    except OSError:
        return None


def worker_figures(page: str, readings_topic: str) -> dict[str, Any]:
    """Readings processed, consumer lag (records) per readings partition it holds, and states held."""
    processed, held = _PROCESSED.search(page), _HELD.search(page)
    lag: dict[str, int] = {}
    for labels, value in _LAG.findall(page):
        named = dict(_LABEL.findall(labels))
        if named.get("topic") == readings_topic:
            lag[named.get("partition", "?")] = int(float(value))
    return {
        "processed": float(processed[1]) if processed else 0.0,
        "lag": dict(sorted(lag.items())),
        "held": int(float(held[1])) if held else 0,
    }


def cpu_seconds(pid: int | None) -> float | None:
    """User and system CPU time a process has used (Linux ``/proc``), or None when it is gone or unknown."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime: fields 14 and 15 of the line


def machine_ticks() -> tuple[int, int]:
    """The machine's busy and total CPU ticks so far, over all cores (``/proc/stat``)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle and iowait
    return sum(values) - idle, sum(values)


class Sampler:
    """One sample per call: since the last one, the machine's busy share and each process's CPU seconds; and
    each worker's figures as of now."""

    def __init__(self, origin: float, readings_topic: str) -> None:
        self.origin = origin
        self.readings_topic = readings_topic
        self.samples: list[dict[str, Any]] = []
        self._ticks = machine_ticks()
        self._cpu: dict[str, tuple[int, float]] = {}  # process name -> (its pid, CPU seconds) at the last sample

    def sample(self, now: float, pages: Mapping[str, str | None], pids: Mapping[str, int | None]) -> dict[str, Any]:
        busy, total = machine_ticks()
        before_busy, before_total = self._ticks
        self._ticks = (busy, total)
        cpu: dict[str, float | None] = {}
        for name, pid in pids.items():
            used = cpu_seconds(pid)
            last = self._cpu.pop(name, None)
            if used is None or pid is None:
                cpu[name] = None
                continue
            cpu[name] = round(used - last[1], 2) if last is not None and last[0] == pid else None  # None: restarted
            self._cpu[name] = (pid, used)
        entry = {
            "t": round(now - self.origin, 1),
            "machine_busy": round((busy - before_busy) / (total - before_total), 2) if total > before_total else None,
            "cpu_s": cpu,
            "workers": {
                name: None if page is None else worker_figures(page, self.readings_topic)
                for name, page in pages.items()
            },
        }
        self.samples.append(entry)
        return entry
