"""``shouwang keys issue`` on a SQLite store: an operator key the API's /metrics accepts, written owner-only to
--token-file and kept there across runs while it is valid (a revoked one is replaced), on the audit trail;
printed once without --token-file; a bad option is one line."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner, Result

from alerts.audit import AuditEvent
from alerts.db import Store
from alerts.models import ApiKey
from api.app import create_app
from api.auth import revoke
from cli.broker import free_port
from cli.main import app
from shouwang.settings import Settings, get_settings


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    values = {"SHOUWANG_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}", "SHOUWANG_VAR_DIR": str(tmp_path)}
    get_settings.cache_clear()
    yield values
    get_settings.cache_clear()


def shouwang(env: dict[str, str], *args: str) -> Result:
    get_settings.cache_clear()
    return CliRunner().invoke(app, ["keys", "issue", *args], env=env)


def metrics_status(env: dict[str, str], token: str) -> int:
    """What the real API answers to GET /metrics with this bearer token (its Kafka producer never connects:
    /metrics does not need it)."""
    settings = Settings(
        database_url=env["SHOUWANG_DATABASE_URL"],
        var_dir=Path(env["SHOUWANG_VAR_DIR"]),
        kafka_bootstrap=f"127.0.0.1:{free_port()}",
    )
    with TestClient(create_app(settings)) as client:
        return client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).status_code


def keys(env: dict[str, str]) -> list[ApiKey]:
    store = Store(env["SHOUWANG_DATABASE_URL"])
    try:
        with store.transaction() as session:
            found = list(session.scalars(select(ApiKey).where(ApiKey.name == "prometheus").order_by(ApiKey.created_at)))
            session.expunge_all()
            return found
    finally:
        store.close()


def test_a_token_file_gets_one_valid_key_kept_across_runs_and_replaced_once_revoked(
    env: dict[str, str], tmp_path: Path
) -> None:
    token_file = tmp_path / "api-token"
    first = shouwang(env, "prometheus", "--token-file", str(token_file))
    assert first.exit_code == 0, first.output
    token = token_file.read_text().strip()
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token not in first.output  # the token goes to the file only
    assert metrics_status(env, token) == 200
    [key] = keys(env)
    assert key.role == "operator" and key.id in first.stdout and key.created_by is None

    again = shouwang(env, "prometheus", "--token-file", str(token_file))
    assert again.exit_code == 0 and f"kept key {key.id}" in again.stdout
    assert token_file.read_text().strip() == token and len(keys(env)) == 1

    store = Store(env["SHOUWANG_DATABASE_URL"])
    with store.transaction() as session:
        revoke(session.get(ApiKey, key.id))
        issued = session.scalars(select(AuditEvent).where(AuditEvent.action == "key.issue")).all()
        assert [(e.object_id, e.role) for e in issued] == [(key.id, "operator")] and issued[0].actor.startswith("cli")
    store.close()
    assert metrics_status(env, token) == 401

    replaced = shouwang(env, "prometheus", "--token-file", str(token_file))
    assert replaced.exit_code == 0 and "issued operator key" in replaced.stdout
    new_token = token_file.read_text().strip()
    assert new_token != token and len(keys(env)) == 2
    assert metrics_status(env, new_token) == 200


def test_a_token_of_another_name_in_the_file_is_not_kept(env: dict[str, str], tmp_path: Path) -> None:
    token_file = tmp_path / "api-token"
    assert shouwang(env, "someone-else", "--token-file", str(token_file)).exit_code == 0
    other = token_file.read_text()
    assert shouwang(env, "prometheus", "--token-file", str(token_file)).exit_code == 0
    assert token_file.read_text() != other and len(keys(env)) == 1


def test_without_a_token_file_the_token_is_printed_once(env: dict[str, str]) -> None:
    result = shouwang(env, "prometheus")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.startswith("swk_key_") and "shown only now" in result.stderr
    assert metrics_status(env, token) == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["prometheus", "--token-file", "/no/such/folder/api-token"], "no such folder"),
        (["   "], "1 to 200 characters"),
    ],
)
def test_a_bad_option_is_one_line(env: dict[str, str], args: list[str], message: str) -> None:
    result = shouwang(env, *args)
    assert result.exit_code == 1 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert keys(env) == []
