"""Migration 0009 on SQLite and PostgreSQL: a database made at 0008 with a plain webhook secret comes out
with the secret sealed (not in the database in plain text, opened by the key); without a usable key the
upgrade fails in one line and leaves the database at 0008 rather than half done."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from alerts.db import alembic_config, upgrade
from alerts.secret_box import SecretBox, new_key
from alerts.webhook_secrets import open_webhook_secrets
from alerts.webhooks import new_secret


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url_at_0008(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A database migrated to 0008 holding one webhook endpoint with its secret in plain text."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("postgres_db_url")
    command.upgrade(alembic_config(url), "0008")
    secret = new_secret()
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO recipients (id, name, role, created_at) VALUES ('rcp_1', 'Daughter', 'family', :now)"),
            {"now": "2026-12-01 08:00:00"},
        )
        connection.execute(
            text(
                "INSERT INTO webhook_endpoints (id, recipient_id, type, url, secret, status, created_at) "
                "VALUES ('ep_1', 'rcp_1', 'webhook', 'https://example.org/hook', :secret, 'active', :now)"
            ),
            {"secret": secret, "now": "2026-12-01 08:00:00"},
        )
    engine.dispose()
    yield url, secret


def _rows(url: str) -> tuple[str, list[tuple[object, ...]]]:
    engine = create_engine(url)
    with engine.connect() as connection:
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        rows = [tuple(row) for row in connection.execute(text("SELECT secret, sealed_config FROM webhook_endpoints"))]
    engine.dispose()
    return version, rows


def test_the_migration_seals_a_plain_secret(
    url_at_0008: tuple[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url, secret = url_at_0008
    key = new_key()
    monkeypatch.setenv("SHOUWANG_SECRET_KEYS", key)
    monkeypatch.setenv("SHOUWANG_VAR_DIR", str(tmp_path / "var"))
    upgrade(url)
    version, [(plain, sealed)] = _rows(url)
    assert version >= "0009"
    assert plain == "" and isinstance(sealed, str)
    assert secret not in sealed and secret.removeprefix("whsec_") not in sealed
    assert open_webhook_secrets(SecretBox([key]), sealed).current == secret


def test_without_a_usable_key_the_upgrade_fails_and_leaves_the_row_as_it_was(
    url_at_0008: tuple[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url, secret = url_at_0008
    monkeypatch.setenv("SHOUWANG_SECRET_KEYS", "not-a-fernet-key")
    monkeypatch.setenv("SHOUWANG_VAR_DIR", str(tmp_path / "var"))
    with pytest.raises(RuntimeError) as failed:
        upgrade(url)
    message = str(failed.value)
    assert "\n" not in message and "0009" in message and "key" in message
    assert _rows(url) == ("0008", [(secret, None)])
