"""The command line as a user runs it: one-line errors, the incidents classifier on stdin."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def run(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.mark.slow
def test_incidents_classify_reads_json_lines_and_reports_bad_lines() -> None:
    done = run("incidents", "classify", stdin='{"text": "3号楼闻到很浓的煤气味"}\nnot json\n{"text": ""}\n')
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert (lines[0]["category"], lines[0]["urgency"]) == ("hazard", "critical") and lines[0]["explanation"]
    assert lines[1]["error"].startswith("line 2") and lines[2]["error"].startswith("line 3")


def test_a_bad_setting_is_one_clear_line() -> None:
    done = run("settings", env={"SHOUWANG_BROKER_PORT": "eighty"})
    assert done.returncode == 2
    assert done.stderr.strip().startswith("shouwang: bad setting: SHOUWANG_BROKER_PORT")
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
