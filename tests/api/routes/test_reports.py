"""GET /v1/reports/monthly(.xlsx): the monthly report as JSON and as a workbook (every figure is checked in
tests/alerts/test_reports.py); here the route's answers: figures, empty reports, 422s, 404s, 403s."""

from __future__ import annotations

from datetime import UTC, datetime
from io import BytesIO

import openpyxl

from api.routes.reports import XLSX
from tests.api.conftest import T0, World, expect


def test_a_month_with_its_alerts_and_the_previous_month_beside(world: World) -> None:
    world.raise_alert(world.meter_a, kind="spike", severity="critical", since=T0.replace(day=20))
    body = expect(world.call("operator", "GET", "/v1/reports/monthly?community=CM1&month=2026-03"), 200)
    assert body["community"] == "CM1" and body["month"] == "2026-03" and body["previous_month"] == "2026-02"
    assert body["timezone"] == "Asia/Shanghai"
    spike = body["sections"]["alerts"]["by_kind"]["spike"]
    assert spike["value"] >= 1 and spike["previous"] == 0 and spike["change"] == spike["value"]
    mine = expect(world.call("supervisor", "GET", "/v1/reports/monthly?month=2026-03"), 200)
    assert mine["community"] == "CM1" and mine["sections"] == body["sections"]
    cell = expect(world.call("grid_worker", "GET", "/v1/reports/monthly?month=2026-03"), 200)
    assert cell["grid_cells"] == ["C1"] and cell["sections"]["alerts"]["by_kind"]["spike"]["value"] >= 1


def test_empty_reports_and_clear_refusals(world: World) -> None:
    nowhere = expect(world.call("operator", "GET", "/v1/reports/monthly?community=NoSuchPlace&month=2026-03"), 200)
    assert nowhere["sections"]["households"]["enrolled"] == {"value": 0, "previous": 0, "change": 0}
    quiet = expect(world.call("operator", "GET", "/v1/reports/monthly?community=CM1&month=2020-01"), 200)
    assert quiet["sections"]["alerts"]["total"]["value"] == 0
    assert quiet["sections"]["response"]["by_severity"]["high"]["ack_median_s"]["value"] is None
    future = f"{datetime.now(UTC).year + 1}-01"
    for month, says in (("2026-13", "YYYY-MM"), ("soon", "YYYY-MM"), (future, "in the future")):
        bad = expect(world.call("operator", "GET", f"/v1/reports/monthly?community=CM1&month={month}"), 422)
        assert bad["error"]["message"].startswith("month: ") and says in bad["error"]["message"]
        assert bad["error"]["details"][0]["field"] == "month"
    missing = expect(world.call("operator", "GET", "/v1/reports/monthly?community=CM1"), 422)
    assert "month" in missing["error"]["message"]
    expect(world.call("supervisor", "GET", "/v1/reports/monthly?community=CM2&month=2026-03"), 404)
    expect(world.call("grid_worker", "GET", "/v1/reports/monthly?community=CM2&month=2026-03"), 404)
    expect(world.call("family", "GET", "/v1/reports/monthly?month=2026-03"), 403)


def test_the_same_report_as_a_workbook(world: World) -> None:
    """What the console's report page downloads: the workbook of the month the caller may see."""
    world.raise_alert(world.meter_a, kind="continuous_flow", severity="high", since=T0.replace(day=21))
    response = world.call("supervisor", "GET", "/v1/reports/monthly.xlsx?month=2026-03")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XLSX
    assert response.headers["content-disposition"] == "attachment; filename*=UTF-8''report-CM1-2026-03.xlsx"
    book = openpyxl.load_workbook(BytesIO(response.content))
    assert book.sheetnames == ["概况", "告警", "响应时效", "处置结果", "居民上报", "通知送达"]
    rows = {row[0]: row[1:4] for row in book["告警"].iter_rows(values_only=True) if row and row[0]}
    assert rows["按类型 · 持续流水"][0] >= 1
    bad = expect(world.call("supervisor", "GET", "/v1/reports/monthly.xlsx?month=2026-13"), 422)
    assert bad["error"]["details"][0]["field"] == "month"
    expect(world.call("family", "GET", "/v1/reports/monthly.xlsx?month=2026-03"), 403)
