"""``shouwang silence add|list|expire`` on a SQLite store: a silence it adds mutes the router's pipeline
until it is expired (kept as history); a bad one is one clear line on stderr and nothing is stored."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from alerts import admin
from alerts.audit import AuditEvent
from alerts.db import Store
from alerts.models import Silence, utcnow
from alerts.pipeline import RouterConfig
from alerts.policy import parse_policy
from cli.main import app
from shouwang.settings import get_settings
from tests.alerts.conftest import build_world
from tests.alerts.test_pipeline import event, route


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    values = {"SHOUWANG_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}", "SHOUWANG_VAR_DIR": str(tmp_path)}
    get_settings.cache_clear()
    yield values
    get_settings.cache_clear()


@pytest.fixture
def store(env: dict[str, str]) -> Iterator[Store]:
    handle = Store(env["SHOUWANG_DATABASE_URL"])
    yield handle
    handle.close()


def shouwang(env: dict[str, str], *args: str) -> Result:
    get_settings.cache_clear()
    return CliRunner().invoke(app, ["silence", *args], env=env)


def test_add_list_expire_and_the_router_mutes_only_while_it_runs(env: dict[str, str], store: Store) -> None:
    world = build_world(store)
    added = shouwang(env, "add", "--household", world.home_a.id, "--kind", "no_usage", "--until", "4h",
                     "--reason", "maintenance: meter swap", "--by", "operator on duty")  # fmt: skip
    assert added.exit_code == 0, added.output
    silence_id, state, _, matchers, by, reason = added.stdout.strip().split("\t")
    assert (state, matchers, by, reason) == (
        "active",
        f"household={world.home_a.id} kind=no_usage",
        "by operator on duty",
        "maintenance: meter swap",
    )
    listed = shouwang(env, "list")
    assert listed.exit_code == 0 and listed.stdout.startswith(silence_id)

    config = RouterConfig(policy=parse_policy(None), repeat_interval=timedelta(hours=4), public_url="https://x.example")
    now = utcnow()
    assert route(store, config, event("MA", since=now - timedelta(hours=2), at=now), now) == f"silenced:{silence_id}"
    assert route(store, config, event("MB", since=now - timedelta(hours=2), at=now), now) == "notified"

    expired = shouwang(env, "expire", silence_id)
    assert expired.exit_code == 0 and "\texpired\t" in expired.stdout, expired.output
    later = utcnow()
    assert route(store, config, event("MA", since=now - timedelta(hours=1), at=later), later) == "notified"
    assert shouwang(env, "list").stdout.strip() == "no silences"
    history = shouwang(env, "list", "--all")
    assert history.stdout.startswith(silence_id) and "\texpired\t" in history.stdout
    again = shouwang(env, "expire", silence_id)
    assert again.exit_code == 0 and "had already ended" in again.stdout
    with store.transaction() as session:  # in the audit trail as the login that ran it, once each
        trail = session.execute(select(AuditEvent.action, AuditEvent.actor, AuditEvent.object_id)).all()
    assert [(a, o) for a, _, o in trail] == [("silence.create", silence_id), ("silence.expire", silence_id)]
    assert all(actor.startswith("cli") for _, actor, _ in trail)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["add", "--reason", "x", "--until", "2h"], "at least one matcher"),
        (["add", "--grid-cell", "C1", "--reason", "x", "--until", "8d"], "at most 7 days (SHOUWANG_SILENCE_MAX_DAYS)"),
        (["add", "--household", "hh_0000000000000000", "--reason", "x", "--until", "2h"], "unknown household"),
        (["add", "--meter", "NOPE", "--reason", "x", "--until", "2h"], "unknown meter NOPE"),
        (["add", "--kind", "flood", "--reason", "x", "--until", "2h"], "kinds are continuous_flow"),
        (["add", "--kind", "spike", "--reason", " ", "--until", "2h"], "needs a reason"),
        (["add", "--kind", "spike", "--reason", "x", "--until", "tomorrow"], "--until: 'tomorrow' is not"),
        (["add", "--kind", "spike", "--reason", "x", "--until", "2020-01-01T00:00+08:00"], "not in the future"),
        (["expire", "sil_0000000000000000"], "unknown silence sil_0000000000000000"),
    ],
)
def test_a_bad_silence_is_one_clear_line_and_nothing_is_stored(
    env: dict[str, str], store: Store, args: list[str], words: str
) -> None:
    done = shouwang(env, *args)
    assert done.exit_code == 1
    assert done.stderr.startswith("shouwang: ") and words in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    with store.transaction() as session:
        assert session.scalars(select(Silence)).all() == []


def test_the_cap_is_the_setting(env: dict[str, str], store: Store) -> None:
    longer = shouwang({**env, "SHOUWANG_SILENCE_MAX_DAYS": "10"}, "add", "--grid-cell", "C1", "--reason", "works",
                      "--until", "8d")  # fmt: skip
    assert longer.exit_code == 0, longer.output
    shorter = shouwang({**env, "SHOUWANG_SILENCE_MAX_DAYS": "1"}, "add", "--grid-cell", "C1", "--reason", "works",
                       "--until", "25h")  # fmt: skip
    assert shorter.exit_code == 1 and "at most 1 days" in shorter.stderr


def test_as_a_user_runs_it_the_error_is_one_line_without_a_traceback(env: dict[str, str], store: Store) -> None:
    with store.transaction() as session:
        admin.add_silence(session, created_by="x", reason="x", grid_cell="C1", starts_at=utcnow(),
                          ends_at=utcnow() + timedelta(hours=1))  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "cli", "silence", "add", "--reason", "x", "--until", "2h"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "shouwang: a silence needs at least one matcher (household, meter, grid cell or kind): without one it "
        "would mute every alert"
    ]
    listed = subprocess.run(
        [sys.executable, "-m", "cli", "silence", "list"], env={**os.environ, **env}, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert listed.returncode == 0 and listed.stdout.count("sil_") == 1 and listed.stderr == ""
