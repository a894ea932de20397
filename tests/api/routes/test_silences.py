"""Silences through the API: one set by a grid worker mutes a matching alert in the router's pipeline
until it is expired; the cap; every matcher checked; a grid worker or supervisor never silences, sees or
expires anything outside their cells; families and devices not at all (tests/api/test_roles.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.api.conftest import World, app_of, expect

pytestmark = pytest.mark.kafka


def now() -> datetime:
    return datetime.now(UTC)


def until(**delta: float) -> str:
    return (now() + timedelta(**delta)).isoformat()


def silence_body(**matchers: Any) -> dict[str, Any]:
    return {"reason": "maintenance: meter swap", "until": until(hours=2), **matchers}


def alert_now(world: World, meter: str, kind: str = "no_usage") -> dict[str, Any]:
    """Raise an alert through the router's pipeline at the real clock (silences are set at it)."""
    alert_id = world.raise_alert(
        meter, kind=kind, since=now() - timedelta(hours=3, minutes=len(world.seeded)), at=now()
    )
    body: dict[str, Any] = world.op("GET", f"/v1/alerts/{alert_id}", 200)
    return body


def test_a_grid_workers_silence_mutes_the_matching_alert_until_it_is_expired(world: World) -> None:
    home, meter = world.fresh_home()
    created = expect(
        world.call("grid_worker", "POST", "/v1/silences", json=silence_body(household_id=home, kind="no_usage")), 201
    )
    assert created["state"] == "active" and created["household_id"] == home and created["kind"] == "no_usage"
    assert f"grid_worker:{world.key_ids['grid_worker']}" in created["created_by"]  # who: recorded, not given
    assert created["reason"] == "maintenance: meter swap"

    muted = alert_now(world, meter)
    assert muted["silenced_by"] == created["id"] and muted["notifications"] == []
    assert alert_now(world, meter, kind="continuous_flow")["silenced_by"] is None  # another kind is heard
    assert alert_now(world, world.meter_a)["silenced_by"] is None  # another home in the same cell is heard

    expired = expect(world.call("grid_worker", "DELETE", f"/v1/silences/{created['id']}"), 200)
    assert expired["state"] == "expired" and datetime.fromisoformat(expired["until"]) <= now()
    heard = alert_now(world, meter)
    assert heard["silenced_by"] is None and heard["notifications"] != []

    kept = world.op("GET", f"/v1/silences/{created['id']}", 200)  # history: never deleted
    assert kept["state"] == "expired" and kept["until"] == expired["until"]
    again = world.op("DELETE", f"/v1/silences/{created['id']}", 200)  # expiring twice changes nothing
    assert again["until"] == expired["until"]


def test_list_shows_active_and_scheduled_by_default_and_ended_ones_on_request(world: World) -> None:
    home, meter = world.fresh_home()
    active = world.op("POST", "/v1/silences", 201, json=silence_body(meter_id=meter))
    scheduled = world.op(
        "POST", "/v1/silences", 201, json=silence_body(household_id=home, start=until(hours=1), until=until(hours=3))
    )
    ended = world.op("POST", "/v1/silences", 201, json=silence_body(household_id=home, kind="spike"))
    world.op("DELETE", f"/v1/silences/{ended['id']}", 200)
    assert scheduled["state"] == "scheduled"

    listed = world.op("GET", "/v1/silences", 200, params={"household_id": home})
    assert [s["id"] for s in listed] == [scheduled["id"]]
    everything = world.op("GET", "/v1/silences", 200, params={"household_id": home, "include": "expired"})
    assert [s["id"] for s in everything] == [ended["id"], scheduled["id"]]  # newest first
    assert [s["id"] for s in world.op("GET", "/v1/silences", 200, params={"meter_id": meter})] == [active["id"]]
    by_kind = world.op("GET", "/v1/silences", 200, params={"kind": "spike", "include": "expired"})
    assert ended["id"] in {s["id"] for s in by_kind} and active["id"] not in {s["id"] for s in by_kind}
    expect(world.call("operator", "GET", "/v1/silences", params={"include": "everything"}), 422)


def test_a_silence_longer_than_the_cap_is_refused_naming_it(world: World) -> None:
    home, _ = world.fresh_home()
    answer = world.call("supervisor", "POST", "/v1/silences", json=silence_body(household_id=home, until=until(days=8)))
    error = expect(answer, 422)["error"]
    assert "at most 7 days (SHOUWANG_SILENCE_MAX_DAYS)" in error["message"], error
    world.op("POST", "/v1/silences", 201, json=silence_body(household_id=home, until=until(days=6, hours=23)))
    assert world.op("GET", "/v1/silences", 200, params={"household_id": home})[0]["reason"]  # only the good one
    assert len(world.op("GET", "/v1/silences", 200, params={"household_id": home, "include": "expired"})) == 1


@pytest.fixture
def one_day_cap(world: World) -> Iterator[None]:
    app = app_of(world.client)
    settings = app.state.settings
    app.state.settings = settings.model_copy(update={"silence_max_days": 1})
    yield
    app.state.settings = settings


@pytest.mark.usefixtures("one_day_cap")
def test_the_cap_is_the_setting(world: World) -> None:
    home, _ = world.fresh_home()
    error = expect(
        world.call("operator", "POST", "/v1/silences", json=silence_body(household_id=home, until=until(hours=25))), 422
    )
    assert "at most 1 days" in error["error"]["message"]
    world.op("POST", "/v1/silences", 201, json=silence_body(household_id=home, until=until(hours=23)))


@pytest.mark.parametrize("role", ["operator", "supervisor", "grid_worker"])
def test_a_silence_without_a_matcher_would_mute_everything_and_is_refused(world: World, role: str) -> None:
    error = expect(world.call(role, "POST", "/v1/silences", json=silence_body()), 422)["error"]
    assert "at least one matcher" in error["message"] and "mute every alert" in error["message"], error


def test_a_grid_worker_cannot_silence_another_cell_nor_see_or_expire_its_silences(world: World) -> None:
    other_home, other_meter = world.fresh_home("C2", "CM2", family="family_b")
    refused = [
        world.call("grid_worker", "POST", "/v1/silences", json=silence_body(**matchers))
        for matchers in (
            {"grid_cell": "C2"},
            {"household_id": other_home},
            {"meter_id": other_meter},
            {"kind": "spike"},
        )
    ]
    assert [r.status_code for r in refused] == [403, 422, 422, 403]
    assert "grid cell C2 is not one of" in refused[0].json()["error"]["message"]
    # another cell's household or meter is "unknown", exactly as one that does not exist: nothing leaks
    assert refused[1].json()["error"]["message"] == f"unknown household {other_home}"
    assert refused[2].json()["error"]["message"] == f"unknown meter {other_meter}"
    assert "must name a household, meter or grid cell" in refused[3].json()["error"]["message"]
    for role in ("grid_worker", "supervisor"):  # the supervisor's community is CM1, its homes in C1
        assert world.call(role, "POST", "/v1/silences", json=silence_body(grid_cell="C2")).status_code == 403

    theirs = [
        world.op("POST", "/v1/silences", 201, json=silence_body(**matchers))["id"]
        for matchers in (
            {"grid_cell": "C2"},
            {"household_id": other_home},
            {"meter_id": other_meter},
            {"kind": "spike"},
        )
    ]
    for role in ("grid_worker", "supervisor"):
        listed = {s["id"] for s in expect(world.call(role, "GET", "/v1/silences", params={"include": "expired"}), 200)}
        assert listed.isdisjoint(theirs)
        for silence_id in theirs:
            for method in ("GET", "DELETE"):
                answer = world.call(role, method, f"/v1/silences/{silence_id}")
                assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found", answer.text
    assert {world.op("GET", f"/v1/silences/{s}", 200)["state"] for s in theirs} == {"active"}  # none expired
    muted = alert_now(world, other_meter)
    assert muted["silenced_by"] in theirs


def test_staff_see_and_expire_silences_in_their_cells_whoever_set_them(world: World) -> None:
    home, meter = world.fresh_home()
    by_operator = [
        world.op("POST", "/v1/silences", 201, json=silence_body(**matchers))["id"]
        for matchers in ({"grid_cell": "C1"}, {"household_id": home}, {"meter_id": meter})
    ]
    for role in ("grid_worker", "supervisor"):
        listed = {s["id"] for s in expect(world.call(role, "GET", "/v1/silences"), 200)}
        assert set(by_operator) <= listed
    for silence_id in by_operator:
        assert expect(world.call("grid_worker", "DELETE", f"/v1/silences/{silence_id}"), 200)["state"] == "expired"
    supervised = expect(world.call("supervisor", "POST", "/v1/silences", json=silence_body(grid_cell="C1")), 201)
    assert "supervisor:" in supervised["created_by"]
    assert expect(world.call("supervisor", "DELETE", f"/v1/silences/{supervised['id']}"), 200)["state"] == "expired"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"household_id": "hh_0000000000000000"}, "unknown household hh_0000000000000000"),
        ({"meter_id": "NO-SUCH-METER"}, "unknown meter NO-SUCH-METER"),
        ({"kind": "flood"}, "'no_usage', 'continuous_flow'"),
        ({"kind": "no_usage", "reason": "  "}, "reason"),
        ({"kind": "no_usage", "reason": None}, "reason"),
        ({"kind": "no_usage", "until": None}, "until"),
        ({"kind": "no_usage", "until": "2026-12-31T10:00:00"}, "no UTC offset"),
        ({"kind": "no_usage", "until": "2020-01-01T00:00:00+08:00"}, "not in the future"),
        ({"kind": "no_usage", "start": "2020-01-01T00:00:00+08:00"}, "is in the past"),
        ({"kind": "no_usage", "created_by": "someone else"}, "unknown field"),
        ({"grid_cell": "C 1"}, "grid_cell"),
    ],
)
def test_every_field_is_checked_with_a_422_that_names_it(world: World, change: dict[str, Any], words: str) -> None:
    body = {k: v for k, v in {**silence_body(), **change}.items() if v is not None}
    answer = world.call("operator", "POST", "/v1/silences", json=body)
    assert answer.status_code == 422, answer.text
    assert words in answer.text, answer.text


@pytest.mark.parametrize("role", ["family", "device"])
def test_families_and_devices_may_not_touch_silences(world: World, role: str) -> None:
    home, _ = world.fresh_home()
    assert world.call(role, "POST", "/v1/silences", json=silence_body(household_id=home)).status_code == 403
    assert world.call(role, "GET", "/v1/silences").status_code == 403
