"""``shouwang replay``: files, progress bar and the summary around ``streams.replay``."""

from __future__ import annotations

import os
import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from shouwang.settings import Settings
from streams.detection import bank_factory
from streams.replay import ReplayError, read_readings, replay, write_jsonl

SHOWN_BAD_ROWS = 20


def run_replay(
    readings_path: Path,
    out_path: Path,
    *,
    settings: Settings,
    tz: str,
    escalations: bool,
    check_ins: bool = False,
    feedback: bool = False,
) -> int:
    """Replay one file; returns the number of transitions written. ``ValueError`` has a one-line reason."""
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"--tz {tz!r} is not an IANA time zone such as Europe/Madrid") from None
    err = Console(stderr=True)
    started = time.monotonic()
    try:
        with readings_path.open(encoding="utf-8", newline="") as lines:
            readings = read_readings(lines, tz)
    except FileNotFoundError:
        raise ValueError(f"{readings_path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{readings_path}: not UTF-8 text (byte {exc.start})") from None
    except ReplayError as exc:
        raise ValueError(f"{readings_path}: {exc}") from None
    for bad in readings.bad_rows[:SHOWN_BAD_ROWS]:
        err.print(f"{readings_path}:{bad.line}: skipped: {bad.reason}", highlight=False, markup=False, soft_wrap=True)
    if len(readings.bad_rows) > SHOWN_BAD_ROWS:
        err.print(f"… and {len(readings.bad_rows) - SHOWN_BAD_ROWS} more bad rows", highlight=False)
    columns = (TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TextColumn("readings"), TimeRemainingColumn())
    try:
        out_file = out_path.open("w", encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{out_path}: cannot write ({exc.strerror})") from None
    with out_file, Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as progress:
        task = progress.add_task("replay", total=readings.readings)
        written = write_jsonl(
            replay(
                readings,
                bank_factory(settings, tz=tz),
                escalations=escalations,
                check_ins=check_ins,
                feedback=feedback,
                progress=lambda n: progress.advance(task, n),
                jobs=os.cpu_count() or 1,
            ),
            out_file,
        )
    err.print(
        f"replayed {readings.readings} readings of {len(readings.meters)} meters in "
        f"{time.monotonic() - started:.1f} s: {written} alert transitions → {out_path}; "
        f"{len(readings.bad_rows)} bad rows skipped",
        highlight=False,
        soft_wrap=True,
    )
    return written
