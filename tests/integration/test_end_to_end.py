"""The whole service as a family meets it: enrolment through the API, three weeks of readings
that teach the detector the household's routine, then a silence → a signed ``no_usage``
notification at the daughter's webhook → seen by her and acknowledged by staff through the API.

Real broker, real worker (Faust, with the meter's state in its table), real router, real API,
SQLite, and a real HTTP receiver verified with the ``standardwebhooks`` package.
"""

from __future__ import annotations

import itertools
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from cli.broker import free_port
from shouwang.settings import Settings
from streams.topic_provisioning import provision_topics
from tests.alerts.webhooks.receiver import Receiver
from tests.conftest import settings_env
from tests.detectors.series import Household, at_day
from tests.kafka_helpers import start_shouwang, stop, until, wait_http

pytestmark = pytest.mark.kafka
ADMIN = "end-to-end-admin-token-0123456789abcdef"
METER = "E2E-0001"


def test_a_long_silence_reaches_the_family_signed_and_is_acknowledged(kafka_settings: Settings, tmp_path: Path) -> None:
    settings = kafka_settings.model_copy(
        update={
            "database_url": f"sqlite:///{tmp_path / 'store.db'}",
            "router_metrics_port": free_port(),
            "api_port": free_port(),
            "admin_token": ADMIN,
            "webhook_allow_hosts": "127.0.0.0/8",
            "ingest_rate_per_s": 10_000.0,
            "household_tz": "UTC",
        }
    )  # the generated routine keeps UTC hours
    provision_topics(settings)
    env = {**settings_env(settings), "SHOUWANG_ADMIN_TOKEN": ADMIN}
    api = f"http://127.0.0.1:{settings.api_port}"
    # Three weeks of a regular routine, then from day 21 at 09:00 not a drop: a day and a half of silence.
    readings = Household(meter_id=METER, days=23, collapse_at=at_day(21, 9)).build()
    processes = [start_shouwang([name], env, tmp_path / f"{name}.log") for name in ("worker", "router", "api")]
    with Receiver() as receiver:
        try:
            wait_http(f"{api}/healthz")
            operator = httpx.Client(base_url=api, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30)
            until(lambda: operator.get("/readyz").status_code == 200, what="API ready")
            household = operator.post(
                "/v1/households",
                json={
                    "name": "王阿姨",
                    "timezone": "UTC",
                    "grid_cell": "FT-12-3",
                    "community": "FT-Lianhua",
                    "consent": {
                        "given_by": "王阿姨本人",
                        "given_at": "2026-02-01T10:00:00+08:00",
                        "scope": "用水异常提醒家属和网格员",
                    },
                },
            )
            assert household.status_code == 201, household.text
            home = household.json()["id"]
            assert operator.post(f"/v1/households/{home}/meters", json={"meter_id": METER}).status_code == 201
            daughter = operator.post(
                "/v1/recipients", json={"name": "女儿", "role": "family", "webhook_url": receiver.url}
            )
            assert daughter.status_code == 201, daughter.text
            daughter_id, secret = daughter.json()["id"], daughter.json()["webhook_secret"]
            assert (
                operator.post("/v1/subscriptions", json={"recipient_id": daughter_id, "household_id": home}).status_code
                == 201
            )
            key = operator.post("/v1/keys", json={"name": "女儿", "role": "family", "recipient_id": daughter_id})
            family = httpx.Client(base_url=api, headers={"Authorization": f"Bearer {key.json()['token']}"}, timeout=30)

            items = [{"meter_id": METER, "ts": r.ts.isoformat(), "register_l": r.register_l} for r in readings]
            for start in range(0, len(items), 200):
                accepted = operator.post("/v1/readings", json=items[start : start + 200])
                assert accepted.status_code == 202, accepted.text

            def no_usage_bodies() -> list[dict]:
                bodies = [receiver.verify_with(secret, request) for request in list(receiver.requests)]
                return [b for b in bodies if b["data"]["kind"] == "no_usage"]

            until(lambda: any(b["type"] == "alert.raised" for b in no_usage_bodies()), what="no_usage at the webhook")
            time.sleep(2)  # any second, false alarm would be here by now
            raised = [b for b in no_usage_bodies() if b["type"] == "alert.raised"]
            assert len(raised) == 1, [b["data"]["explanation"]["en"] for b in raised]
            alert = raised[0]["data"]
            assert alert["view"] == "family" and alert["household"]["name"] == "王阿姨"  # the family's view
            assert alert["severity"] in ("high", "critical")
            used = [(a, b) for a, b in itertools.pairwise(readings) if b.register_l > a.register_l]
            last_use = max(b.ts for _, b in used if b.ts <= at_day(21, 9))
            assert datetime.fromisoformat(alert["since"]) == last_use
            assert "未用水" in alert["explanation"]["zh"] and "none since" in alert["explanation"]["en"]

            mine = family.get("/v1/alerts", params={"status": "open", "kind": "no_usage"}).json()["items"]
            assert [a["id"] for a in mine] == [alert["alert_id"]]
            assert family.post(f"/v1/alerts/{alert['alert_id']}/ack").status_code == 200
            shown = family.get(f"/v1/alerts/{alert['alert_id']}").json()
            # "family has seen it": staff are still asked to act (acknowledgement by role, docs/ALERTS.md)
            assert shown["status"] == "raised" and shown["family_seen_at"] is not None
            assert operator.post(f"/v1/alerts/{alert['alert_id']}/ack").status_code == 200
            shown = family.get(f"/v1/alerts/{alert['alert_id']}").json()
            assert shown["status"] == "acknowledged" and shown["acknowledged_at"] is not None
            assert all(p.poll() is None for p in processes)
        finally:
            for process in reversed(processes):
                stop(process)
