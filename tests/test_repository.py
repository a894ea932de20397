"""Repository-level contracts: the user's layout, one-way dependencies, the compose file."""

from __future__ import annotations

import ast
import subprocess

import yaml

from shouwang.settings import REPO_ROOT, Settings

# The layers, bottom first: a package may import only packages of a lower layer (never a sibling of
# its own layer, never one above). The composition root, ``cli``, is the only package that sees all.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"detectors"}),  # pure: numpy and scikit-learn
    frozenset({"shouwang"}),  # the shared core: settings, event schemas, topic names, logs
    frozenset({"streams", "alerts"}),  # the worker; the router and the alert store
    frozenset({"api"}),  # the HTTP API, over the alert store
    frozenset({"cli"}),  # the `shouwang` command, the supervisor, the embedded broker
)
PACKAGES = tuple(sorted(set().union(*LAYERS)))
LAYER_OF = {package: index for index, layer in enumerate(LAYERS) for package in layer}


def _imports(package: str, *, skip: tuple[str, ...] = ()) -> set[str]:
    return {imported for _path, _line, imported in _import_sites(package, skip=skip)}


def _import_sites(package: str, *, skip: tuple[str, ...] = ()) -> list[tuple[str, int, str]]:
    """Every absolute import in the package, anywhere in a module (functions included): (file, line,
    imported top-level name). Relative imports stay inside their package."""
    sites: list[tuple[str, int, str]] = []
    for path in sorted((REPO_ROOT / package).rglob("*.py")):
        if path.name in skip:
            continue
        where = str(path.relative_to(REPO_ROOT))
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                sites.extend((where, node.lineno, alias.name.split(".")[0]) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                sites.append((where, node.lineno, node.module.split(".")[0]))
    return sites


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


def test_every_import_between_packages_points_down() -> None:
    upward = []
    for package in PACKAGES:
        for where, line, imported in _import_sites(package):
            if imported in LAYER_OF and imported != package and LAYER_OF[imported] >= LAYER_OF[package]:
                upward.append(f"{where}:{line} imports {imported}")
    assert not upward, "imports that do not point down:\n" + "\n".join(upward)


def test_every_top_level_package_has_a_layer() -> None:
    # a new package must be placed in LAYERS, or the rule above would not see its imports
    found = {path.parent.name for path in REPO_ROOT.glob("*/__init__.py")}
    assert found - {"tests"} == set(PACKAGES)


def test_files_stay_small() -> None:
    for package in (*PACKAGES, "tests", "bench", "scripts"):
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


def _make_plan(target: str) -> str:
    """The commands `make TARGET` would run on a fresh clone (nothing installed, nothing built)."""
    done = subprocess.run(
        ["make", "-n", "-B", target], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


def test_make_up_installs_only_what_the_service_needs() -> None:
    up, test = _make_plan("up"), _make_plan("test")
    for script in ("ensure-test-tools", "ensure-postgres", "ensure-prometheus", "ensure-chromium"):
        assert script not in up, f"make up runs {script}: a test-only tool"
    assert "ensure-tools.sh" in up and "ensure-test-tools.sh" in test


def test_make_test_checks_lint_format_and_types() -> None:
    test = _make_plan("test")
    for command in ("ruff check", "ruff format --check", "mypy", "pytest"):
        assert command in test, f"make test does not run {command}"
