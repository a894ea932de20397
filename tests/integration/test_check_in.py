"""Ask the elder first, on the real stack: three households with a resident channel fall silent past their
check limit; each resident is asked, and (a) nobody answers → the family and the grid worker get
``alert.raised`` after the timeout; (b) the resident taps "我很好" → nobody else is told about that silence
(that the alarm limit, hours later, tells nobody either is tests/alerts/test_check_ins.py's); (c) the
resident answers "away until …" → away mode is set, shown by the API with the resident as the actor.

Real broker, worker, router and API, SQLite, real HTTP receivers. The synthetic households' readings are
moved so the check-in was decided minutes ago: the router asks only about a current silence, by the wall
clock, as in service.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from cli.broker import free_port
from detectors import Finding, Observation
from shouwang.events import alert_id_for
from shouwang.settings import Settings
from streams.detection import bank_factory
from streams.topic_provisioning import provision_topics
from tests.alerts.webhooks.receiver import Receiver
from tests.conftest import settings_env
from tests.detectors.series import Household, at_day
from tests.kafka_helpers import start_shouwang, stop, until, wait_http

pytestmark = pytest.mark.kafka
ADMIN = "check-in-admin-token-0123456789abcdef"
HOUR = timedelta(hours=1)


def collapse_in_the_recent_past(settings: Settings, meter: str) -> tuple[list[Observation], Finding]:
    """A regular routine, then a collapse; moved by whole hours so that the check-in was decided a few
    minutes ago (the router asks only about a silence that is current). Readings up to now."""
    original = Household(meter_id=meter, days=23, collapse_at=at_day(21, 9)).build()
    now = datetime.now(UTC)
    shift = (now - _check_in(settings, original).at) // HOUR
    for _attempt in range(4):  # moving the routine by hours moves the limits a little: settle on one
        readings = [replace(r, ts=r.ts + shift * HOUR) for r in original]
        check_in = _check_in(settings, readings)
        if now - HOUR < check_in.at <= now:
            return [r for r in readings if r.ts <= now], check_in
        shift += (now - check_in.at) // HOUR
    raise AssertionError("no shift puts the check-in in the last hour")


def _check_in(settings: Settings, readings: list[Observation]) -> Finding:
    """The collapse's check-in: the last one of the series, past the collapse."""
    bank = bank_factory(settings)()
    findings = [f for r in readings for f in bank.update(r) if f.kind == "no_usage"]
    return [f for f in findings if f.transition == "check_in"][-1]


def test_the_resident_is_asked_first(kafka_settings: Settings, tmp_path: Path) -> None:
    api_port = free_port()
    settings = kafka_settings.model_copy(
        update={
            "database_url": f"sqlite:///{tmp_path / 'store.db'}",
            "router_metrics_port": free_port(),
            "api_port": api_port,
            "public_url": f"http://127.0.0.1:{api_port}",  # where the answer links lead
            "admin_token": ADMIN,
            "webhook_allow_hosts": "127.0.0.0/8",
            "ingest_rate_per_s": 10_000.0,
            "household_tz": "UTC",
            "check_in_timeout": "8s",
        }
    )
    provision_topics(settings)
    env = {**settings_env(settings), "SHOUWANG_ADMIN_TOKEN": ADMIN}
    api = f"http://127.0.0.1:{settings.api_port}"
    scenarios = {name: collapse_in_the_recent_past(settings, f"CHK-{name}") for name in ("silent", "fine", "away")}
    processes = [start_shouwang([name], env, tmp_path / f"{name}.log") for name in ("worker", "router", "api")]
    with Receiver() as residents, Receiver() as carers:
        try:
            wait_http(f"{api}/healthz")
            operator = httpx.Client(base_url=api, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30)
            until(lambda: operator.get("/readyz").status_code == 200, what="API ready")
            worker = _recipient(operator, "网格员", "grid_worker", carers.url)
            assert operator.post("/v1/subscriptions", json={"recipient_id": worker, "grid_cell": "FT-1"}).is_success
            homes: dict[str, str] = {}
            for name in scenarios:
                homes[name] = _enrol(operator, name, f"CHK-{name}")
                elder = _recipient(operator, f"老人 {name}", "resident", residents.url)
                daughter = _recipient(operator, f"女儿 {name}", "family", carers.url)
                for person in (elder, daughter):
                    subscribed = operator.post(
                        "/v1/subscriptions", json={"recipient_id": person, "household_id": homes[name]}
                    )
                    assert subscribed.status_code == 201, subscribed.text

            def post(readings: list[Observation]) -> None:
                items = [{"meter_id": r.meter_id, "ts": r.ts.isoformat(), "register_l": r.register_l} for r in readings]
                for start in range(0, len(items), 500):
                    assert operator.post("/v1/readings", json=items[start : start + 500]).status_code == 202

            def bodies(receiver: Receiver, alert_id: str, event_type: str) -> list[dict]:
                found = []
                for request in list(receiver.requests):
                    body = json.loads(request.body)
                    if body["type"] == event_type and body["data"].get("alert_id") == alert_id:
                        found.append(body)
                return found

            alert_ids = {name: alert_id_for(f"CHK-{name}", "no_usage", c.since) for name, (_, c) in scenarios.items()}
            for readings, _ in scenarios.values():  # up to now: past each check limit, short of the alarm limit
                post(readings)
            for name in scenarios:
                until(lambda n=name: bodies(residents, alert_ids[n], "alert.check_in"), what=f"check-in ({name})")
                assert bodies(carers, alert_ids[name], "alert.raised") == []  # only the resident is asked

            # (b) "我很好", and (c) "我不在家" until the day after tomorrow, through the links in the message.
            answered = datetime.now(UTC)
            _answer(bodies(residents, alert_ids["fine"], "alert.check_in")[0], "fine")
            back_on = (answered + timedelta(days=2)).date().isoformat()
            _answer(bodies(residents, alert_ids["away"], "alert.check_in")[0], "away", until=back_on)

            # (a) nobody answers: family and grid worker are told after the timeout, with the reason.
            until(lambda: len(bodies(carers, alert_ids["silent"], "alert.raised")) == 2, what="carers told (a)")
            told = bodies(carers, alert_ids["silent"], "alert.raised")
            assert all("已询问老人本人" in b["data"]["explanation"]["zh"] for b in told)
            assert time.time() - answered.timestamp() < 60

            until(
                lambda: operator.get(f"/v1/alerts/{alert_ids['fine']}").json().get("status") == "resolved",
                what="fine recorded",
            )
            time.sleep(12)  # past the timeout: a message to carers would be here by now
            for name in ("fine", "away"):
                to_carers = [json.loads(r.body) for r in list(carers.requests)]
                assert [b["type"] for b in to_carers if b["data"].get("alert_id") == alert_ids[name]] == []
                shown = operator.get(f"/v1/alerts/{alert_ids[name]}").json()
                assert (shown["status"], shown["outcome"]) == ("resolved", "resident_fine")
            home = operator.get(f"/v1/households/{homes['away']}").json()
            assert home["away_set_by"].startswith("老人 away")  # the resident, via the link
            ends = datetime.fromisoformat(home["away_until"])
            assert ends == datetime.fromisoformat(back_on).replace(tzinfo=UTC) + timedelta(days=1)  # that day, UTC home
            assert all(p.poll() is None for p in processes)
        finally:
            for process in reversed(processes):
                stop(process)


def _recipient(operator: httpx.Client, name: str, role: str, url: str) -> str:
    created = operator.post("/v1/recipients", json={"name": name, "role": role, "webhook_url": url})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _enrol(operator: httpx.Client, name: str, meter: str) -> str:
    household = operator.post(
        "/v1/households",
        json={
            "name": f"老人 {name}",
            "timezone": "UTC",
            "grid_cell": "FT-1",
            "consent": {"given_by": "本人", "given_at": "2026-01-01T10:00:00+08:00", "scope": "用水异常先问本人"},
        },
    )
    assert household.status_code == 201, household.text
    home = str(household.json()["id"])
    assert operator.post(f"/v1/households/{home}/meters", json={"meter_id": meter}).status_code == 201
    return home


def _answer(check_in: dict, action: str, **form: str) -> None:
    """Open the answer's link (a page, as a chat preview would) and press its button."""
    link = next(a["url"] for a in check_in["data"]["answers"] if a["action"] == action)
    page = httpx.get(link, timeout=30)
    assert page.status_code == 200 and "今天还没看到用水" in page.text, page.text
    assert re.search(r'<form method="post"', page.text)
    done = httpx.post(link, data=form, timeout=30)
    assert done.status_code == 200 and "已记录" in done.text, done.text
