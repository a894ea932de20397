"""Compile the household detectors to C with mypyc (run by ``make install``; about a minute).

    .venv/bin/python scripts/compile_detectors.py

Writes ``detectors/_compiled/``: one extension module per name in
``detectors.compiled.COMPILED_MODULES``, mypyc's runtime for them, and ``stamp.json`` with a
digest of each source, written last, so a build cut short is never used. ``detectors/compiled.py``
loads them only while those digests match the sources. The build runs in a scratch directory
(mypyc's setup must not read the project's own pyproject.toml) and needs a C compiler and
Python's headers; when it fails, it says why in one line and the detectors run as plain Python.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["SHOUWANG_DETECTORS_PURE"] = "1"  # this process only reads the sources: no word on an old build

from detectors.compiled import BUILD_DIR, COMPILED_MODULES, PACKAGE_DIR, SHARED_LIB, STAMP, ext_suffix, source_digests

SETUP = """
from setuptools import setup
from mypyc.build import mypycify

setup(name="shouwang-compiled-detectors", script_args=["build_ext", "--inplace"],
      ext_modules=mypycify(["--ignore-missing-imports", *{sources!r}], opt_level="3", group_name="detectors"))
"""


def compile_into(scratch: Path) -> dict[str, str]:
    """Build in ``scratch``, a copy of the package's sources; returns the digests of what was built."""
    shutil.copytree(PACKAGE_DIR, scratch / "detectors", ignore=shutil.ignore_patterns("_compiled", "__pycache__"))
    digests = source_digests(scratch / "detectors")  # of the copy: a source edited meanwhile is not claimed
    sources = [f"detectors/{name}.py" for name in COMPILED_MODULES]
    (scratch / "setup.py").write_text(SETUP.format(sources=sources), encoding="utf-8")
    done = subprocess.run([sys.executable, "setup.py"], cwd=scratch, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line for line in (done.stdout + done.stderr).splitlines() if "error" in line.lower()]
        raise RuntimeError(lines[0] if lines else f"mypyc exited with {done.returncode}")
    return digests


def install(built: Path, digests: dict[str, str], began: float) -> None:
    """Replace ``detectors/_compiled`` with the new build; the stamp goes in last, dated when the
    build began, so make compiles again if a source was edited while it ran."""
    shutil.rmtree(BUILD_DIR, ignore_errors=True)
    BUILD_DIR.mkdir(parents=True)
    suffix = ext_suffix()
    shutil.copy2(built / f"{SHARED_LIB}{suffix}", BUILD_DIR)
    for name in COMPILED_MODULES:
        shutil.copy2(built / "detectors" / f"{name}{suffix}", BUILD_DIR)
    STAMP.write_text(json.dumps({"ext_suffix": suffix, "sources": digests}, indent=1), encoding="utf-8")
    os.utime(STAMP, (began, began))


def main() -> int:
    began, started_at = time.monotonic(), time.time()
    print("compiling the household detectors with mypyc (about a minute)…", file=sys.stderr, flush=True)
    try:
        with tempfile.TemporaryDirectory(prefix="shouwang-mypyc-") as scratch:
            digests = compile_into(Path(scratch))
            install(Path(scratch), digests, started_at)
    except (RuntimeError, OSError) as exc:
        shutil.rmtree(BUILD_DIR, ignore_errors=True)
        print(f"shouwang: the detectors were not compiled ({exc}); they run as plain Python, slower", file=sys.stderr)
        return 0  # the service works without it
    print(f"compiled {len(COMPILED_MODULES)} detector modules in {time.monotonic() - began:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
