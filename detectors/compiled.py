"""The household detectors compiled to C with mypyc, used when they match these very sources.

``scripts/compile_detectors.py`` (run by ``make install``) compiles the modules named in
``COMPILED_MODULES`` into ``detectors/_compiled/`` and records a digest of every source it
compiled. The source stays the one truth: the compiled modules are used only when those digests
still match the ``.py`` files beside them, so an edited detector is never shadowed by an old
build; otherwise, or without a build, or with ``SHOUWANG_DETECTORS_PURE=1``, the same modules
run as plain Python. Both give the same findings and states (tested); compiled, the bank's update
of a reading is about four times as fast, and the worker's own work 1.6 times (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
import warnings
from collections.abc import MutableSequence
from pathlib import Path

COMPILED_MODULES = (
    "bank",
    "base",
    "continuous_flow",
    "data_quality",
    "day_summary",
    "findings",
    "history",
    "intervals",
    "meter_flags",
    "meter_offline",
    "no_usage",
    "priors",
    "routine_change",
    "spike",
    "state",
    "timefmt",
)
PACKAGE_DIR = Path(__file__).resolve().parent
BUILD_DIR = PACKAGE_DIR / "_compiled"
STAMP = BUILD_DIR / "stamp.json"
SHARED_LIB = "detectors__mypyc"  # mypyc's runtime for the group, imported by every compiled module
PURE_ENV = "SHOUWANG_DETECTORS_PURE"


def ext_suffix() -> str:
    """The file ending of this interpreter's extension modules (its version and platform)."""
    return importlib.machinery.EXTENSION_SUFFIXES[0]


def source_digests(package_dir: Path | None = None) -> dict[str, str]:
    """sha256 of each compiled module's source (in this package, or a copy of it)."""
    directory = package_dir or PACKAGE_DIR
    return {name: hashlib.sha256((directory / f"{name}.py").read_bytes()).hexdigest() for name in COMPILED_MODULES}


def pure_requested() -> bool:
    # the words pydantic reads as true: SHOUWANG_DETECTORS_PURE is also a setting (shouwang/settings.py)
    return os.environ.get(PURE_ENV, "").strip().lower() in {"1", "on", "t", "true", "y", "yes"}


def use_compiled(package_path: MutableSequence[str]) -> bool:
    """Put the compiled modules first on the package's path when they match the sources; say why not
    (once, as a warning) when a build is there but does not match."""
    if pure_requested():
        return False
    try:
        recorded = json.loads(STAMP.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False  # never compiled: plain Python, nothing to say
    if not isinstance(recorded, dict):
        recorded = {}
    if recorded.get("ext_suffix") != ext_suffix():
        warnings.warn(
            "detectors: the compiled modules were built for another Python; running the plain "
            "Python ones (`make install` compiles them again)",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    try:
        current = source_digests()
    except OSError:
        current = {}  # a source missing: whatever was built, it is not built from what is here
    if recorded.get("sources") != current:
        warnings.warn(
            "detectors: the compiled modules are older than their sources; running the plain "
            "Python ones (`make install` compiles them again)",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    if SHARED_LIB not in sys.modules:  # loaded by path: the build directory need not be on sys.path
        try:
            spec = importlib.util.spec_from_file_location(SHARED_LIB, BUILD_DIR / f"{SHARED_LIB}{ext_suffix()}")
            if spec is None or spec.loader is None:
                raise ImportError("no loader for it")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        except (ImportError, OSError) as exc:
            warnings.warn(
                f"detectors: the compiled modules could not be loaded ({exc}); running the plain "
                "Python ones (`make install` compiles them again)",
                RuntimeWarning,
                stacklevel=2,
            )
            return False
        sys.modules[SHARED_LIB] = module
    package_path.insert(0, str(BUILD_DIR))
    return True
