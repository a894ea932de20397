"""The monthly report (alerts/reports.py) on a real store (SQLite and PostgreSQL): a month of activity
seeded through the router's pipeline and the lifecycle functions, with injected times, and every figure
checked against a count written out here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from sqlalchemy import select

from alerts import admin
from alerts.check_ins import answer_fine
from alerts.db import Store
from alerts.lifecycle import acknowledge, escalate_due, resolve
from alerts.models import Alert, Delivery, Household, Meter, Recipient
from alerts.pipeline import RouterConfig
from alerts.report_workbook import workbook_bytes, write_workbook
from alerts.reports import (
    OPERATOR,
    ReportError,
    ReportForbidden,
    ReportNotFound,
    ReportScope,
    monthly_report,
)
from alerts.statuses import DeliveryStatus
from detectors.incidents.categories import SEVERITY_OF_URGENCY
from shouwang.events import AlertEvent, AlertKind, Explanation, Severity, alert_id_for
from tests.alerts.conftest import BOX, LOOPBACK, World, build_world
from tests.alerts.test_pipeline import event, route

COMMUNITY = "FT-Lianhua"
NOW = datetime(2026, 4, 15, tzinfo=UTC)  # the report is asked for in mid-April
SHANGHAI = ZoneInfo("Asia/Shanghai")
MARCH_START = datetime(2026, 3, 1, tzinfo=SHANGHAI)
MARCH_END = datetime(2026, 4, 1, tzinfo=SHANGHAI)
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def at(day: int, hour: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


@dataclass
class Month:
    world: World
    ids: dict[str, str]  # name in this test → alert id


def incident(cell: str, name: str, since: datetime, facts: dict[str, Any], kind: str = "incident") -> AlertEvent:
    return AlertEvent(
        alert_id=alert_id_for(f"cell:{cell}:{name}", kind, since),
        event="raised",
        grid_cell=cell,
        kind=AlertKind(kind),
        severity=Severity(SEVERITY_OF_URGENCY.get(str(facts.get("urgency")), "medium")),
        since=since,
        at=since,
        explanation=Explanation(zh="楼道充电", en="corridor charging"),
        facts=facts,
    )


def with_alert(store: Store, alert_id: str, action: Any) -> None:
    with store.transaction() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        action(session, alert)


@pytest.fixture
def month(store: Store, config: RouterConfig) -> Month:
    """Homes A and B (cell C1) and D (cell C3, enrolled on 8 March) in FT-Lianhua, with one grid worker;
    home E (cell C2) in FT-Other; a resident recipient for home A; February and March of activity."""
    world = build_world(store)
    with store.transaction() as session:
        for name, cell, community, meter in (("Home D", "C3", COMMUNITY, "MD"), ("Home E", "C2", "FT-Other", "ME")):
            home = admin.create_household(
                session,
                name=name,
                timezone="Asia/Shanghai",
                grid_cell=cell,
                community=community,
                consent_given_by="the elder",
                consent_given_at=at(1, month=1),
                consent_scope="water-use alerts",
            )
            admin.add_meter(session, home, meter_id=meter)
        resident, _ = admin.create_recipient(
            session, name="Elder A", role="resident", webhook_url="http://127.0.0.1:9/speaker", allow=LOOPBACK, box=BOX
        )
        admin.subscribe(session, resident, household_id=world.home_a.id)
        grid_worker = session.get(Recipient, world.grid_worker.id)
        assert grid_worker is not None
        admin.subscribe(session, grid_worker, grid_cell="C3")  # home D's cell too
        for home in session.scalars(select(Household)):
            home.created_at = at(8) if home.name == "Home D" else at(1, month=1)
        for meter in session.scalars(select(Meter)):
            meter.created_at = at(8) if meter.meter_id == "MD" else at(1, month=1)

    ids: dict[str, str] = {}

    def raise_(name: str, alert_event: AlertEvent, now: datetime | None = None) -> None:
        ids[name] = alert_event.alert_id
        route(store, config, alert_event, now or alert_event.at)

    def ack(name: str, when: datetime) -> None:
        with_alert(
            store,
            ids[name],
            lambda s, a: acknowledge(s, a, by="grid worker", now=when, role="grid_worker", config=config),
        )

    def close(name: str, outcome: str, when: datetime) -> None:
        with_alert(
            store,
            ids[name],
            lambda s, a: resolve(s, a, by="grid worker", outcome=outcome, note=None, now=when, config=config),
        )

    # February: one silence settled as resident_fine; meter B offline from 25 February to 2 March.
    raise_("p1", event("MA", severity="high", since=at(10, 1, month=2), at=at(10, 7, month=2)))
    ack("p1", at(10, 7, month=2) + 30 * MIN)
    close("p1", "resident_fine", at(10, 8, month=2))
    raise_("p2", event("MB", kind="meter_offline", severity="medium", since=at(25, month=2), at=at(25, 12, month=2)))
    raise_("pi1", incident("C1", "pets", at(14, month=2), {"category": "pets", "urgency": "low", "report_count": 1}))

    # March.
    raise_("a1", event("MA", severity="high", since=at(3, 1), at=at(3, 7)))
    ack("a1", at(3, 7) + 10 * MIN)
    close("a1", "help_given", at(3, 9))
    route(
        store, config, event("MB", kind="meter_offline", transition="resolved", since=at(25, month=2), at=at(2)), at(2)
    )
    raise_("a2", event("MB", kind="spike", severity="critical", since=at(5, 2), at=at(5, 2)))
    ack("a2", at(5, 2) + 5 * MIN)
    close("a2", "emergency", at(5, 3))
    raise_("e1", event("ME", severity="critical", since=at(6), at=at(6)))  # another community
    ack("e1", at(7))
    raise_("a3", event("MD", kind="continuous_flow", severity="medium", since=at(10, 3), at=at(10, 3)))
    with store.transaction() as session:
        escalated = escalate_due(session, now=at(10, 6), config=config)  # a3: 2 h without an acknowledgement
        assert [a.id for a in escalated] == [ids["a3"]]
    close("a3", "false_alarm", at(10, 7))
    raise_("a4", event("MA", kind="data_quality", severity="low", since=at(12, 4), at=at(12, 4)))
    route(
        store, config, event("MA", kind="data_quality", transition="resolved", since=at(12, 4), at=at(12, 6)), at(12, 6)
    )
    asked = event("MA", severity="high", transition="check_in", since=at(15, 1), at=at(15, 9))
    raise_("a6", asked)
    with_alert(store, ids["a6"], lambda s, a: answer_fine(s, a, by="Elder A", now=at(15, 9) + 20 * MIN, config=config))
    raise_("a7", event("MA", severity="high", transition="check_in", since=at(22, 1), at=at(22, 9)))
    route(store, config, event("MA", transition="resolved", since=at(22, 1), at=at(22, 10)), at(22, 10))
    raise_("a5", event("MD", kind="meter_offline", severity="medium", since=at(18), at=at(20)))
    with store.transaction() as session:
        home_b = session.get(Household, world.home_b.id)
        assert home_b is not None
        admin.withdraw_consent(home_b, by="the elder", now=at(25))

    # Residents' reports.
    ebike = {"category": "ebike", "urgency": "high", "report_count": 3, "households": 2}
    raise_("i1", incident("C1", "inc_1", at(8, 2), ebike))
    close("i1", "help_given", at(9, 2))
    raise_("i2", incident("C3", "inc_2", at(9, 3), {"category": "clutter", "urgency": "normal", "report_count": 1}))
    raise_("i3", incident("C1", "inc_3", at(11), {"category": "ebike", "urgency": "normal", "report_count": 2}))
    close("i3", "false_alarm", at(13))
    raise_("i4", incident("C2", "inc_4", at(9), {"category": "water_pipe", "urgency": "critical", "report_count": 5}))
    raise_("h1", incident("C1", "hot_1", at(12), {"category": "ebike", "count": 4}, kind="hotspot"))

    # What the dispatcher would have done with some of the notifications.
    with store.transaction() as session:
        rows = list(session.scalars(select(Delivery).order_by(Delivery.created_at, Delivery.id)))
        for row in rows[::3]:
            row.status = DeliveryStatus.DELIVERED
        for row in rows[1::5]:
            row.status = DeliveryStatus.DEAD
    return Month(world, ids)


def figures(section: dict[str, Any]) -> dict[str, Any]:
    """The report's {"value", "previous", "change"} leaves as (value, previous)."""
    out: dict[str, Any] = {}
    for key, leaf in section.items():
        if isinstance(leaf, dict) and set(leaf) == {"value", "previous", "change"}:
            out[key] = (leaf["value"], leaf["previous"])
        elif isinstance(leaf, dict):
            out[key] = figures(leaf)
        else:
            out[key] = leaf
    return out


def deliveries_counted_here(store: Store, alert_ids: set[str], start: datetime, end: datetime) -> dict[str, int]:
    with store.transaction() as session:
        counts = {"pending": 0, "delivered": 0, "dead": 0}
        for row in session.scalars(select(Delivery)):
            if row.alert_id in alert_ids and start <= row.created_at < end:
                counts[row.status] += 1
        return counts


def test_every_figure_of_a_seeded_month(store: Store, month: Month) -> None:
    with store.transaction() as session:
        report = monthly_report(session, community=COMMUNITY, month="2026-03", scope=OPERATOR, now=NOW)
    ids = month.ids
    assert report["month"] == "2026-03" and report["previous_month"] == "2026-02"
    assert report["timezone"] == "Asia/Shanghai"
    assert report["period"] == {"start": MARCH_START.isoformat(), "end": MARCH_END.isoformat()}
    s = figures(report["sections"])

    # Homes A, B and D by March's end (D enrolled on 8 March); B withdrew its consent on 25 March.
    assert s["households"] == {"enrolled": (3, 2), "with_consent": (2, 2), "with_resident": (1, 1)}
    # MD offline since 18 March to the month's end; MB offline 25 February – 2 March (120 h; 88 h by February's end).
    assert s["meters"]["enrolled"] == (3, 2)
    assert s["meters"]["reporting"] == (2, 1)
    assert s["meters"]["offline_over_1d"] == (2, 1)
    offline = [(m["meter_id"], m["offline_h"], m["still_offline"]) for m in s["meters"]["offline_list"]]
    lasted_md = round((MARCH_END - at(18)).total_seconds() / 3600, 1)
    assert offline == [("MB", 120.0, False), ("MD", lasted_md, True)]

    alerts = s["alerts"]
    assert alerts["total"] == (7, 2)  # a1–a7; February: p1, p2 (e1 is another community's)
    assert alerts["silenced"] == (0, 0)
    assert alerts["by_kind"] == {
        "no_usage": (3, 1),
        "continuous_flow": (1, 0),
        "spike": (1, 0),
        "meter_offline": (1, 1),
        "data_quality": (1, 0),
        "routine_change": (0, 0),
    }
    assert alerts["by_severity"] == {
        "critical": (1, 0),
        "high": (3, 1),
        "medium": (2, 1),
        "low": (1, 0),
        "info": (0, 0),
    }
    assert alerts["by_kind_severity"]["no_usage"]["high"] == (3, 1)
    assert report["sections"]["alerts"]["total"]["change"] == 5

    # a6 answered "fine", a7 settled by water use while the resident was asked.
    assert s["check_ins"]["asked"] == (2, 0)
    assert s["check_ins"]["settled_with_resident"] == (2, 0)
    assert s["check_ins"]["carers_told"] == (0, 0)
    assert s["check_ins"]["by_state"]["fine"] == (1, 0) and s["check_ins"]["by_state"]["asked"] == (1, 0)

    response = s["response"]
    assert response["escalated_past_first_tier"] == (1, 0)  # a3
    high = response["by_severity"]["high"]
    # a1: 10 min to acknowledge, 2 h to resolve; a6: answered "fine" after 20 min; a7 closed by the detector.
    assert high["alerts"] == (3, 1)
    assert high["acknowledged"] == (2, 1)
    assert high["ack_median_s"] == (900.0, 1800.0)
    assert high["ack_p90_s"] == (1200.0, 1800.0)
    assert high["resolved_by_people"] == (2, 1)
    assert high["resolve_median_s"] == (4200.0, 3600.0)
    assert high["resolve_p90_s"] == (7200.0, 3600.0)
    critical = response["by_severity"]["critical"]
    assert (critical["ack_median_s"], critical["resolve_median_s"]) == ((300.0, None), (3600.0, None))
    assert report["sections"]["response"]["by_severity"]["critical"]["ack_median_s"]["change"] is None
    medium = response["by_severity"]["medium"]  # a3 resolved after 4 h without an acknowledgement; a5 open
    assert medium["alerts"] == (2, 1)
    assert (medium["ack_median_s"], medium["resolve_p90_s"], medium["escalated"]) == (
        (14400.0, None),
        (14400.0, None),
        (1, 0),
    )
    assert response["by_severity"]["low"]["acknowledged"] == (0, 0)

    outcomes = s["outcomes"]
    assert outcomes["by_outcome"] == {
        "false_alarm": (1, 0),
        "resident_fine": (1, 1),
        "help_given": (1, 0),
        "emergency": (1, 0),
        "condition_cleared": (2, 1),
    }
    assert (outcomes["resolved"], outcomes["open"], outcomes["cases_total"]) == ((6, 2), (1, 0), (2, 0))
    assert outcomes["cases"] == [
        {"alert_id": ids["a1"], "kind": "no_usage", "outcome": "help_given", "date": "2026-03-03", "grid_cell": "C1"},
        {"alert_id": ids["a2"], "kind": "spike", "outcome": "emergency", "date": "2026-03-05", "grid_cell": "C1"},
    ]

    reports = s["residents_reports"]
    assert (reports["incidents"], reports["reports"]) == ((3, 1), (6, 1))  # i4 is in another community's cell
    assert reports["by_category"]["ebike"] == (2, 0) and reports["by_category"]["clutter"] == (1, 0)
    assert reports["by_category"]["pets"] == (0, 1) and reports["by_category"]["water_pipe"] == (0, 0)
    assert reports["reports_by_category"]["ebike"] == (5, 0)
    assert reports["by_urgency"] == {"low": (0, 1), "normal": (2, 0), "high": (1, 0), "critical": (0, 0)}
    top = [
        (c["category"], c["reports"], c["households"], c["incidents"], c["grid_cells"]) for c in reports["top_concerns"]
    ]
    assert top == [("ebike", 5, 4, 2, 1), ("clutter", 1, 1, 1, 1)]
    assert reports["hotspots"] == (1, 0) and reports["hotspots_by_category"]["ebike"] == (1, 0)
    assert reports["closed"] == (2, 0)
    assert reports["close_median_s"] == ((86400.0 + 172800.0) / 2, None)

    mine = {ids[n] for n in ("a1", "a2", "a3", "a4", "a5", "a6", "a7", "i1", "i2", "i3", "h1", "p1", "p2", "pi1")}
    march = deliveries_counted_here(store, mine, MARCH_START, MARCH_END)
    february = deliveries_counted_here(store, mine, datetime(2026, 2, 1, tzinfo=SHANGHAI), MARCH_START)
    assert sum(march.values()) > 0 and march["dead"] > 0 and march["delivered"] > 0
    delivery = s["delivery"]
    assert delivery["total"] == (sum(march.values()), sum(february.values()))
    assert delivery["dead_letters"] == (march["dead"], february["dead"])
    assert delivery["by_status"] == {k: (march[k], february[k]) for k in ("pending", "delivered", "dead")}
    assert delivery["by_type"]["webhook"] == delivery["by_status"]
    assert delivery["by_type"]["sms"] == {"pending": (0, 0), "delivered": (0, 0), "dead": (0, 0)}


def test_scopes(store: Store, month: Month) -> None:
    def report(scope: ReportScope, community: str | None = COMMUNITY) -> dict[str, Any]:
        with store.transaction() as session:
            return figures(
                monthly_report(session, community=community, month="2026-03", scope=scope, now=NOW)["sections"]
            )

    supervisor = ReportScope(role="supervisor", community=COMMUNITY)
    assert report(supervisor) == report(OPERATOR)
    assert report(supervisor, None) == report(OPERATOR)
    everything = report(OPERATOR, None)  # home E and the incident in cell C2 too
    assert everything["households"]["enrolled"] == (4, 3)
    assert everything["alerts"]["total"] == (8, 2)
    assert everything["residents_reports"]["incidents"] == (4, 1)

    worker = ReportScope(role="grid_worker", grid_cells=frozenset({"C1"}))  # homes A and B only
    cell = report(worker, None)
    assert report(worker) == cell
    assert cell["households"]["enrolled"] == (2, 2)
    assert cell["meters"]["enrolled"] == (2, 2)
    assert [m["meter_id"] for m in cell["meters"]["offline_list"]] == ["MB"]
    assert cell["alerts"]["total"] == (5, 2)  # a1, a2, a4, a6, a7
    assert cell["alerts"]["by_kind"]["continuous_flow"] == (0, 0)
    assert cell["residents_reports"]["incidents"] == (2, 1)  # i1, i3
    assert [c["alert_id"] for c in cell["outcomes"]["cases"]] == [month.ids["a1"], month.ids["a2"]]

    with store.transaction() as session, pytest.raises(ReportNotFound):
        monthly_report(session, community="FT-Other", month="2026-03", scope=supervisor, now=NOW)
    with store.transaction() as session, pytest.raises(ReportNotFound):
        monthly_report(session, community="FT-Other", month="2026-03", scope=worker, now=NOW)
    with store.transaction() as session, pytest.raises(ReportForbidden):
        monthly_report(session, community=COMMUNITY, month="2026-03", scope=ReportScope(role="family"), now=NOW)


def test_empty_month_and_unknown_community_give_zeros_and_bad_months_name_the_field(store: Store) -> None:
    build_world(store)
    with store.transaction() as session:
        empty = monthly_report(session, community=COMMUNITY, month="2025-01", scope=OPERATOR, now=NOW)
        nowhere = monthly_report(session, community="FT-Nowhere", month="2026-03", scope=OPERATOR, now=NOW)
    for report in (empty, nowhere):
        s = figures(report["sections"])
        assert s["alerts"]["total"] == (0, 0)
        assert s["meters"]["offline_list"] == [] and s["outcomes"]["cases"] == []
        assert s["response"]["by_severity"]["high"]["ack_median_s"] == (None, None)
        assert s["residents_reports"]["top_concerns"] == []
        assert s["delivery"]["total"] == (0, 0)
    assert figures(empty["sections"])["households"]["enrolled"] == (0, 0)  # enrolled "now", after January 2025
    assert nowhere["timezone"] == "Asia/Shanghai" and nowhere["community"] == "FT-Nowhere"
    assert empty["previous_month"] == "2024-12"
    for bad, says in (("2026-13", "YYYY-MM"), ("March", "YYYY-MM"), ("2026-05", "in the future")):
        with store.transaction() as session, pytest.raises(ReportError) as refused:
            monthly_report(session, community=COMMUNITY, month=bad, scope=OPERATOR, now=NOW)
        assert refused.value.field == "month" and says in str(refused.value)
    with store.transaction() as session:  # the current month, so far
        assert monthly_report(session, community=COMMUNITY, month="2026-04", scope=OPERATOR, now=NOW)


def sheet_rows(sheet: Any) -> dict[str, tuple[Any, ...]]:
    """A sheet's rows by their first cell."""
    return {str(row[0]): tuple(row[1:4]) for row in sheet.iter_rows(values_only=True) if row and row[0] is not None}


def test_the_workbook_reads_back_with_every_sheet_and_the_month_beside_the_previous(
    store: Store, month: Month, tmp_path: Path
) -> None:
    with store.transaction() as session:
        report = monthly_report(session, community=COMMUNITY, month="2026-03", scope=OPERATOR, now=NOW)
    path = tmp_path / "report.xlsx"
    write_workbook(report, path)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["概况", "告警", "响应时效", "处置结果", "居民上报", "通知送达"]
    overview = sheet_rows(book["概况"])
    assert overview["指标"] == ("本月", "上月", "变化")
    assert overview["登记户数"] == (3, 2, 1)
    assert overview["离线超过一天的水表"] == (2, 1, 1)
    assert overview["离线超过一天的水表清单"] == (None, None, None)
    table = [row for row in book["概况"].iter_rows(values_only=True) if row[0] in {month.ids["a5"], month.ids["p2"]}]
    assert [(row[1], row[5]) for row in table] == [("MB", False), ("MD", True)]
    alerts = sheet_rows(book["告警"])
    assert alerts["告警总数"] == (7, 2, 5)
    assert alerts["按类型 · 长时间未用水"] == (3, 1, 2)
    assert alerts["按级别 · 紧急"] == (1, 0, 1)
    assert alerts["先问老人本人"] == (2, 0, 2)
    response = sheet_rows(book["响应时效"])
    assert response["高 · 确认用时中位数（分钟）"] == (15.0, 30.0, -15.0)  # 900 s and 1800 s
    assert response["紧急 · 处置用时中位数（分钟）"] == (60.0, None, None)
    assert response["越过网格员上报"] == (1, 0, 1)
    outcomes = sheet_rows(book["处置结果"])
    assert outcomes["处置结果 · 紧急救助"] == (1, 0, 1)
    assert outcomes[month.ids["a1"]] == ("长时间未用水", "上门帮助", "2026-03-03")
    assert outcomes[month.ids["a2"]] == ("用水突增", "紧急救助", "2026-03-05")
    residents = sheet_rows(book["居民上报"])
    assert residents["事件数"] == (3, 1, 2)
    assert residents["事件 · 按类别 · 电动车停放充电"] == (2, 0, 2)
    assert residents["按紧急程度 · 高"] == (1, 0, 1)
    assert residents["办结用时中位数（小时）"] == (36.0, None, None)
    assert residents["1"] == ("电动车停放充电", 5, 4)  # the top concerns: rank, category, reports, households
    delivery = sheet_rows(book["通知送达"])
    figures_ = report["sections"]["delivery"]
    assert delivery["通知总数"] == (
        figures_["total"]["value"],
        figures_["total"]["previous"],
        figures_["total"]["change"],
    )
    assert delivery["Webhook · 最终失败（死信）"][0] == figures_["dead_letters"]["value"] > 0


def test_an_empty_report_still_makes_every_sheet(store: Store) -> None:
    with store.transaction() as session:
        report = monthly_report(session, community="FT-Nowhere", month="2026-03", scope=OPERATOR, now=NOW)
    book = openpyxl.load_workbook(BytesIO(workbook_bytes(report)))
    assert len(book.sheetnames) == 6
    assert sheet_rows(book["告警"])["告警总数"] == (0, 0, 0)
    assert "（无）" in sheet_rows(book["处置结果"])
