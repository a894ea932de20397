"""The compiled detectors (mypyc): used only when built from these very sources, and they say what
the plain Python says."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

import detectors
from detectors import compiled

REPO = Path(__file__).resolve().parents[2]

# Every reading of the shipped DAIAD slice through a fresh bank per meter, then the same homes with
# every 97th register pushed up by a burst (spikes, glitches, resets): the findings and each final
# state, as one digest, and whether the compiled modules ran.
REPLAY = r"""
import csv, hashlib, json, sys
from datetime import datetime
import detectors
from detectors import DetectorBank, Observation

rows = list(csv.DictReader(open(sys.argv[1], encoding="utf-8")))
digest, kinds = hashlib.sha256(), {}
for burst in (0.0, 900.0):
    banks = {}
    for index, row in enumerate(rows):
        meter = row["meter_id"]
        bank = banks.setdefault(meter, DetectorBank(tz="Europe/Madrid"))
        register = float(row["register_l"]) + (burst if index % 97 == 0 else 0.0)
        flags = frozenset({"leak"}) if burst and index % 1000 == 0 else frozenset()
        for finding in bank.update(Observation(meter, datetime.fromisoformat(row["ts"]), register, flags)):
            kinds[finding.kind] = kinds.get(finding.kind, 0) + 1
            digest.update(repr((meter, finding.transition, finding.kind, finding.severity, finding.since,
                                finding.at, finding.explanation_en, sorted(finding.facts.items()))).encode())
    for meter, bank in sorted(banks.items()):
        digest.update(bank.dump())
        digest.update(repr([(f.kind, f.transition) for f in bank.advance(2e9)]).encode())
print(json.dumps({"compiled": detectors.COMPILED, "digest": digest.hexdigest(), "kinds": kinds}))
"""


def replay(*, pure: bool) -> dict[str, object]:
    env = {**os.environ, compiled.PURE_ENV: "1" if pure else "0"}
    done = subprocess.run(
        [sys.executable, "-c", REPLAY, str(REPO / "tests" / "data" / "daiad_slice.csv")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_the_compiled_detectors_run_unless_plain_python_is_asked_for() -> None:
    # `make install` compiles them: on a machine where that failed, this says so.
    origin = detectors.bank.__spec__.origin if detectors.bank.__spec__ else None
    if compiled.pure_requested():
        assert not detectors.COMPILED and origin == str(compiled.PACKAGE_DIR / "bank.py")
    else:
        assert detectors.COMPILED, "no compiled detectors: run `make install` (needs a C compiler)"
        assert origin == str(compiled.BUILD_DIR / f"bank{compiled.ext_suffix()}")


def test_compiled_and_plain_python_find_the_same_and_keep_the_same_state() -> None:
    plain, fast = replay(pure=True), replay(pure=False)
    assert plain["compiled"] is False and fast["compiled"] is True
    assert fast["digest"] == plain["digest"]
    assert fast["kinds"] == plain["kinds"]
    kinds = plain["kinds"]
    assert isinstance(kinds, dict) and len(kinds) >= 4, kinds  # a run that exercises most detectors


@pytest.fixture
def build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the sources with a stamp that matches them, as the build writes it."""
    package = tmp_path / "detectors"
    package.mkdir()
    for name in compiled.COMPILED_MODULES:
        shutil.copy2(compiled.PACKAGE_DIR / f"{name}.py", package)
    monkeypatch.setattr(compiled, "PACKAGE_DIR", package)
    monkeypatch.setattr(compiled, "BUILD_DIR", package / "_compiled")
    monkeypatch.setattr(compiled, "STAMP", package / "_compiled" / "stamp.json")
    monkeypatch.setattr(compiled, "SHARED_LIB", "shouwang_test_no_such_runtime")
    monkeypatch.delenv(compiled.PURE_ENV, raising=False)
    compiled.BUILD_DIR.mkdir()
    stamp = {"ext_suffix": compiled.ext_suffix(), "sources": compiled.source_digests()}
    compiled.STAMP.write_text(json.dumps(stamp), encoding="utf-8")
    return package


def test_a_build_that_matches_its_sources_goes_first_on_the_path(build: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, compiled.SHARED_LIB, types.ModuleType(compiled.SHARED_LIB))  # its runtime
    path = [str(build)]
    assert compiled.use_compiled(path) is True
    assert path == [str(compiled.BUILD_DIR), str(build)]


def test_a_build_without_its_runtime_is_not_used(build: Path) -> None:
    path = [str(build)]
    with pytest.warns(RuntimeWarning, match="could not be loaded"):
        assert compiled.use_compiled(path) is False
    assert path == [str(build)]


def test_a_build_older_than_its_sources_is_not_used(build: Path) -> None:
    with (build / "spike.py").open("a", encoding="utf-8") as source:
        source.write("\n# edited after the build\n")
    path = [str(build)]
    with pytest.warns(RuntimeWarning, match="older than their sources"):
        assert compiled.use_compiled(path) is False
    assert path == [str(build)]


def test_a_build_for_another_python_is_not_used(build: Path) -> None:
    stamp = json.loads(compiled.STAMP.read_text(encoding="utf-8"))
    compiled.STAMP.write_text(json.dumps({**stamp, "ext_suffix": ".cpython-399-x86_64-linux-gnu.so"}), encoding="utf-8")
    with pytest.warns(RuntimeWarning, match="another Python"):
        assert compiled.use_compiled([str(build)]) is False


def test_no_build_or_plain_python_asked_for_runs_the_sources(build: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(compiled.PURE_ENV, "1")
    assert compiled.use_compiled([str(build)]) is False
    monkeypatch.delenv(compiled.PURE_ENV)
    compiled.STAMP.unlink()
    assert compiled.use_compiled([str(build)]) is False


def test_a_damaged_stamp_or_a_missing_source_runs_the_sources(build: Path) -> None:
    compiled.STAMP.write_text("[]", encoding="utf-8")  # JSON, but not what the build writes
    with pytest.warns(RuntimeWarning, match="another Python"):
        assert compiled.use_compiled([str(build)]) is False
    stamp = {"ext_suffix": compiled.ext_suffix(), "sources": compiled.source_digests()}
    compiled.STAMP.write_text(json.dumps(stamp), encoding="utf-8")
    (build / "spike.py").unlink()
    with pytest.warns(RuntimeWarning, match="older than their sources"):
        assert compiled.use_compiled([str(build)]) is False
