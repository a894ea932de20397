"""The monthly report (alerts/reports.py) as an Excel workbook for the district office: one sheet per
section, Chinese headings, each figure with the previous month and the change beside it (本月 / 上月 / 变化),
times in minutes (incidents' time to close in hours), and the month's lists as tables."""

from __future__ import annotations

from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.worksheet.worksheet import Worksheet

from detectors.incidents.categories import CATEGORY_ZH, URGENCY_ZH

SHEETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("概况", ("households", "meters")),
    ("告警", ("alerts", "check_ins")),
    ("响应时效", ("response",)),
    ("处置结果", ("outcomes",)),
    ("居民上报", ("residents_reports",)),
    ("通知送达", ("delivery",)),
)
FIGURE_HEADINGS = ("指标", "本月", "上月", "变化")

KIND_ZH = {
    "no_usage": "长时间未用水",
    "continuous_flow": "持续流水",
    "spike": "用水突增",
    "meter_offline": "水表离线",
    "data_quality": "数据异常",
    "routine_change": "作息变化",
    "incident": "居民上报",
    "hotspot": "高发热点",
}
SEVERITY_ZH = {"critical": "紧急", "high": "高", "medium": "中", "low": "低", "info": "提示"}
OUTCOME_ZH = {
    "false_alarm": "误报",
    "resident_fine": "老人安好",
    "help_given": "上门帮助",
    "emergency": "紧急救助",
    "condition_cleared": "情况自行解除",
}
CHECK_IN_ZH = {
    "asked": "询问中或未答复前已用水",
    "fine": "答复“我很好”",
    "away": "答复“我不在家”",
    "unanswered": "未答复，已转告",
    "failed": "无法送达，已转告",
    "fine_silent": "答复安好但仍未用水，已转告",
}
STATUS_ZH = {"pending": "待发送", "delivered": "已送达", "dead": "最终失败（死信）"}
CHANNEL_ZH = {
    "webhook": "Webhook",
    "wecom_robot": "企业微信群机器人",
    "dingtalk_robot": "钉钉群机器人",
    "feishu_bot": "飞书群机器人",
    "wecom_app": "企业微信应用消息",
    "sms": "短信",
    "email": "邮件",
}
# Figures and groups of figures: their headings, and the names of a group's members.
FIGURE_ZH = {
    "households.enrolled": "登记户数",
    "households.with_consent": "已授权户数",
    "households.with_resident": "可先问老人本人的户数",
    "meters.enrolled": "水表数",
    "meters.reporting": "正常上报的水表",
    "meters.offline_over_1d": "离线超过一天的水表",
    "alerts.total": "告警总数",
    "alerts.silenced": "静默记录（未通知）",
    "alerts.by_kind": "按类型",
    "alerts.by_severity": "按级别",
    "alerts.by_kind_severity": "",
    "check_ins.asked": "先问老人本人",
    "check_ins.settled_with_resident": "老人本人答复后结案",
    "check_ins.carers_told": "转告家属和网格员",
    "check_ins.by_state": "询问结果",
    "response.escalated_past_first_tier": "越过网格员上报",
    "response.by_severity": "",
    "outcomes.resolved": "已结案",
    "outcomes.open": "未结案",
    "outcomes.by_outcome": "处置结果",
    "outcomes.cases_total": "紧急救助与上门帮助",
    "residents_reports.incidents": "事件数",
    "residents_reports.reports": "报告数（含合并）",
    "residents_reports.by_category": "事件 · 按类别",
    "residents_reports.reports_by_category": "报告 · 按类别",
    "residents_reports.by_urgency": "按紧急程度",
    "residents_reports.hotspots": "高发热点",
    "residents_reports.hotspots_by_category": "高发热点 · 按类别",
    "residents_reports.closed": "已办结",
    "residents_reports.close_median_s": "办结用时中位数（小时）",
    "delivery.total": "通知总数",
    "delivery.dead_letters": "最终失败（死信）",
    "delivery.by_status": "按状态",
    "delivery.by_type": "",
}
RESPONSE_ZH = {
    "alerts": "告警数",
    "acknowledged": "已确认",
    "ack_median_s": "确认用时中位数（分钟）",
    "ack_p90_s": "确认用时90分位（分钟）",
    "resolved_by_people": "人工处置",
    "resolve_median_s": "处置用时中位数（分钟）",
    "resolve_p90_s": "处置用时90分位（分钟）",
    "escalated": "越级上报",
}
GROUP_NAMES = {
    "alerts.by_kind": KIND_ZH,
    "alerts.by_severity": SEVERITY_ZH,
    "alerts.by_kind_severity": KIND_ZH,
    "check_ins.by_state": CHECK_IN_ZH,
    "response.by_severity": SEVERITY_ZH,
    "outcomes.by_outcome": OUTCOME_ZH,
    "residents_reports.by_category": CATEGORY_ZH,
    "residents_reports.reports_by_category": CATEGORY_ZH,
    "residents_reports.hotspots_by_category": CATEGORY_ZH,
    "residents_reports.by_urgency": URGENCY_ZH,
    "delivery.by_status": STATUS_ZH,
    "delivery.by_type": CHANNEL_ZH,
}
INNER_NAMES = {  # a group of groups: the inner members' names
    "alerts.by_kind_severity": SEVERITY_ZH,
    "response.by_severity": RESPONSE_ZH,
    "delivery.by_type": STATUS_ZH,
}
TABLES: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "meters.offline_list": (
        "离线超过一天的水表清单",
        (
            ("alert_id", "告警编号"),
            ("meter_id", "水表编号"),
            ("grid_cell", "网格"),
            ("since", "离线起始"),
            ("offline_h", "离线时长（小时）"),
            ("still_offline", "月末仍离线"),
        ),
    ),
    "outcomes.cases": (
        "紧急救助与上门帮助清单",
        (("alert_id", "告警编号"), ("kind", "类型"), ("outcome", "处置结果"), ("date", "日期"), ("grid_cell", "网格")),
    ),
    "residents_reports.top_concerns": (
        "居民关注前十",
        (
            ("rank", "排名"),
            ("label_zh", "类别"),
            ("reports", "报告数"),
            ("households", "户数"),
            ("incidents", "事件数"),
            ("grid_cells", "网格数"),
        ),
    ),
}
_TABLE_VALUES = {"kind": KIND_ZH, "outcome": OUTCOME_ZH}
_BOLD = Font(bold=True)


def _scaled(key: str, value: Any) -> Any:
    """Seconds as minutes (hours for incidents' time to close), to one decimal."""
    if value is None or not key.endswith("_s"):
        return value
    return round(value / (3600.0 if key == "close_median_s" else 60.0), 1)


def _figure_rows(path: str, data: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any, Any, Any]]:
    for key, leaf in data.items():
        here = f"{path}.{key}"
        if isinstance(leaf, list):
            continue
        if isinstance(leaf, dict) and set(leaf) == {"value", "previous", "change"}:
            label = FIGURE_ZH.get(here) or RESPONSE_ZH.get(key) or key
            yield (
                f"{prefix}{label}",
                _scaled(key, leaf["value"]),
                _scaled(key, leaf["previous"]),
                _scaled(key, leaf["change"]),
            )
            continue
        heading = FIGURE_ZH.get(here, key)
        names = GROUP_NAMES.get(here, {})
        inner = INNER_NAMES.get(here)
        for member, values in leaf.items():
            name = names.get(member, member)
            if inner is not None:
                for inner_key, figure in values.items():
                    label = f"{prefix}{name} · {inner.get(inner_key, inner_key)}"
                    yield (
                        label,
                        _scaled(inner_key, figure["value"]),
                        _scaled(inner_key, figure["previous"]),
                        _scaled(inner_key, figure["change"]),
                    )
            else:
                label = f"{prefix}{heading} · {name}" if heading else f"{prefix}{name}"
                yield label, values["value"], values["previous"], values["change"]


def _write_sheet(sheet: Worksheet, report: dict[str, Any], sections: tuple[str, ...]) -> None:
    community = report["community"] or "全部"
    sheet.append([f"{community} 社区 {report['month']} 月报", f"上月：{report['previous_month']}"])
    sheet.append(["时区", report["timezone"], "统计区间", f"{report['period']['start']} 至 {report['period']['end']}"])
    if report.get("grid_cells") is not None:
        sheet.append(["网格", "、".join(report["grid_cells"])])
    sheet.append([])
    sheet.append(list(FIGURE_HEADINGS))
    for cell in sheet[sheet.max_row]:
        cell.font = _BOLD
    for section in sections:
        for row in _figure_rows(section, report["sections"][section]):
            sheet.append(list(row))
    for section in sections:
        for key, value in report["sections"][section].items():
            table = TABLES.get(f"{section}.{key}")
            if table is None or not isinstance(value, list):
                continue
            title, columns = table
            sheet.append([])
            sheet.append([title])
            sheet[sheet.max_row][0].font = _BOLD
            sheet.append([heading for _, heading in columns])
            for item in value:
                sheet.append(
                    [_TABLE_VALUES.get(field, {}).get(item.get(field), item.get(field)) for field, _ in columns]
                )
            if not value:
                sheet.append(["（无）"])
    sheet.column_dimensions["A"].width = 36
    for column in "BCDEF":
        sheet.column_dimensions[column].width = 16


def build_workbook(report: dict[str, Any]) -> Workbook:
    workbook = Workbook()
    first = workbook.active
    assert first is not None
    workbook.remove(first)
    for title, sections in SHEETS:
        _write_sheet(workbook.create_sheet(title), report, sections)
    return workbook


def write_workbook(report: dict[str, Any], out: str | Path | IO[bytes]) -> None:
    """The report's workbook (.xlsx) to a path or a binary file."""
    build_workbook(report).save(out)


def workbook_bytes(report: dict[str, Any]) -> bytes:
    buffer = BytesIO()
    write_workbook(report, buffer)
    return buffer.getvalue()
