"""deploy/systemd/ for the broker-less production layout: the units pass `systemd-analyze verify` (offline, in a
throwaway root folder that holds the system's own units and the installed `shouwang`; no running systemd is
needed) with no warning at all, stay hardened (exposure level at most 2.0 by `systemd-analyze security`), run
commands the CLI knows, and the environment file example holds only real settings that validate."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from shouwang.settings import REPO_ROOT, Settings
from tests.ops.cli_args import parse_with_the_cli

SYSTEMD_DIR = REPO_ROOT / "deploy" / "systemd"
UNITS = sorted(SYSTEMD_DIR.glob("*.service"))
LONG_RUNNING = ("shouwang-worker.service", "shouwang-router.service", "shouwang-api.service")
INSTALLED = "/opt/shouwang/bin/shouwang"  # where docs/DEPLOY.md installs the CLI


def systemd_analyze(*args: str) -> subprocess.CompletedProcess[str]:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.fail("systemd-analyze is not installed: run scripts/ensure-test-tools.sh (make test does)")
    return subprocess.run([path, *args], capture_output=True, text=True, timeout=120)


def directives(unit: Path) -> dict[str, list[str]]:
    """``Section.Key`` → its values in order (a key may repeat, as ExecStart= of a oneshot does)."""
    found: dict[str, list[str]] = {}
    section = ""
    for line in unit.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.setdefault(f"{section}.{key}", []).append(value)
    return found


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A filesystem root with the system's units (targets the units order against), the units installed as
    docs/DEPLOY.md says, and an executable where the CLI is installed (verify checks that it is one)."""
    folder = tmp_path_factory.mktemp("root")
    system = Path("/usr/lib/systemd/system")
    assert system.is_dir(), "no system units beside systemd-analyze"
    shutil.copytree(system, folder / "usr/lib/systemd/system", symlinks=True)
    (folder / "etc/systemd/system").mkdir(parents=True)
    for unit in UNITS:
        shutil.copy(unit, folder / "etc/systemd/system" / unit.name)
    binary = folder / INSTALLED.lstrip("/")
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    return folder


def verify(root: Path, *names: str) -> subprocess.CompletedProcess[str]:
    paths = [str(root / "etc/systemd/system" / name) for name in names]
    return systemd_analyze("verify", "--man=no", "--generators=no", f"--root={root}", *paths)


@pytest.mark.tools
def test_the_units_pass_systemd_analyze_verify_without_a_warning(root: Path) -> None:
    assert {unit.name for unit in UNITS} == {*LONG_RUNNING, "shouwang-setup.service"}
    result = verify(root, *(unit.name for unit in UNITS))
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr
    # verify only warns (exit 0) on a misspelt directive: the test's "no output at all" is what catches it.
    misspelt = root / "etc/systemd/system/shouwang-misspelt.service"
    misspelt.write_text((SYSTEMD_DIR / "shouwang-api.service").read_text().replace("ProtectSystem=", "ProtectSytem="))
    try:
        warned = verify(root, misspelt.name)
    finally:
        misspelt.unlink()
    assert "Unknown key 'ProtectSytem'" in warned.stderr, warned.stderr


@pytest.mark.tools
@pytest.mark.parametrize("name", LONG_RUNNING)
def test_each_service_is_hardened(root: Path, name: str) -> None:
    unit = directives(SYSTEMD_DIR / name)
    for key, value in {
        "Service.User": "shouwang",
        "Service.NoNewPrivileges": "yes",
        "Service.ProtectSystem": "strict",
        "Service.ProtectHome": "yes",
        "Service.PrivateTmp": "yes",
        "Service.Restart": "on-failure",
        "Service.EnvironmentFile": "/etc/shouwang/shouwang.env",
        "Service.StateDirectory": "shouwang",
        "Unit.Requires": "shouwang-setup.service",
    }.items():
        assert unit.get(key) == [value], (name, key, unit.get(key))
    assert "shouwang-setup.service" in unit["Unit.After"][0].split()
    path = str(root / "etc/systemd/system" / name)
    scored = systemd_analyze("security", "--offline=yes", f"--root={root}", "--threshold=20", path)
    assert scored.returncode == 0, scored.stdout[-3000:] + scored.stderr
    assert f"Overall exposure level for {name}: 1." in scored.stdout, scored.stdout[-500:]


def test_each_unit_runs_a_command_of_the_cli() -> None:
    commands = {
        unit.name: [parse_with_the_cli(line.split()[1:])[0] for line in directives(unit)["Service.ExecStart"]]
        for unit in UNITS
    }
    assert commands == {
        "shouwang-worker.service": ["shouwang worker"],
        "shouwang-router.service": ["shouwang router"],
        "shouwang-api.service": ["shouwang api"],
        "shouwang-setup.service": ["shouwang db-upgrade", "shouwang topics"],
    }
    for unit in UNITS:
        assert all(line.split()[0] == INSTALLED for line in directives(unit)["Service.ExecStart"]), unit.name


def test_the_environment_file_example_holds_valid_settings_for_an_external_kafka_and_postgresql(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values: dict[str, str] = {}
    for line in (SYSTEMD_DIR / "shouwang.env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    known = {f"SHOUWANG_{name.upper()}" for name in Settings.model_fields}
    assert set(values) <= known, f"not settings: {sorted(set(values) - known)}"
    for name in [n for n in os.environ if n.startswith("SHOUWANG_")]:
        monkeypatch.delenv(name)
    settings = Settings(**{name.removeprefix("SHOUWANG_").lower(): value for name, value in values.items()})
    assert not settings.uses_embedded_broker and len(settings.bootstrap_servers.split(",")) == 3
    assert settings.replication_factor == 3
    assert settings.store_url.startswith("postgresql+psycopg://")
    assert settings.public_url.startswith("https://") and settings.log_format == "json"
