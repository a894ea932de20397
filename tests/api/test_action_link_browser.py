"""The one-tap link, as a grid worker uses it on a phone: a real alert reaches a DingTalk group (a local
fake that checks the signature) as an action card; its "我来处理" button, opened in headless Chromium at
a phone's size, shows the alert and a confirm button; tapping it acknowledges the alert as that
recipient, which the API then shows. Real API (uvicorn), real store, real outbox dispatcher."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions

from alerts.action_links import ActionLinkSigner, LinkMaker
from alerts.channels.registry import Channels
from alerts.db import Store
from alerts.outbox import OutboxConfig, OutboxDispatcher
from alerts.secret_box import secret_keys
from alerts.webhooks import EndpointLimiter, make_client
from cli.broker import free_port
from cli.fakes.dingtalk import FakeDingTalk
from tests.api.conftest import ADMIN_TOKEN, bearer, expect, household_body
from tests.api.test_console import console_settings, seed_alert
from tests.api.test_console_browser import ApiServer, browser, wait  # noqa: F401  (browser: a fixture)

pytestmark = [pytest.mark.timeout(120), pytest.mark.tools]
PHONE = (390, 844)


def _dispatch_once(store: Store, channels: Channels, links: LinkMaker) -> None:
    async def run() -> None:
        client = make_client(allow=("127.0.0.0/8",), timeout_s=5.0)
        dispatcher = OutboxDispatcher(
            store,
            OutboxConfig(schedule=(1.0,), lease=timedelta(seconds=30), timeout_s=5.0),
            client=client,
            limiter=EndpointLimiter(2),
            rng=random.Random(1),
            channels=channels.build,
            links=links,
            box=channels.box,
        )
        try:
            await dispatcher.run_once()
        finally:
            await client.aclose()

    asyncio.run(run())


def test_a_grid_worker_acknowledges_from_the_dingtalk_card_on_a_phone(tmp_path: Path, browser: WebDriver) -> None:  # noqa: F811
    port = free_port()
    settings = console_settings(
        tmp_path / "var", api_port=port, public_url=f"http://127.0.0.1:{port}", webhook_allow_hosts="127.0.0.0/8"
    )
    with (
        FakeDingTalk() as dingtalk,
        ApiServer(settings) as server,
        httpx.Client(base_url=server.base, headers=bearer(ADMIN_TOKEN), timeout=10) as operator,
    ):
        secret = "SEC" + "5" * 40
        channel = {"type": "dingtalk_robot", "url": dingtalk.add_robot("d" * 32, secret=secret), "secret": secret}
        body = {**household_body("王阿姨", "FT-12-3", "FT-Lianhua"), "address": "莲花路 12 号 3 栋 501"}
        home = expect(operator.post("/v1/households", json=body), 201)["id"]
        expect(operator.post(f"/v1/households/{home}/meters", json={"meter_id": "SZ-FT-0001"}), 201)
        group = expect(
            operator.post("/v1/recipients", json={"name": "莲花社区网格群", "role": "grid_worker", "channel": channel}),
            201,
        )
        expect(operator.post("/v1/subscriptions", json={"recipient_id": group["id"], "grid_cell": "FT-12-3"}), 201)

        store = Store(settings.store_url)
        try:
            at = datetime.now(UTC).replace(microsecond=0)
            since = at - timedelta(hours=18)
            alert_id = seed_alert(store, settings, "SZ-FT-0001", kind="no_usage", severity="high", since=since, at=at)
            links = LinkMaker(ActionLinkSigner(secret_keys(settings)), settings.public_url)
            _dispatch_once(store, Channels(settings), links)
        finally:
            store.close()
        (card,) = dingtalk.wait_for(1)
        action_card = card.message["actionCard"]
        assert "王阿姨" not in str(action_card) and "莲花路" not in str(action_card), "a group sees no name or address"
        ack_url = next(button["actionURL"] for button in action_card["btns"] if button["title"] == "我来处理")

        browser.set_window_size(*PHONE)
        browser.get(ack_url)
        confirm = wait(browser, "the confirm button", expected_conditions.element_to_be_clickable((By.ID, "confirm")))
        assert confirm.size["width"] >= 300, "the button fills a phone's width"  # type: ignore[attr-defined]
        assert "长时间未用水" in browser.page_source and "王阿姨" not in browser.page_source
        assert expect(operator.get(f"/v1/alerts/{alert_id}"), 200)["status"] == "raised", "opening changed nothing"
        browser.save_screenshot(str(tmp_path / "action-page.png"))
        confirm.click()  # type: ignore[attr-defined]
        result = wait(browser, "the result", expected_conditions.visibility_of_element_located((By.ID, "result")))
        assert "已记录" in result.text  # type: ignore[attr-defined]

        alert = expect(operator.get(f"/v1/alerts/{alert_id}"), 200)
        assert alert["status"] == "acknowledged"
        assert alert["acknowledged_by"].startswith("莲花社区网格群") and group["id"] in alert["acknowledged_by"]
        browser.get(ack_url)  # the same link again: used, changes nothing
        wait(
            browser,
            "the used page",
            expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, ".result-used")),
        )
