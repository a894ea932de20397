"""Repository-level contracts: the user's layout, one-way dependencies, the compose file."""

from __future__ import annotations

import ast

import yaml

from shouwang.settings import REPO_ROOT, Settings

PACKAGES = ("shouwang", "streams", "detectors", "alerts", "api")


def _imports(package: str, *, skip: tuple[str, ...] = ()) -> set[str]:
    found: set[str] = set()
    for path in (REPO_ROOT / package).rglob("*.py"):
        if path.name in skip:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def test_layout_of_the_design_card() -> None:
    for name in ("streams", "detectors", "alerts", "api"):
        assert (REPO_ROOT / name / "__init__.py").is_file()
        assert (REPO_ROOT / "tests" / name).is_dir()
    for name in ("docker-compose.yml", "pyproject.toml", "README.md", "Makefile", ".ci/run"):
        assert (REPO_ROOT / name).is_file()


def test_detectors_are_pure() -> None:
    allowed = {"detectors", "numpy", "sklearn", "__future__"}
    stdlib = {
        "dataclasses",
        "datetime",
        "typing",
        "collections",
        "math",
        "enum",
        "statistics",
        "itertools",
        "functools",
        "bisect",
        "struct",
        "json",
        "zoneinfo",
        "abc",
        "heapq",
        "array",
        "base64",
        "hashlib",
        "pickle",
        "copy",
        "re",
        "unicodedata",
        "importlib",
    }  # importlib: reading package data (importlib.resources)
    # detectors/compiled.py reads files and the environment, once, to choose compiled code or plain
    # Python (the same source); the package's __init__ alone imports it, no detector does.
    imported = _imports("detectors", skip=("compiled.py",))
    assert imported <= allowed | stdlib, f"detectors imports {sorted(imported - allowed - stdlib)}"
    importers = {
        path.name for path in (REPO_ROOT / "detectors").rglob("*.py") if "detectors.compiled" in path.read_text()
    }
    assert importers == {"__init__.py"}


def test_dependencies_point_one_way() -> None:
    # The shared core imports none of the packages; only the CLI (the composition root) does.
    assert not _imports("shouwang", skip=("cli.py", "cli_kafka.py")) & {"api", "alerts", "streams", "detectors"}
    assert not _imports("streams") & {"api", "alerts"}
    assert not _imports("alerts") & {"api", "streams"}


def test_files_stay_small() -> None:
    for package in (*PACKAGES, "tests"):
        for path in (REPO_ROOT / package).rglob("*.py"):
            lines = len(path.read_text().splitlines())
            assert lines <= 500, f"{path.relative_to(REPO_ROOT)} has {lines} lines"


def test_compose_file_describes_the_stack() -> None:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    kafka_env = services["kafka"]["environment"]
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["worker"]["build"] == "."
    assert services["worker"]["environment"]["SHOUWANG_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert services["router"]["command"] == ["router"]
    assert services["router"]["environment"]["SHOUWANG_DATABASE_URL"].startswith("postgresql+psycopg://")
    # every SHOUWANG_ variable it sets must be a real setting
    known = {f"SHOUWANG_{name.upper()}" for name in Settings.model_fields}
    for service in services.values():
        for key in service.get("environment", {}):
            if key.startswith("SHOUWANG_"):
                assert key in known, f"{key} is not a setting"
    assert (REPO_ROOT / "Dockerfile").is_file()


def test_readme_documents_every_setting() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"SHOUWANG_{name.upper()}" in readme, f"README lacks SHOUWANG_{name.upper()}"
