"""The outbox on typed channels, with a real store and local fakes of the vendors: a mass event reaches a
WeCom group robot as a few digests within its limit, with every alert accounted for; a DingTalk robot
with a wrong secret is never recorded as delivered, and operators see the channel failing."""

from __future__ import annotations

import asyncio
import random
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from alerts import admin
from alerts.action_links import ActionLinkSigner, LinkMaker
from alerts.channels.registry import Channels
from alerts.db import Store
from alerts.models import Delivery, Endpoint, EndpointMessage, Household
from alerts.outbox import OutboxConfig, OutboxDispatcher
from alerts.pipeline import RouterConfig
from alerts.router import Router
from alerts.secret_box import new_key
from alerts.webhooks import EndpointLimiter, make_client
from cli.fakes.dingtalk import FakeDingTalk
from cli.fakes.wecom import FakeWeComRobot
from shouwang.settings import Settings
from tests.alerts.conftest import LOOPBACK, T0
from tests.alerts.test_pipeline import event, route

CELL = "FT-12-3"


def _settings(tmp_path: Path, store: Store) -> Settings:
    return Settings(
        var_dir=tmp_path,
        database_url=str(store.engine.url.render_as_string(hide_password=False)),
        webhook_allow_hosts="127.0.0.0/8",
        secret_keys=new_key(),
    )


def _grid_worker_on(store: Store, channels: Channels, channel_type: str, config: dict[str, str]) -> str:
    registered = channels.register(channel_type, config)
    with store.transaction() as session:
        worker, _ = admin.create_recipient(
            session, name="网格员群", role="grid_worker", webhook_url=None, channel=registered
        )
        admin.subscribe(session, worker, grid_cell=CELL)
        return worker.id


def _homes(store: Store, count: int) -> list[str]:
    meters = []
    with store.transaction() as session:
        for i in range(count):
            home = admin.create_household(
                session,
                name=f"住户{i}",
                timezone="Asia/Shanghai",
                grid_cell=CELL,
                community="LH",
                consent_given_by="本人",
                consent_given_at=T0 - timedelta(days=30),
                consent_scope="用水异常提醒",
            )
            admin.add_meter(session, home, meter_id=f"M{i:04d}")
            meters.append(f"M{i:04d}")
    return meters


def _dispatcher(store: Store, channels: Channels, clock: list[datetime]) -> OutboxDispatcher:
    return OutboxDispatcher(
        store,
        OutboxConfig(schedule=(30.0, 60.0), lease=timedelta(seconds=30), timeout_s=5.0),
        client=make_client(allow=LOOPBACK, timeout_s=5.0),
        limiter=EndpointLimiter(2),
        clock=lambda: clock[0],
        rng=random.Random(3),
        channels=channels.build,
        links=LinkMaker(ActionLinkSigner([new_key()]), "https://shouwang.example"),
    )


@pytest.mark.slow
def test_a_water_cut_reaches_the_cells_robot_as_a_few_digests_with_every_alert(
    store: Store, config: RouterConfig, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, store)
    channels = Channels(settings)
    with FakeWeComRobot() as wecom:
        _grid_worker_on(store, channels, "wecom_robot", {"url": wecom.add_robot("k" * 32)})
        meters = _homes(store, 500)
        clock = [T0]
        dispatcher = _dispatcher(store, channels, clock)

        async def run() -> None:
            # 500 households of one cell fall silent within a minute; a dispatcher pass every simulated second
            for second in range(0, 150):
                clock[0] = T0 + timedelta(seconds=second)
                for meter in meters[second * 500 // 60 : (second + 1) * 500 // 60] if second < 60 else []:
                    route(store, config, event(meter, since=T0 - timedelta(hours=18), at=clock[0]), clock[0])
                await dispatcher.run_once()
            await dispatcher.client.aclose()

        asyncio.run(run())
        messages = [str(received.message) for received in wecom.messages]
        assert not wecom.refusals, f"the robot refused {wecom.refusals}"

    with store.transaction() as session:
        statuses = {
            status: n for status, n in session.execute(select(Delivery.status, func.count()).group_by(Delivery.status))
        }
        sent = session.execute(select(EndpointMessage.notifications, EndpointMessage.digest)).all()
    assert statuses == {"delivered": 500}, statuses
    assert sum(n for n, _ in sent) == 500, "every alert is in exactly one message"
    digests = [n for n, digest in sent if digest]
    assert 1 <= len(digests) <= 5 and len(sent) <= 12, f"{len(sent)} messages: {sent}"
    assert len(messages) == len(sent)
    announced = [int(n) for text in messages for n in re.findall(r"【汇总】(\d+) 条告警", text)]
    assert announced == digests, "each digest says how many alerts it holds"


def test_a_dingtalk_robot_with_a_wrong_secret_is_never_delivered_and_shows_failing(
    store: Store, config: RouterConfig, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, store)
    channels = Channels(settings)
    with FakeDingTalk() as dingtalk:
        url = dingtalk.add_robot("t" * 32, secret="SEC" + "a" * 40)
        _grid_worker_on(store, channels, "dingtalk_robot", {"url": url, "secret": "SEC" + "b" * 40})
        (meter,) = _homes(store, 1)
        clock = [T0]
        route(store, config, event(meter, since=T0 - timedelta(hours=18), at=T0), T0)
        dispatcher = _dispatcher(store, channels, clock)

        async def run() -> None:
            for second in range(0, 200, 20):
                clock[0] = T0 + timedelta(seconds=second)
                await dispatcher.run_once()
            await dispatcher.client.aclose()

        asyncio.run(run())
        assert not dingtalk.messages and set(dingtalk.refusals) == {310000}

    with store.transaction() as session:
        delivery = session.scalars(select(Delivery)).one()
        endpoint = session.get(Endpoint, delivery.endpoint_id)
        assert session.scalar(select(func.count()).select_from(Household)) == 1
    assert delivery.status == "dead" and delivery.delivered_at is None and "310000" in (delivery.last_error or "")
    assert endpoint is not None and endpoint.failing_since is not None
    Router(settings).refresh_gauges()
    assert REGISTRY.get_sample_value("shouwang_router_endpoints_failing", {"type": "dingtalk_robot"}) == 1.0
    assert REGISTRY.get_sample_value("shouwang_router_endpoints_failing", {"type": "wecom_robot"}) == 0.0
