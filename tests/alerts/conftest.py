"""Alert-store fixtures: every store test runs on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts import admin
from alerts.db import Store
from alerts.models import Household, Recipient
from alerts.pipeline import RouterConfig
from alerts.policy import parse_policy
from alerts.secret_box import SecretBox, new_key

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
LOOPBACK = ("127.0.0.0/8",)
# Seals the tests' webhook secrets; the dispatchers of the tests open them with it.
BOX = SecretBox([new_key()])


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("postgres_db_url")
    handle = Store(url)
    yield handle
    handle.close()


@pytest.fixture
def config() -> RouterConfig:
    return RouterConfig(
        policy=parse_policy(None), repeat_interval=timedelta(hours=4), public_url="https://shouwang.example"
    )


@dataclass
class World:
    """Two households in one grid cell, each with a family member; staff around them."""

    home_a: Household
    home_b: Household
    family_a: Recipient
    family_b: Recipient
    grid_worker: Recipient
    other_cell_worker: Recipient
    supervisor: Recipient
    operator: Recipient
    secrets: dict[str, str]


def build_world(store: Store, receiver_url: str = "http://127.0.0.1:9/hook") -> World:
    secrets: dict[str, str] = {}
    with store.transaction() as session:

        def household(name: str, meter: str, cell: str) -> Household:
            home = admin.create_household(
                session,
                name=name,
                timezone="Asia/Shanghai",
                grid_cell=cell,
                community="FT-Lianhua",
                consent_given_by=f"{name} (the elder)",
                consent_given_at=T0 - timedelta(days=30),
                consent_scope="water-use alerts to family and grid worker",
            )
            admin.add_meter(session, home, meter_id=meter)
            return home

        def person(name: str, role: str) -> Recipient:
            recipient, secret = admin.create_recipient(
                session, name=name, role=role, webhook_url=receiver_url, allow=LOOPBACK, box=BOX
            )
            assert secret is not None
            secrets[recipient.id] = secret
            return recipient

        home_a = household("Home A", "MA", "C1")
        home_b = household("Home B", "MB", "C1")
        family_a, family_b = person("Daughter A", "family"), person("Son B", "family")
        grid_worker, other_worker = person("Grid worker C1", "grid_worker"), person("Grid worker C2", "grid_worker")
        supervisor, operator = person("Supervisor", "supervisor"), person("Operator", "operator")
        admin.subscribe(session, family_a, household_id=home_a.id)
        admin.subscribe(session, family_b, household_id=home_b.id)
        admin.subscribe(session, grid_worker, grid_cell="C1")
        admin.subscribe(session, other_worker, grid_cell="C2")
        admin.subscribe(session, supervisor, community="FT-Lianhua")
        admin.subscribe(session, operator)
    return World(home_a, home_b, family_a, family_b, grid_worker, other_worker, supervisor, operator, secrets)
