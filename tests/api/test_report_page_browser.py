"""The monthly report page in a real browser: headless Chromium against the API served by uvicorn, its store holding
the demo community's month (alerts/report_demo.py, seeded through the router's pipeline and the lifecycle functions).
A supervisor signs in and reads the month's figures — the same as the JSON API's — with a chart per section, in
Chinese; the English switch and back; the message's workbook link downloads the workbook; a family's key is
refused. With SHOUWANG_SCREENSHOT=1 the page is saved to docs/report.png."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import httpx
import openpyxl
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from sqlalchemy import select

from alerts.db import Store
from alerts.models import Recipient
from alerts.report_demo import COMMUNITY, seed_demo
from alerts.reports import previous_month_of
from cli.broker import free_port
from shouwang.settings import REPO_ROOT
from tests.api.conftest import ADMIN_TOKEN, bearer, expect
from tests.api.test_console import console_settings
from tests.api.test_console_browser import ApiServer, browser, wait

pytestmark = [pytest.mark.timeout(150), pytest.mark.tools]
__all__ = ["browser"]  # the fixture, shared with the console's browser test

SCREENSHOT = REPO_ROOT / "docs" / "report.png"
CHARTS = ["kind", "severity", "ack", "outcome", "category", "channel"]


def kpi(driver: WebDriver, path: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, f'.kpi[data-figure="{path}"] .kpi-value').text)


def test_a_supervisor_reads_the_month_in_chinese_then_english_and_a_family_is_refused(
    tmp_path: Path, browser: WebDriver
) -> None:
    settings = console_settings(tmp_path / "var", api_port=free_port())
    month = previous_month_of(datetime.now(UTC).date())
    with (
        ApiServer(settings) as server,
        httpx.Client(base_url=server.base, headers=bearer(ADMIN_TOKEN), timeout=20) as operator,
    ):
        store = Store(settings.store_url)
        try:
            seed_demo(store, settings, month=month)
            with store.transaction() as session:
                family_id = session.scalar(select(Recipient.id).where(Recipient.role == "family").limit(1))
        finally:
            store.close()
        keys = {
            role: expect(operator.post("/v1/keys", json={"name": f"{role} key", "role": role, **scope}), 201)["token"]
            for role, scope in (("supervisor", {"community": COMMUNITY}), ("family", {"recipient_id": family_id}))
        }
        report = expect(operator.get(f"/v1/reports/monthly?community={COMMUNITY}&month={month}"), 200)
        sections = report["sections"]

        browser.get(f"{server.base}/console/report?month={month}")
        assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
        browser.find_element(By.ID, "key").send_keys(keys["supervisor"])
        browser.find_element(By.ID, "signin-button").click()
        wait(browser, "the report drawn", lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
        year, mon = month.split("-")
        title = browser.find_element(By.ID, "report-title").text
        assert title == f"{COMMUNITY} · {year}年{int(mon)}月 社区月度报表"

        # The figures are the API's, this month's and the previous one's.
        for path in ("households.enrolled", "alerts.total", "residents_reports.incidents", "delivery.dead_letters"):
            section, figure = path.split(".")
            assert kpi(browser, path) == str(sections[section][figure]["value"]), path
        emergencies = sections["outcomes"]["by_outcome"]["emergency"]
        prev = browser.find_element(By.CSS_SELECTOR, '.kpi[data-figure="outcomes.by_outcome.emergency"] .kpi-prev')
        assert prev.text.startswith(f"上月 {emergencies['previous']}")
        # A chart per section, each bar the figure it stands for (kinds with any alert either month).
        charts = browser.find_elements(By.CSS_SELECTOR, "figure.report-chart")
        assert [c.get_attribute("data-chart") for c in charts] == CHARTS
        by_kind = sections["alerts"]["by_kind"]
        drawn = [
            int(r.get_attribute("data-value") or -1) for r in charts[0].find_elements(By.CSS_SELECTOR, "rect.bar-now")
        ]
        assert drawn == [f["value"] for f in by_kind.values() if f["value"] or f["previous"]]
        text = browser.find_element(By.ID, "report").text
        for words in (
            "告警 · 按类型",
            "长时间未用水",
            "响应时效",
            "居民关注排行（前十）",
            "通知送达",
            "离线超过一天的水表",
        ):
            assert words in text, words

        if os.environ.get("SHOUWANG_SCREENSHOT") == "1":
            height = browser.execute_script("return document.documentElement.scrollHeight")
            browser.set_window_size(1100, int(height) + 140)  # the window's frame takes some of its height
            assert browser.save_screenshot(str(SCREENSHOT)), "the screenshot was not written"

        browser.find_element(By.ID, "lang").click()
        wait(browser, "English", lambda d: "monthly report" in d.find_element(By.ID, "report-title").text)
        assert "Alerts by kind" in browser.find_element(By.ID, "report").text
        assert browser.execute_script("return localStorage.getItem('shouwang.console.lang')") == "en"
        browser.find_element(By.ID, "lang").click()
        wait(browser, "Chinese again", lambda d: "社区月度报表" in d.find_element(By.ID, "report-title").text)

        # The message's workbook link: the same page, which downloads the workbook once signed in (here, still).
        downloads = tmp_path / "downloads"
        browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        browser.get(f"{server.base}/console/report?community={COMMUNITY}&month={month}&download=xlsx")
        wait(browser, "the workbook downloaded", lambda d: "已下载" in d.find_element(By.ID, "status").text)
        book = downloads / f"report-{COMMUNITY}-{month}.xlsx"
        wait(browser, "the file written", lambda d: book.is_file() and book.stat().st_size > 0)
        assert openpyxl.load_workbook(book).sheetnames[0] == "概况"
        assert "download" not in browser.current_url, "a reload does not download again"

        # A family's key: the API refuses it, and the page says so and shows nothing.
        browser.find_element(By.ID, "signout").click()
        browser.find_element(By.ID, "key").send_keys(keys["family"])
        browser.find_element(By.ID, "signin-button").click()
        wait(browser, "the refusal", lambda d: "无权查看报表" in d.find_element(By.ID, "status").text)
        assert browser.find_element(By.ID, "report").text == ""
        problems = [
            entry["message"]
            for entry in browser.get_log("browser")
            if entry["level"] == "SEVERE" and "403" not in entry["message"]
        ]
        assert not problems, problems
