"""The store's schema: Alembic migrations create exactly what the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from alerts.db import Store, upgrade
from alerts.models import Base


def test_migrations_match_the_models(store: Store) -> None:
    upgrade(store.url)  # a second upgrade is a no-op
    with store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_times_come_back_aware_in_utc(store: Store) -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from alerts import admin

    shanghai = timezone(timedelta(hours=8))
    with store.transaction() as session:
        home = admin.create_household(
            session,
            name="H",
            timezone="Asia/Shanghai",
            grid_cell="C1",
            consent_given_by="elder",
            consent_given_at=datetime(2026, 3, 1, 9, tzinfo=shanghai),
            consent_scope="alerts",
        )
        home_id = home.id
    with store.transaction() as session:
        from alerts.models import Household

        loaded = session.get(Household, home_id)
        assert loaded is not None
        assert loaded.consent_given_at == datetime(2026, 3, 1, 1, tzinfo=UTC)
        assert loaded.consent_given_at.tzinfo is not None
