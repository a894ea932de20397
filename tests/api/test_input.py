"""Robust input: strict bodies, precise 422s, the body limit, partial acceptance of readings, the
ingest rate limit, and one error shape everywhere. Accepted readings and incidents are read back
from their Kafka topics."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import Response
from sqlalchemy import text

from api.routes import ingest
from cli.broker import LocalBroker
from shouwang.topics import Topics
from tests.api.conftest import (
    ADMIN_TOKEN,
    Receiver,
    World,
    api_settings,
    app_of,
    bearer,
    build_world,
    expect,
    household_body,
    running_api,
    store_of,
)
from tests.kafka_helpers import consume

pytestmark = pytest.mark.kafka

RATE, BURST = 1.0, 20


@pytest.fixture(scope="module")
def world(kafka_broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[World]:
    """This module's app has a small ingest rate limit: 20 readings at once, then 1 per second."""
    settings = api_settings(kafka_broker, tmp_path_factory.mktemp("api"), ingest_rate_per_s=RATE, ingest_burst=BURST)
    with running_api(settings) as client:
        yield build_world(client, settings, receiver.url)


def error(response: Response, status: int, code: str) -> dict[str, Any]:
    """The one error shape: {"error": {"code", "message", "details"?}}, and never a traceback."""
    assert response.status_code == status, f"{response.status_code} {response.text[:500]}"
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) <= {"code", "message", "details"}, body
    assert body["error"]["code"] == code and isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert "Traceback" not in response.text and 'File "' not in response.text
    return dict(body["error"])


def fresh_device(world: World, *meters: str) -> str:
    """A gateway's key for meters whose ids start with ``SZ-``; ``meters`` are enrolled first (in home A)."""
    for meter in meters:
        world.op("POST", f"/v1/households/{world.home_a}/meters", 201, json={"meter_id": meter})
    return world.new_key("device", meter_prefix="SZ-")[1]


def reading(meter: str, register: float = 812.5, ts: str = "2026-03-02T08:00:00+08:00") -> dict[str, Any]:
    return {"meter_id": meter, "ts": ts, "register_l": register}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**household_body("A", "C1", "CM1"), "colour": "blue"}, "colour"),
        (
            {**household_body("A", "C1", "CM1"), "consent": {**household_body("A", "C1", None)["consent"], "by": "x"}},
            "consent.by",
        ),
    ],
)
def test_unknown_fields_are_422_naming_the_field(world: World, body: dict[str, Any], field: str) -> None:
    refused = error(world.call("operator", "POST", "/v1/households", json=body), 422, "invalid_request")
    assert {"field": field, "message": "unknown field"} in refused["details"]
    assert f"{field}: unknown field" in refused["message"]


def test_unknown_field_in_other_bodies(world: World) -> None:
    patch = error(
        world.call("operator", "PATCH", f"/v1/households/{world.home_a}", json={"nmae": "typo"}), 422, "invalid_request"
    )
    assert "nmae: unknown field" in patch["message"]
    resolve = error(
        world.call(
            "operator",
            "POST",
            f"/v1/alerts/{world.raise_alert(world.meter_a)}/resolve",
            json={"outcome": "false_alarm", "why": "x"},
        ),
        422,
        "invalid_request",
    )
    assert "why: unknown field" in resolve["message"]


@pytest.mark.parametrize(
    ("method", "path", "body", "words"),
    [
        (
            "POST",
            "/v1/households",
            {**household_body("A", "C1", None), "timezone": "Mars/Olympus"},
            ["timezone", "unknown timezone 'Mars/Olympus'", "IANA"],
        ),
        ("PATCH", "/v1/households/{home}", {"timezone": "UTC+8"}, ["timezone", "unknown timezone"]),
        ("POST", "/v1/households", household_body("A", "C 1/2", None), ["grid_cell", "must be 1–32 letters, digits"]),
        ("POST", "/v1/households/{home}/meters", {"meter_id": "bad id!"}, ["meter_id", "must be 1–64 letters, digits"]),
        (
            "POST",
            "/v1/households/{home}/meters",
            {"meter_id": "SZ-1", "reporting_interval_s": 5},
            ["reporting_interval_s", "greater than or equal to 60"],
        ),
        ("POST", "/v1/incidents", {"text": "leak", "grid_cell": ""}, ["grid_cell", "must be 1–32"]),
        (
            "POST",
            "/v1/keys",
            {"name": "w", "role": "grid_worker", "grid_cells": ["ok", "not ok"]},
            ["grid_cells.1", "must be 1–32"],
        ),
        (
            "POST",
            "/v1/households",
            {
                **household_body("A", "C1", None),
                "consent": {**household_body("A", "C1", None)["consent"], "given_at": "2026-02-01T09:00:00"},
            },
            ["given_at", "no UTC offset"],
        ),
        ("PUT", "/v1/households/{home}/away", {"until": "2001-01-01T00:00:00Z"}, ["away mode must end in the future"]),
    ],
)
def test_bad_values_are_422_saying_what_is_wrong(
    world: World, method: str, path: str, body: dict[str, Any], words: list[str]
) -> None:
    response = world.call("operator", method, path.format(home=world.home_a), json=body)
    message = error(response, 422, "invalid_request")["message"]
    for word in words:
        assert word in message, message


def test_bad_query_values_are_422(world: World) -> None:
    for params, word in (
        ({"grid_cell": "no spaces"}, "grid_cell: must be 1–32"),
        ({"limit": 0}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"status": "lost"}, "status"),
        ({"since": "2026-03-01T00:00:00"}, "no UTC offset"),
    ):
        assert (
            word in error(world.call("operator", "GET", "/v1/alerts", params=params), 422, "invalid_request")["message"]
        )


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 at all!",
        base64.urlsafe_b64encode(b"no separator").decode(),
        base64.urlsafe_b64encode(b"2026-01-01T00:00:00|al_x").decode(),  # a time without an offset (was a 500)
        base64.urlsafe_b64encode(b"0001-01-01T00:00:00+05:00|al_x").decode(),  # out of range in UTC (was a 500)
    ],
)
def test_a_cursor_the_api_did_not_make_is_422(world: World, cursor: str) -> None:
    refused = error(world.call("operator", "GET", "/v1/alerts", params={"cursor": cursor}), 422, "invalid_request")
    assert "cursor" in refused["message"]


@pytest.mark.parametrize("path", ["/v1/households", "/v1/readings", "/v1/incidents"])
def test_non_json_is_422(world: World, path: str) -> None:
    for raw in (b"not json", b'{"name": ', b"\xff\xfe", b'{"name": "\xc3\x28"}', b"\x02\xc3\x28\x17"):
        response = world.client.post(
            path, content=raw, headers={**bearer(ADMIN_TOKEN), "Content-Type": "application/json"}
        )
        assert "not valid JSON" in error(response, 422, "invalid_request")["message"]


@pytest.mark.parametrize("path", ["/v1/households", "/v1/readings"])
def test_wrong_json_shape_is_422(world: World, path: str) -> None:
    for body in ("a string", 42, None, [[]]):
        error(world.call("operator", "POST", path, json=body), 422, "invalid_request")


@pytest.mark.parametrize("path", ["/v1/households", "/v1/readings", "/v1/recipients"])
@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_limit_is_413(world: World, path: str, streamed: bool) -> None:
    limit = world.settings.api_max_body_bytes
    big = json.dumps({"name": "x" * limit}).encode()

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must be enforced while reading
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    response = world.client.post(
        path, content=chunks() if streamed else big, headers={**bearer(ADMIN_TOKEN), "Content-Type": "application/json"}
    )
    assert str(limit) in error(response, 413, "too_large")["message"]
    # a body just under the limit is read and judged on its merits
    small = world.client.post(
        path,
        content=json.dumps({"name": "x" * 100}).encode(),
        headers={**bearer(ADMIN_TOKEN), "Content-Type": "application/json"},
    )
    assert small.status_code == 422


def test_mixed_readings_accept_the_good_and_report_the_bad(world: World) -> None:
    m1, m2 = f"SZ-{uuid.uuid4().hex[:8]}", f"SZ-{uuid.uuid4().hex[:8]}"
    items: list[Any] = [
        reading(m1, 100.0),
        reading("bad id!", 1.0),
        reading(m2, 200.0),
        {"meter_id": m1, "ts": "2026-03-02T08:05:00+08:00"},  # no register
        {**reading(m1, 3.0), "flags": ["leak"]},  # unknown field
        reading(m1, 101.0, ts="2026-03-02T09:00:00+08:00"),
        reading(m2, -5.0, ts="2026-03-02T09:00:00+08:00"),  # negative register
        reading(m2, 7.0, ts="2026-03-02T09:00:00"),  # no UTC offset
        "not an object",
    ]
    response = world.client.post("/v1/readings", json=items, headers=bearer(fresh_device(world, m1, m2)))
    assert response.status_code == 202, response.text
    result = response.json()
    assert result["accepted"] == 3
    reasons = {item["index"]: item["error"] for item in result["rejected"]}
    assert sorted(reasons) == [1, 3, 4, 6, 7, 8]
    assert "meter_id" in reasons[1] and "register_l" in reasons[3] and "flags: unknown field" in reasons[4]
    assert "register_l" in reasons[6] and "offset" in reasons[7]

    topic = Topics.from_settings(world.settings).readings
    records = consume(
        world.settings.bootstrap_servers,
        topic,
        timeout=30,
        until=lambda rs: sum(r.key in {m1.encode(), m2.encode()} for r in rs) >= 3,
    )
    mine = [r for r in records if r.key in {m1.encode(), m2.encode()}]
    got = sorted((r.key.decode(), json.loads(r.value)["meter_id"], json.loads(r.value)["register_l"]) for r in mine)
    assert got == sorted([(m1, m1, 100.0), (m1, m1, 101.0), (m2, m2, 200.0)])
    assert {json.loads(r.value)["v"] for r in mine} == {1}
    # one meter's readings are on one partition, in order
    assert len({r.partition for r in mine if r.key == m1.encode()}) == 1


def test_a_reading_from_the_future_is_refused_and_the_good_one_beside_it_kept(world: World) -> None:
    meter = f"SZ-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC).replace(microsecond=0)
    items = [
        reading(meter, 100.0, ts=(now - timedelta(minutes=5)).isoformat()),
        reading(meter, 101.0, ts="2099-01-01T00:00:00+08:00"),  # the blinding attack: every later one "late"
        reading(meter, 102.0, ts=(now + timedelta(minutes=5)).isoformat()),  # within the 10-minute skew
        reading(meter, 103.0, ts=(now + timedelta(minutes=15)).isoformat()),
    ]
    result = expect(world.client.post("/v1/readings", json=items, headers=bearer(fresh_device(world, meter))), 202)
    assert result["accepted"] == 2
    reasons = {item["index"]: item["error"] for item in result["rejected"]}
    assert sorted(reasons) == [1, 3]
    assert "after this server's clock" in reasons[1] and "10 min ahead" in reasons[1]


def test_a_device_key_reports_only_for_its_own_enrolled_meters(world: World) -> None:
    own, unenrolled = f"SZ-{uuid.uuid4().hex[:8]}", f"SZ-{uuid.uuid4().hex[:8]}"
    token = fresh_device(world, own)
    items = [reading(own, 1.0), reading(world.meter_a, 2.0), reading(unenrolled, 3.0)]
    result = expect(world.client.post("/v1/readings", json=items, headers=bearer(token)), 202)
    assert result["accepted"] == 1
    reasons = {item["index"]: item["error"] for item in result["rejected"]}
    assert "not one of this key's meters" in reasons[1]  # another home's meter: a leaked key cannot fake it
    assert "is not enrolled" in reasons[2]
    refused = error(world.client.post("/v1/readings", json=items[1:], headers=bearer(token)), 422, "invalid_request")
    assert "none of the 2 readings is valid" in refused["message"]
    # A device key must name its meters.
    error(world.call("operator", "POST", "/v1/keys", json={"name": "gw", "role": "device"}), 422, "invalid_request")
    by_id = world.new_key("device", meters=[world.meter_b])[1]
    accepted = world.client.post("/v1/readings", json=[reading(world.meter_b, 5.0)], headers=bearer(by_id))
    assert expect(accepted, 202)["accepted"] == 1


def test_all_bad_readings_are_422_and_nothing_is_produced(world: World) -> None:
    refused = error(
        world.client.post(
            "/v1/readings", json=[reading("bad id!"), {"meter_id": "x"}], headers=bearer(fresh_device(world))
        ),
        422,
        "invalid_request",
    )
    assert "none of the 2 readings is valid" in refused["message"] and "#0" in refused["message"]
    error(world.client.post("/v1/readings", json=[], headers=bearer(fresh_device(world))), 422, "invalid_request")


def test_too_many_readings_in_one_request_is_413(world: World) -> None:
    token = fresh_device(world, "SZ-1")
    for count in (BURST + 1, ingest.MAX_ITEMS + 1):
        refused = error(
            world.client.post("/v1/readings", json=[reading("SZ-1")] * count, headers=bearer(token)), 413, "too_large"
        )
        assert str(count) in refused["message"]
    # that cost nothing: the key still has its whole burst
    assert world.client.post("/v1/readings", json=[reading("SZ-1")] * BURST, headers=bearer(token)).status_code == 202


def test_ingest_rate_limit_is_429_with_retry_after_per_key(world: World) -> None:
    token = fresh_device(world, "SZ-RATE")
    batch = [reading("SZ-RATE", float(i), ts=f"2026-03-02T08:{i:02d}:00+08:00") for i in range(BURST)]
    assert world.client.post("/v1/readings", json=batch, headers=bearer(token)).status_code == 202
    more = [reading("SZ-RATE", 99.0, ts=f"2026-03-02T09:0{i}:00+08:00") for i in range(3)]
    limited = world.client.post("/v1/readings", json=more, headers=bearer(token))
    error(limited, 429, "rate_limited")
    retry_after = int(limited.headers["Retry-After"])
    assert 1 <= retry_after <= 3
    # another key has its own bucket
    assert (
        world.client.post(
            "/v1/readings", json=[reading("SZ-RATE", 1.0)], headers=bearer(fresh_device(world))
        ).status_code
        == 202
    )
    time.sleep(retry_after)  # as told: then the same request is accepted
    assert world.client.post("/v1/readings", json=more, headers=bearer(token)).status_code == 202


def test_incidents_land_on_the_incidents_topic_keyed_by_grid_cell(world: World) -> None:
    cell = f"FT-{uuid.uuid4().hex[:6]}"
    body = {
        "text": "水管爆裂，楼道积水",
        "grid_cell": cell,
        "reporter": "resident 302",
        "photo_url": "https://img.example/1.jpg",
        "ts": "2026-03-02T08:00:00+08:00",
    }
    accepted = world.client.post("/v1/incidents", json=body, headers=bearer(fresh_device(world)))
    assert accepted.status_code == 202, accepted.text
    incident_id = accepted.json()["id"]
    topic = Topics.from_settings(world.settings).incidents
    records = consume(
        world.settings.bootstrap_servers, topic, timeout=30, until=lambda rs: any(r.key == cell.encode() for r in rs)
    )
    [record] = [r for r in records if r.key == cell.encode()]
    value = json.loads(record.value)
    assert (value["incident_id"], value["text"], value["grid_cell"], value["reporter"]) == (
        incident_id,
        body["text"],
        cell,
        "resident 302",
    )


def test_ingest_is_503_with_retry_after_when_kafka_does_not_acknowledge(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Stalled:  # a broker that takes the request and never answers
        async def send_and_wait(self, *args: Any, **kwargs: Any) -> None:
            import asyncio

            await asyncio.Event().wait()

    app = app_of(world.client)
    monkeypatch.setattr(ingest, "KAFKA_ACK_TIMEOUT_S", 0.3)
    producer, app.state.producer = app.state.producer, Stalled()  # (monkeypatch would delete it afterwards)
    try:
        began = time.monotonic()
        for path, body in (("/v1/readings", reading("SZ-1")), ("/v1/incidents", {"text": "leak", "grid_cell": "C1"})):
            response = world.call("operator", "POST", path, json=body)
            assert error(response, 503, "unavailable") and response.headers["Retry-After"] == "5"
        assert time.monotonic() - began < 5
    finally:
        app.state.producer = producer


def test_a_server_error_is_a_bare_500_with_a_request_id(kafka_broker: LocalBroker, tmp_path: Any) -> None:
    settings = api_settings(kafka_broker, tmp_path)
    with running_api(settings, raise_server_exceptions=False) as client:
        with store_of(client).engine.begin() as connection:  # break the store under the app
            connection.execute(text("DROP TABLE subscriptions"))
        response = client.get("/v1/subscriptions", headers=bearer(ADMIN_TOKEN))
        message = error(response, 500, "internal")["message"]
        assert message.startswith("internal error (request id ")
        assert "subscriptions" not in response.text and "sqlite" not in response.text.lower()


def test_unauthenticated_requests_learn_nothing_about_bodies(world: World) -> None:
    """Without a key, a valid body and an invalid one both get the same 401."""
    for body in (household_body("A", "C1", None), {"timezone": "Mars/Olympus"}):
        error(world.client.post("/v1/households", json=body), 401, "unauthorized")


def test_unknown_path_and_method_use_the_error_shape(world: World) -> None:
    error(world.call("operator", "GET", "/v1/nothing-here"), 404, "not_found")
    error(world.call("operator", "PUT", "/v1/alerts"), 405, "method_not_allowed")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_nul_characters_are_422_on_every_store(
    kafka_broker: LocalBroker, tmp_path: Any, request: pytest.FixtureRequest, backend: str
) -> None:
    """PostgreSQL cannot hold U+0000 at all: before the API refused it, each of these was a 500 there."""
    url = request.getfixturevalue("postgres_db_url") if backend == "postgresql" else None
    settings = api_settings(kafka_broker, tmp_path, database_url=url)
    with running_api(settings) as client:

        def call(method: str, path: str, **kwargs: Any) -> Response:
            return client.request(method, path, headers=bearer(ADMIN_TOKEN), **kwargs)

        home = call("POST", "/v1/households", json=household_body("Home", "C1", None)).json()["id"]
        nul_cursor = base64.urlsafe_b64encode(b"2026-01-01T00:00:00+00:00|al_\x00").decode()
        for response in (
            call("POST", "/v1/households", json=household_body("A\u0000B", "C1", None)),
            call("PATCH", f"/v1/households/{home}", json={"address": "1\u0000"}),
            call("POST", "/v1/keys", json={"name": "gate\u0000way", "role": "device", "meter_prefix": "SZ-"}),
            call("POST", "/v1/recipients", json={"name": "x", "role": "operator", "webhook_url": "https://a.b/\u0000"}),
            call("POST", "/v1/incidents", json={"text": "leak\u0000", "grid_cell": "C1"}),
            call("GET", "/v1/households/hh_%00"),
            call("GET", "/v1/alerts/al_%00"),
            call("DELETE", "/v1/subscriptions/sub_%00"),
            call("GET", "/v1/alerts", params={"household_id": "hh_\x00"}),
            call("GET", "/v1/subscriptions", params={"recipient_id": "rcp_\x00"}),
            call("GET", "/v1/alerts", params={"cursor": nul_cursor}),
        ):
            assert "NUL" in error(response, 422, "invalid_request")["message"] or "cursor" in response.text
