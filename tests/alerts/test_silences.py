"""Silences in the store (SQLite and PostgreSQL): what may be set, the cap, expiry kept as history, and
the router muting what a silence matches while it runs — and no longer once it is expired."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from alerts import admin
from alerts.db import Store
from alerts.models import Alert, Silence
from alerts.pipeline import RouterConfig
from tests.alerts.conftest import T0, World, build_world
from tests.alerts.test_pipeline import event, route


@pytest.fixture
def world(store: Store) -> World:
    return build_world(store)


def silence(store: Store, now: object = T0, **fields: object) -> str:
    values: dict[str, object] = {
        "created_by": "operator:key_admin",
        "reason": "maintenance: meter swap",
        "starts_at": T0,
        "ends_at": T0 + timedelta(hours=2),
        "now": now,
        "max_days": 7,
        **fields,
    }
    with store.transaction() as session:
        return admin.add_silence(session, **values).id  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({}, "at least one matcher"),
        ({"kind": "no_usage", "reason": "   "}, "needs a reason"),
        ({"kind": "flood"}, "unknown kind 'flood'; kinds are continuous_flow, data_quality"),
        ({"household_id": "hh_0000000000000000"}, "unknown household hh_0000000000000000"),
        ({"meter_id": "NOPE-1"}, "unknown meter NOPE-1"),
        ({"meter_id": "MA", "grid_cell": "C2"}, "is in grid cell C1, not C2"),
        ({"meter_id": "MA", "ends_at": T0 - timedelta(minutes=1)}, "is not in the future"),
        ({"meter_id": "MA", "starts_at": T0 + timedelta(hours=3)}, "end after it starts"),
        ({"meter_id": "MA", "starts_at": T0 - timedelta(hours=3)}, "is in the past"),
        (
            {"meter_id": "MA", "ends_at": T0 + timedelta(days=7, minutes=1)},
            "at most 7 days (SHOUWANG_SILENCE_MAX_DAYS)",
        ),
        (
            {"meter_id": "MA", "starts_at": T0 + timedelta(days=1), "ends_at": T0 + timedelta(days=8, hours=1)},
            "7.0 days after its start",
        ),
    ],
)
def test_a_silence_that_cannot_be_is_refused_with_its_reason_and_nothing_is_stored(
    store: Store, world: World, fields: dict[str, object], words: str
) -> None:
    with pytest.raises(admin.AdminError, match=None) as caught:
        silence(store, **fields)
    assert words in str(caught.value)
    with store.transaction() as session:
        assert session.scalars(select(Silence)).all() == []


def test_a_meter_of_another_household_is_refused(store: Store, world: World) -> None:
    with pytest.raises(admin.AdminError, match="is not a meter of household"):
        silence(store, household_id=world.home_a.id, meter_id="MB")


def test_the_cap_admits_exactly_its_length_and_counts_from_a_later_start(store: Store, world: World) -> None:
    silence(store, meter_id="MA", ends_at=T0 + timedelta(days=7))
    silence(store, meter_id="MA", starts_at=T0 + timedelta(days=2), ends_at=T0 + timedelta(days=9))
    silence(store, meter_id="MA", ends_at=T0 + timedelta(days=30), max_days=30)


def test_a_silence_mutes_what_it_matches_until_it_is_expired_and_stays_as_history(
    store: Store, config: RouterConfig, world: World
) -> None:
    silence_id = silence(store, household_id=world.home_a.id, kind="no_usage")
    muted = event("MA", since=T0 - timedelta(hours=1), at=T0 + timedelta(minutes=10))
    assert route(store, config, muted, T0 + timedelta(minutes=10)) == f"silenced:{silence_id}"
    other_kind = event("MA", kind="spike", since=T0 - timedelta(hours=1), at=T0 + timedelta(minutes=10))
    assert route(store, config, other_kind, T0 + timedelta(minutes=10)) == "notified"
    other_home = event("MB", since=T0 - timedelta(hours=1), at=T0 + timedelta(minutes=10))
    assert route(store, config, other_home, T0 + timedelta(minutes=10)) == "notified"

    expired_at = T0 + timedelta(minutes=20)
    with store.transaction() as session:
        assert [s.id for s in session.scalars(admin.find_silences(now=expired_at))] == [silence_id]
        assert admin.expire_silence(session.get_one(Silence, silence_id), now=expired_at)
        assert not admin.expire_silence(session.get_one(Silence, silence_id), now=expired_at + timedelta(minutes=1))
    later = T0 + timedelta(minutes=30)
    heard = event("MA", since=T0, at=later)
    assert route(store, config, heard, later) == "notified"
    with store.transaction() as session:
        alert = session.get_one(Alert, heard.alert_id)
        assert alert.silenced_by is None
        assert session.get_one(Alert, muted.alert_id).silenced_by == silence_id  # recorded, not notified
        assert list(session.scalars(admin.find_silences(now=later))) == []
        kept = list(session.scalars(admin.find_silences(now=later, include_expired=True)))
        assert [(s.id, s.ends_at, admin.silence_state(s, later)) for s in kept] == [(silence_id, expired_at, "expired")]


def test_find_silences_filters_by_matcher_and_shows_scheduled_ones(store: Store, world: World) -> None:
    on_meter = silence(store, meter_id="MA")
    on_cell = silence(store, grid_cell="C1", starts_at=T0 + timedelta(hours=1), ends_at=T0 + timedelta(hours=3))
    with store.transaction() as session:
        assert [s.id for s in session.scalars(admin.find_silences(now=T0, meter_id="MA"))] == [on_meter]
        scheduled = session.scalars(admin.find_silences(now=T0, grid_cell="C1")).one()
        assert (scheduled.id, admin.silence_state(scheduled, T0)) == (on_cell, "scheduled")
        assert {s.id for s in session.scalars(admin.find_silences(now=T0))} == {on_meter, on_cell}
