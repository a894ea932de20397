"""The router wakes its dispatcher when it records what may be due to send (an alert event), and not for a
meter's day summary, which makes no notification: the fault run saw each router use 0.4 of a core at about
56 summaries a second, every one followed by a pass of the dispatcher's queries. On the real broker."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from alerts.db import Store
from alerts.models import Alert, MeterDay
from alerts.router import Router
from shouwang.events import encode
from shouwang.settings import Settings
from shouwang.topics import Topics
from tests.alerts.test_all_is_well import summary
from tests.integration.test_router import alert_event
from tests.integration.test_router_rebalance import router_of_its_own
from tests.kafka_helpers import produce

pytestmark = pytest.mark.kafka


def test_an_alert_event_wakes_the_dispatcher_and_a_day_summary_does_not(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    settings = router_of_its_own(kafka_settings, tmp_path)
    topics = Topics.from_settings(settings)
    produce(settings.bootstrap_servers, topics.daily, [(b"MA", encode(summary(date(2026, 3, 2), "06:40")))])
    produce(settings.bootstrap_servers, topics.alerts, [(b"M01", encode(alert_event("M01", "spike", "high")))])
    assert asyncio.run(_woken(settings)) == {"daily": False, "alerts": True}


async def _woken(settings: Settings) -> dict[str, bool]:
    router = Router(settings)
    store = Store(str(settings.database_url))

    def rows(model: type) -> int:
        with store.transaction() as session:
            return session.scalar(select(func.count()).select_from(model)) or 0

    loops: dict[str, tuple[Callable[[], Awaitable[None]], type]] = {
        "daily": (router.consume_daily, MeterDay),
        "alerts": (router.consume, Alert),
    }
    woken: dict[str, bool] = {}
    try:
        for name, (consume, model) in loops.items():
            router.wake.clear()
            router.stop_event.clear()
            consuming = asyncio.create_task(consume())
            deadline = asyncio.get_running_loop().time() + 60
            while not rows(model):
                assert not consuming.done(), consuming.exception()
                assert asyncio.get_running_loop().time() < deadline, f"the {name} record was not recorded"
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)  # its offset commit, then the wake, follow the record
            woken[name] = router.wake.is_set()
            router.stop_event.set()
            await consuming
    finally:
        router.stop_event.set()
        store.close()
    return woken
