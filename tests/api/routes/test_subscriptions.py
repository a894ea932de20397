"""Subscriptions through the API: the all-is-well opt-in is validated with a clear 422 and shown in the output."""

from __future__ import annotations

import pytest

from tests.api.conftest import World

pytestmark = pytest.mark.kafka


def test_a_family_member_opts_in_to_the_all_is_well_message(world: World) -> None:
    home, _ = world.fresh_home(family=None)
    body = {"recipient_id": world.recipients["family_a"], "household_id": home}
    created = world.op(
        "POST",
        "/v1/subscriptions",
        201,
        json={**body, "all_is_well_every": "day", "all_is_well_at": "08:30", "all_is_well_call": "妈妈"},
    )
    assert (created["all_is_well_every"], created["all_is_well_at"], created["all_is_well_call"]) == (
        "day",
        "08:30",
        "妈妈",
    )
    weekly = world.op("POST", "/v1/subscriptions", 201, json={**body, "all_is_well_every": "week"})
    assert (weekly["all_is_well_at"], weekly["all_is_well_call"]) == ("10:00", None)  # the default time
    listed = world.op("GET", "/v1/subscriptions", 200, params={"recipient_id": world.recipients["family_a"]})
    assert {s["id"]: s["all_is_well_every"] for s in listed}[created["id"]] == "day"
    plain = world.op("POST", "/v1/subscriptions", 201, json=body)
    assert plain["all_is_well_every"] is None and plain["all_is_well_at"] is None


@pytest.mark.parametrize(
    ("extra", "recipient", "words"),
    [
        ({"grid_cell": "C1", "all_is_well_every": "day"}, "grid_worker", "for family members"),
        ({"all_is_well_every": "day"}, "supervisor", "for family members"),
        ({"all_is_well_at": "07:00"}, "family_a", "need all_is_well_every"),
        ({"all_is_well_every": "month"}, "family_a", "all_is_well_every"),
        ({"all_is_well_every": "day", "all_is_well_at": "25:00"}, "family_a", "all_is_well_at"),
    ],
)
def test_an_opt_in_that_cannot_be_is_a_422_that_says_why(
    world: World, extra: dict[str, str], recipient: str, words: str
) -> None:
    scope = {} if "grid_cell" in extra else {"household_id": world.home_a}
    answer = world.call(
        "operator", "POST", "/v1/subscriptions", json={"recipient_id": world.recipients[recipient], **scope, **extra}
    )
    assert answer.status_code == 422, answer.text
    assert words in answer.text
