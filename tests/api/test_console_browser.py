"""The console in a real browser: headless Chromium (Debian's) driven by Selenium, against the API served by
uvicorn on a free port with its own SQLite store. A grid worker signs in with their key, sees their alerts
(most severe first) with the explanation and the chart, switches the language, acknowledges one alert and
resolves another; the JSON API then shows both changes. Fails (never skips) without chromium and
chromedriver: scripts/ensure-chromium.sh installs them. With SHOUWANG_SCREENSHOT=1 the console is saved to
docs/console.png."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from alerts.db import Store
from api.app import create_app
from cli.broker import free_port
from shouwang.settings import REPO_ROOT, Settings
from tests.api.conftest import ADMIN_TOKEN, bearer, expect, household_body
from tests.api.test_console import console_settings, seed_alert

pytestmark = [pytest.mark.timeout(90), pytest.mark.tools]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT = REPO_ROOT / "docs" / "console.png"
WAIT_S = 10
# 24 hours of use: an ordinary day, then water running without a pause for the last 5 hours.
USAGE = [
    0,
    0,
    0,
    0,
    0,
    3.5,
    18.2,
    12.0,
    6.1,
    2.0,
    1.2,
    9.8,
    14.5,
    4.0,
    1.1,
    0.8,
    2.2,
    7.5,
    11.9,
    32.4,
    36.1,
    35.7,
    36.4,
    35.9,
]
OUT_OF_SCOPE = "别的网格的告警 / another cell's alert"


class ApiServer:
    """`create_app` served by uvicorn in a thread, on a free port."""

    def __init__(self, settings: Settings) -> None:
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=settings.api_port,
            log_config=None,
            server_header=False,
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.base = f"http://127.0.0.1:{settings.api_port}"

    def __enter__(self) -> ApiServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and self.thread.is_alive(), "the API did not start"
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh"
    assert CHROMEDRIVER.exists(), f"{CHROMEDRIVER} is missing: run scripts/ensure-chromium.sh"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1100,1500",
        "--lang=zh-CN",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: WebDriver, what: str, condition: object) -> object:
    # The page re-renders a card when its alert changes: an element read a moment before may be gone.
    patient = WebDriverWait(driver, WAIT_S, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))
    return patient.until(condition, message=what)  # type: ignore[arg-type]


def cards(driver: WebDriver) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, "#alert-list li.alert")


def card(driver: WebDriver, alert_id: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, f'li.alert[data-alert-id="{alert_id}"]')


def test_grid_worker_signs_in_sees_alerts_and_acknowledges(tmp_path: Path, browser: WebDriver) -> None:
    settings = console_settings(tmp_path / "var", api_port=free_port())
    with (
        ApiServer(settings) as server,
        httpx.Client(base_url=server.base, headers=bearer(ADMIN_TOKEN), timeout=10) as operator,
    ):
        home = expect(
            operator.post(
                "/v1/households",
                json={**household_body("王阿姨", "FT-12-3", "FT-Lianhua"), "address": "莲花路 12 号 3 栋 501"},
            ),
            201,
        )["id"]
        elsewhere = expect(operator.post("/v1/households", json=household_body("李伯", "FT-09-1", None)), 201)["id"]
        for household, meter in ((home, "SZ-FT-0001"), (elsewhere, "SZ-FT-0900")):
            expect(operator.post(f"/v1/households/{household}/meters", json={"meter_id": meter}), 201)
        token = expect(
            operator.post("/v1/keys", json={"name": "网格员 12-3", "role": "grid_worker", "grid_cells": ["FT-12-3"]}),
            201,
        )["token"]

        raised = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        store = Store(settings.store_url)
        try:
            no_usage = seed_alert(
                store,
                settings,
                "SZ-FT-0001",
                kind="no_usage",
                severity="high",
                since=raised - timedelta(hours=14),
                at=raised - timedelta(minutes=30),
                zh="已超过 13 小时没有用水，请电话或上门确认",
                en="no water use for over 13 hours",
            )
            flow = seed_alert(
                store,
                settings,
                "SZ-FT-0001",
                since=raised - timedelta(hours=5),
                at=raised,
                zh="自 5 小时前起持续流水，约 176 升，可能忘关水龙头或漏水",
                en="water has run without a pause for 5 hours, about 176 litres",
                facts={"usage_hourly_l": ",".join(str(v) for v in USAGE), "litres": 176},
            )
            seed_alert(
                store,
                settings,
                "SZ-FT-0900",
                kind="spike",
                severity="critical",
                since=raised,
                at=raised + timedelta(minutes=5),
                zh=OUT_OF_SCOPE,
                en=OUT_OF_SCOPE,
            )
        finally:
            store.close()

        browser.get(f"{server.base}/console")
        assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
        browser.execute_script("localStorage.clear()")
        browser.find_element(By.ID, "key").send_keys(token)
        browser.find_element(By.ID, "signin-button").click()
        wait(browser, "two alerts listed", lambda d: len(cards(d)) == 2)
        assert browser.execute_script("return sessionStorage.getItem('shouwang.console.key')") == token
        assert browser.find_element(By.ID, "signin").is_displayed() is False
        assert browser.find_element(By.ID, "fleet").is_displayed() is False, "fleet health is for operators"

        # Most severe first; the grid worker never sees the other cell's alert.
        assert [c.get_attribute("data-alert-id") for c in cards(browser)] == [flow, no_usage]
        assert OUT_OF_SCOPE not in browser.page_source
        first = card(browser, flow)
        text = first.text
        for expected in (
            "危急",
            "持续流水",
            "待确认",
            "王阿姨",
            "莲花路 12 号 3 栋 501",
            "FT-12-3",
            "SZ-FT-0001",
            "自 5 小时前起持续流水，约 176 升，可能忘关水龙头或漏水",
            "异常开始",
            "告警时间",
            "确认收到",
        ):
            assert expected in text, f"{expected!r} not on the card:\n{text}"
        assert len(first.find_elements(By.CSS_SELECTOR, "svg rect.bar-rect")) == len(USAGE)
        assert len(first.find_elements(By.CSS_SELECTOR, "svg rect.anomaly")) == 1
        second = card(browser, no_usage)
        assert "用水曲线暂无数据" in second.find_element(By.CSS_SELECTOR, "svg text.nodata").text
        outcomes = [o.text for o in second.find_elements(By.CSS_SELECTOR, "select.outcome option")]
        assert outcomes == ["误报", "居民安好", "已提供帮助", "紧急情况"]

        if os.environ.get("SHOUWANG_SCREENSHOT") == "1":
            height = browser.execute_script("return document.documentElement.scrollHeight")
            browser.set_window_size(1100, int(height) + 40)
            assert browser.save_screenshot(str(SCREENSHOT)), "the screenshot was not written"

        # English through the switch, remembered in localStorage; then back to Chinese.
        browser.find_element(By.ID, "lang").click()
        wait(browser, "English strings", lambda d: "Continuous flow" in card(d, flow).text)
        assert "no water-use series yet" in card(browser, no_usage).text
        assert browser.find_element(By.ID, "refresh").text == "Refresh"
        assert browser.execute_script("return localStorage.getItem('shouwang.console.lang')") == "en"
        browser.find_element(By.ID, "lang").click()
        wait(browser, "Chinese strings", lambda d: "持续流水" in card(d, flow).text)

        # Acknowledge: the list is reloaded and the API has it.
        card(browser, flow).find_element(By.CSS_SELECTOR, "button.ack").click()
        wait(
            browser,
            "the alert acknowledged",
            lambda d: "已确认" in card(d, flow).find_element(By.CSS_SELECTOR, ".badge.status").text,
        )
        detail = expect(operator.get(f"/v1/alerts/{flow}"), 200)
        assert detail["status"] == "acknowledged"
        assert detail["acknowledged_by"].startswith("网格员 12-3")

        # Resolve with an outcome and a note: it leaves the open list.
        second = card(browser, no_usage)
        second.find_element(By.CSS_SELECTOR, "select.outcome option[value='resident_fine']").click()
        second.find_element(By.CSS_SELECTOR, "input.note").send_keys("上门看过，老人在女儿家")
        second.find_element(By.CSS_SELECTOR, "button.resolve").click()
        wait(browser, "the resolved alert gone", lambda d: len(cards(d)) == 1)
        resolved = expect(operator.get(f"/v1/alerts/{no_usage}"), 200)
        assert (resolved["status"], resolved["outcome"], resolved["resolution_note"]) == (
            "resolved",
            "resident_fine",
            "上门看过，老人在女儿家",
        )

        # Nothing was blocked by the Content-Security-Policy, and the script raised no error (the one expected
        # failure is the 403 of the operator probe: a grid worker may not list subscriptions).
        problems = [
            entry["message"]
            for entry in browser.get_log("browser")
            if entry["level"] == "SEVERE"
            and not ("/v1/subscriptions" in entry["message"] and "403" in entry["message"])
        ]
        assert not problems, problems

        # An operator also sees fleet health: counts by status and kind over every alert.
        browser.find_element(By.ID, "signout").click()
        browser.find_element(By.ID, "key").send_keys(ADMIN_TOKEN)
        browser.find_element(By.ID, "signin-button").click()
        wait(browser, "the fleet panel", lambda d: d.find_element(By.ID, "fleet").is_displayed())
        fleet = browser.find_element(By.ID, "fleet").text
        for expected in ("按状态", "按类型", "共 3 条告警", "已处理", "用水激增", "/docs", "/metrics"):
            assert expected in fleet, f"{expected!r} not in the fleet panel:\n{fleet}"
        wait(browser, "the operator's open alerts", lambda d: len(cards(d)) == 2)

        # A bad key is refused by the API and the console goes back to the sign-in form.
        browser.find_element(By.ID, "signout").click()
        browser.find_element(By.ID, "key").send_keys("swk_key_0123456789abcdef_" + "x" * 43)
        browser.find_element(By.ID, "signin-button").click()
        wait(browser, "the sign-in error", lambda d: d.find_element(By.ID, "signin-error").is_displayed())
        assert not cards(browser)
