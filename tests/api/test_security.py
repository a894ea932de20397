"""Durable and safe by default: API responses carry nosniff and no-store, the interactive docs are off unless
SHOUWANG_API_DOCS turns them on, a generated first operator key goes to an owner-only file (the log says
where, never the key), and an admin token shorter than 32 characters is refused at start in one line."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.app import create_app
from api.auth import FIRST_KEY_FILE
from shouwang.settings import Settings
from tests.api.conftest import ADMIN_TOKEN, bearer
from tests.api.test_console import console_settings


def test_api_responses_carry_nosniff_and_no_store(tmp_path: Path) -> None:
    with TestClient(create_app(console_settings(tmp_path))) as client:
        for response in (
            client.get("/healthz"),
            client.get("/v1/households", headers=bearer(ADMIN_TOKEN)),
            client.get("/v1/households"),  # a 401 too
        ):
            assert response.headers["x-content-type-options"] == "nosniff", response.url
            assert response.headers["cache-control"] == "no-store", response.url


def test_the_interactive_docs_are_off_unless_turned_on(tmp_path: Path) -> None:
    paths = ("/docs", "/redoc", "/openapi.json")
    with TestClient(create_app(console_settings(tmp_path / "off"))) as client:
        assert [client.get(path).status_code for path in paths] == [404, 404, 404]
    with TestClient(create_app(console_settings(tmp_path / "on", api_docs=True))) as client:
        assert [client.get(path).status_code for path in paths] == [200, 200, 200]


def test_the_first_operator_key_goes_to_an_owner_only_file_never_to_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    var_dir = tmp_path / "var"
    settings = console_settings(var_dir, admin_token=None)
    with caplog.at_level(logging.INFO), TestClient(create_app(settings)) as client:
        path = var_dir / FIRST_KEY_FILE
        token = path.read_text().strip()
        assert client.get("/v1/households", headers=bearer(token)).status_code == 200
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    printed = capsys.readouterr()
    assert str(path) in caplog.text
    assert token not in caplog.text and token not in printed.out + printed.err
    secret_part = token.rsplit("_", 1)[-1]
    assert secret_part not in caplog.text and secret_part not in printed.out + printed.err


def test_a_short_admin_token_is_refused_at_start_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        Settings(admin_token="x" * 31)
    assert Settings(admin_token="x" * 32).admin_token is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOUWANG_")}
    env |= {"SHOUWANG_ADMIN_TOKEN": "short-admin-token", "SHOUWANG_VAR_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "cli", "api"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "SHOUWANG_ADMIN_TOKEN" in lines[0] and "32" in lines[0], done.stderr
    assert "short-admin-token" not in done.stderr + done.stdout
