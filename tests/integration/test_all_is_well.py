"""The daily all-is-well message on the real stack: readings in through the API, the worker's day summary on the
daily topic, the router's timer, a family's signed webhook — at the local time the family chose, not before.

Real broker, worker, router and API processes, SQLite, a real HTTP receiver. The processes run on the wall
clock, so the household lives in a fixed-offset zone where it is late morning now (its readings are of today,
and the first water use at 07:12 local is in the past), and the family asks for its message at the next minute.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from cli.broker import free_port
from shouwang.settings import Settings
from streams.topic_provisioning import provision_topics
from tests.alerts.webhooks.receiver import Receiver
from tests.conftest import settings_env
from tests.kafka_helpers import start_shouwang, stop, until, wait_http

pytestmark = pytest.mark.kafka
ADMIN = "all-is-well-admin-token-0123456789abcdef"


def late_morning_zone(now: datetime) -> tuple[str, timezone]:
    """A fixed-offset IANA zone (Etc/GMT…) where it is between 10:00 and 11:00 now."""
    hours = (10 - now.hour) % 24
    hours = hours - 24 if hours > 14 else hours  # offsets run from -12 to +14
    name = "UTC" if hours == 0 else f"Etc/GMT{'-' if hours > 0 else '+'}{abs(hours)}"  # Etc signs are inverted
    return name, timezone(timedelta(hours=hours))


def readings_of_today(meter: str, zone: timezone, now: datetime) -> list[dict[str, object]]:
    """Every hour since local midnight, a first use in the interval ending 07:12, and use each hour after."""
    midnight = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    times = [midnight + timedelta(hours=hour) for hour in range(24) if midnight + timedelta(hours=hour) <= now]
    times = sorted({*times, midnight.replace(hour=7, minute=12)})
    register, out = 500.0, []
    for moment in times:
        if moment.hour > 7 or (moment.hour, moment.minute) == (7, 12):
            register += 6.0
        out.append({"meter_id": meter, "ts": moment.isoformat(), "register_l": register})
    return out


def test_the_family_hears_all_is_well_at_its_local_time(kafka_settings: Settings, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    if now.second > 45:  # the minute asked for must still lie ahead once the stack has started
        time.sleep(61 - now.second)
        now = datetime.now(UTC)
    zone_name, zone = late_morning_zone(now)
    api_port = free_port()
    settings = kafka_settings.model_copy(
        update={
            "database_url": f"sqlite:///{tmp_path / 'store.db'}",
            "router_metrics_port": free_port(),
            "api_port": api_port,
            "public_url": f"http://127.0.0.1:{api_port}",
            "admin_token": ADMIN,
            "webhook_allow_hosts": "127.0.0.0/8",
            "household_tz": zone_name,  # the worker's local days: the household's
        }
    )
    provision_topics(settings)
    env = {**settings_env(settings), "SHOUWANG_ADMIN_TOKEN": ADMIN}
    api = f"http://127.0.0.1:{api_port}"
    processes = [start_shouwang([name], env, tmp_path / f"{name}.log") for name in ("worker", "router", "api")]
    with Receiver() as family:
        try:
            wait_http(f"{api}/healthz")
            operator = httpx.Client(base_url=api, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30)
            until(lambda: operator.get("/readyz").status_code == 200, what="API ready")
            home = operator.post(
                "/v1/households",
                json={
                    "name": "王阿姨",
                    "timezone": zone_name,
                    "grid_cell": "FT-1",
                    "consent": {"given_by": "本人", "given_at": "2026-01-01T10:00:00+08:00", "scope": "平安消息"},
                },
            )
            assert home.status_code == 201, home.text
            home_id = home.json()["id"]
            assert operator.post(f"/v1/households/{home_id}/meters", json={"meter_id": "AIW-1"}).status_code == 201
            daughter = operator.post(
                "/v1/recipients", json={"name": "女儿", "role": "family", "webhook_url": family.url}
            )
            assert daughter.status_code == 201, daughter.text
            secret = daughter.json()["webhook_secret"]
            at = (datetime.now(UTC) + timedelta(minutes=1)).astimezone(zone).strftime("%H:%M")
            opted_in = operator.post(
                "/v1/subscriptions",
                json={
                    "recipient_id": daughter.json()["id"],
                    "household_id": home_id,
                    "all_is_well_every": "day",
                    "all_is_well_at": at,
                    "all_is_well_call": "妈妈",
                },
            )
            assert opted_in.status_code == 201 and opted_in.json()["all_is_well_at"] == at, opted_in.text
            readings = readings_of_today("AIW-1", zone, now)
            assert operator.post("/v1/readings", json=readings).status_code == 202

            def messages() -> list[dict]:
                bodies = [family.verify_with(secret, request) for request in list(family.requests)]
                return [body for body in bodies if body["type"] == "household.all_is_well"]

            due = datetime.strptime(at, "%H:%M").time()
            while datetime.now(zone).time().replace(second=0, microsecond=0) < due:
                assert messages() == [], "sent before the family's local time"
                time.sleep(1.0)
            until(lambda: len(messages()) == 1, timeout=90, what="the all-is-well message")
            [body] = messages()
            assert datetime.now(zone).strftime("%H:%M") >= at
            assert body["data"]["message"]["zh"] == "妈妈今天 07:12 开始用水，一切如常"
            assert body["data"]["day"] == datetime.now(zone).date().isoformat()
            time.sleep(16)  # another pass of the router's timer: still one message
            assert len(messages()) == 1
            assert all(p.poll() is None for p in processes)
        finally:
            for process in reversed(processes):
                stop(process)


def test_late_morning_zone_is_late_morning() -> None:
    for hour in range(24):
        now = datetime(2026, 3, 2, hour, 30, tzinfo=UTC)
        name, zone = late_morning_zone(now)
        assert now.astimezone(zone).hour == 10, name
        assert now.astimezone(ZoneInfo(name)).utcoffset() == zone.utcoffset(now)
