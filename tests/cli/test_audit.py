"""``shouwang audit export`` on a SQLite store: the events matching the filters, oldest first, one JSON line
each, with a progress line and a count; the export is itself on the trail; a bad filter is one line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from alerts.audit import Actor, AuditEvent, record
from alerts.db import Store
from cli import audit as audit_cli
from cli.main import app
from shouwang.settings import get_settings

T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    values = {"SHOUWANG_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}", "SHOUWANG_VAR_DIR": str(tmp_path)}
    get_settings.cache_clear()
    yield values
    get_settings.cache_clear()


@pytest.fixture
def store(env: dict[str, str]) -> Iterator[Store]:
    handle = Store(env["SHOUWANG_DATABASE_URL"])
    with handle.transaction() as session:
        grid_worker = Actor("key_0123456789abcdef", "grid_worker", "req-0000001", "10.0.0.7")
        for hour, home in enumerate(["hh_a", "hh_b", "hh_a", "hh_a"]):
            record(
                session,
                grid_worker,
                "household.read",
                "household",
                home,
                household_id=home,
                now=T0 + timedelta(hours=hour),
            )
        record(
            session,
            grid_worker,
            "household.list",
            "household",
            households=["hh_a", "hh_b"],
            now=T0 + timedelta(hours=5),
        )
    yield handle
    handle.close()


def shouwang(env: dict[str, str], *args: str) -> Result:
    get_settings.cache_clear()
    return CliRunner().invoke(app, ["audit", "export", *args], env=env)


def test_export_writes_the_matching_events_oldest_first(
    env: dict[str, str], store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_cli, "BATCH", 2)  # several batches, so the progress line moves
    out = tmp_path / "audit.jsonl"
    since, until = (T0 + timedelta(minutes=30)).isoformat(), (T0 + timedelta(hours=6)).isoformat()
    result = shouwang(env, "--household", "hh_a", "--since", since, "--until", until, "--out", str(out))
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    # hh_a's reads after 01:30 UTC (03:00 and 04:00, not 01:00) and the list that returned it
    assert [(e["action"], e["object_id"], e["at"][11:16]) for e in lines] == [
        ("household.read", "hh_a", "03:00"),
        ("household.read", "hh_a", "04:00"),
        ("household.list", None, "06:00"),
    ]
    assert lines[0]["actor"] == "key_0123456789abcdef" and lines[0]["source"] == "10.0.0.7"
    assert "exported 2/3" in result.stderr and "exported 3/3" in result.stderr
    assert "3 audit event(s) written" in result.stdout
    with store.transaction() as session:
        export = session.scalars(select(AuditEvent).where(AuditEvent.action == "audit.export")).one()
        assert (
            export.actor.startswith("cli") and export.household_id == "hh_a" and (export.detail or {}).get("count") == 3
        )

    everything = tmp_path / "all.jsonl"
    assert shouwang(env, "--out", str(everything)).exit_code == 0
    assert len(everything.read_text(encoding="utf-8").splitlines()) == 6  # five events and the first export


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "2026-12-01T00:00"], "--since"),
        (["--since", "2026-12-02T00:00+08:00", "--until", "2026-12-01T00:00+08:00"], "before --until"),
        (["--out", "/no/such/folder/audit.jsonl"], "no such folder"),
    ],
)
def test_a_bad_option_is_one_line(env: dict[str, str], tmp_path: Path, args: list[str], message: str) -> None:
    result = shouwang(env, "--out", str(tmp_path / "x.jsonl"), *args)
    assert result.exit_code == 1 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.jsonl").exists()
