"""Incident reports on the real stack: API → Kafka → worker (classify, merge, hotspot) → router →
the grid worker's webhook; garbage is refused or dead-lettered; top concerns rank them."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from alerts import admin
from alerts.db import Store
from alerts.models import Alert
from alerts.secret_box import secret_box
from cli.broker import free_port
from shouwang.deadletter import read_headers
from shouwang.settings import Settings
from shouwang.topics import Topics
from streams.topic_provisioning import provision_topics
from tests.alerts.webhooks.receiver import Receiver
from tests.conftest import settings_env
from tests.kafka_helpers import consume, produce, start_shouwang, stop, until, wait_http

pytestmark = pytest.mark.kafka
ADMIN = "incident-test-admin-token-0123456789abcdef"
CHARGING = [
    "3栋2单元楼道里有人给电动车充电，电线从窗户吊下来，太危险了",
    "3栋2单元楼道又有电动车在充电，插线板就放在楼梯口",
    "3栋2单元一楼楼道电动车充电，晚上一直充，担心起火",
    "3栋2单元有人把电动车推进楼道充电，已经好几天了",
    "3栋2单元楼道电动车充电问题还是没人管，电线拉得到处都是",
    "3栋2单元楼梯间有电动车充电，电池还在发热",
]


def test_reports_are_classified_merged_routed_and_ranked(kafka_settings: Settings, tmp_path: Path) -> None:
    settings = kafka_settings.model_copy(
        update={
            "database_url": f"sqlite:///{tmp_path / 'store.db'}",
            "router_metrics_port": free_port(),
            "api_port": free_port(),
            "admin_token": ADMIN,
            "webhook_allow_hosts": "127.0.0.0/8",
        }
    )
    provision_topics(settings)
    store = Store(str(settings.database_url))
    env = {**settings_env(settings), "SHOUWANG_ADMIN_TOKEN": ADMIN}
    api_url = f"http://127.0.0.1:{settings.api_port}"
    with Receiver() as receiver:
        with store.transaction() as session:
            admin.create_household(
                session,
                name="Home",
                timezone="Asia/Shanghai",
                grid_cell="C7",
                community="CM7",
                consent_given_by="the elder",
                consent_given_at=datetime.now(UTC) - timedelta(days=1),
                consent_scope="alerts",
            )
            worker, secret = admin.create_recipient(
                session,
                name="grid worker C7",
                role="grid_worker",
                webhook_url=receiver.url,
                allow=["127.0.0.0/8"],
                box=secret_box(settings),
            )
            admin.subscribe(session, worker, grid_cell="C7")
        processes = [start_shouwang([name], env, tmp_path / f"{name}.log") for name in ("worker", "router", "api")]
        try:
            wait_http(f"{api_url}/healthz")
            client = httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30)
            until(lambda: client.get("/readyz").status_code == 200)
            for text in CHARGING:
                assert client.post("/v1/incidents", json={"text": text, "grid_cell": "C7"}).status_code == 202
            lift = client.post("/v1/incidents", json={"text": "5栋电梯又坏了，老人上不了楼", "grid_cell": "C7"})
            assert lift.status_code == 202
            for bad in (
                {"text": "", "grid_cell": "C7"},
                {"text": "x" * 100_000, "grid_cell": "C7"},
                {"text": "楼道堆物", "grid_cell": "bad cell!"},
                {"text": "😡😡😡", "grid_cell": "C7"},
            ):
                refused = client.post("/v1/incidents", json=bad)
                assert refused.status_code in (413, 422) and "error" in refused.json()
            junk = b"\x00\xff\xfe not an incident"
            produce(settings.bootstrap_servers, Topics.from_settings(settings).incidents, [(b"C7", junk)])

            def routed() -> list[dict]:
                return [receiver.verify_with(secret, r) for r in receiver.requests]

            until(lambda: len(routed()) >= 3)
            time.sleep(2)  # anything extra (a second alert for a merged report) would show up by now

            def merged_count() -> int:
                with store.transaction() as session:
                    alerts = session.scalars(select(Alert).where(Alert.kind == "incident")).all()
                    return max((int(a.facts.get("report_count", 0)) for a in alerts), default=0)

            until(lambda: merged_count() == len(CHARGING))
            concerns = client.get("/v1/concerns", params={"community": "CM7"}).json()["concerns"]
            letters = consume(
                settings.bootstrap_servers,
                Topics.from_settings(settings).deadletter,
                until=lambda records: len(records) >= 1,
                timeout=20,
            )
            assert all(p.poll() is None for p in processes), "no process may crash on bad input"
        finally:
            for process in reversed(processes):
                stop(process)
    bodies = routed()
    kinds = sorted((b["data"]["kind"], b["data"]["facts"].get("category")) for b in bodies)
    assert kinds == [("hotspot", "ebike"), ("incident", "ebike"), ("incident", "facility")]
    ebike = next(b for b in bodies if b["data"]["kind"] == "incident" and b["data"]["facts"]["category"] == "ebike")
    assert ebike["data"]["severity"] in ("high", "critical") and ebike["data"]["grid_cell"] == "C7"
    hotspot = next(b for b in bodies if b["data"]["kind"] == "hotspot")
    assert "C7" in hotspot["data"]["explanation"]["en"]
    assert concerns[0]["category"] == "ebike" and concerns[0]["reports"] == concerns[0]["households"] == len(CHARGING)
    assert [(r.value, read_headers(r.headers)["shouwang.source.topic"]) for r in letters] == [
        (junk, Topics.from_settings(settings).incidents)
    ]
    store.close()
