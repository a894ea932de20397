"""Messages for people, rendered from Jinja templates in a sandbox.

A template is looked up by channel type, family (``markdown``, ``text``, ``email``), event type and
language, most specific first, in an operator's override folder before the shipped one
(``alerts/channels/templates/``)::

    dingtalk_robot.alert.raised.zh-CN.j2, dingtalk_robot.zh-CN.j2, markdown.alert.raised.zh-CN.j2, markdown.zh-CN.j2

A template defines the blocks ``title`` and ``body`` (email also ``html``). Privacy is enforced here, in
the variables, not in the templates: for a ``group`` audience the variables hold a masked name, at most
the building of the address, and no explanation, facts, meter or note, so no template (shipped or
override) can put an elder's full name, address or water use into a group chat. Undefined variables are
errors (``StrictUndefined``), so a typo in an override fails ``check_templates`` instead of sending a
message with a hole in it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from alerts.channels import wording as w
from alerts.channels.base import ActionLink, Audience, Notification
from alerts.payloads import EVENT_TYPES as PAYLOAD_EVENT_TYPES
from alerts.payloads import view_for

DEFAULT_DIR = Path(__file__).parent / "templates"
ALL_IS_WELL_EVENT = "household.all_is_well"
AWAY_EVENT = "household.away"
REPORT_EVENT = "report.monthly"
EVENT_TYPES = PAYLOAD_EVENT_TYPES  # every message a payload may be: one list, in alerts/payloads.py
# Many notifications to one rate-limited endpoint in one message (alerts/channel_batches.py): its data is
# {"count", "items": [{"type", …alert data}]}; each item is filtered for the audience like a single alert.
DIGEST_EVENT = "alert.digest"
ALL_EVENT_TYPES = (*EVENT_TYPES, DIGEST_EVENT)
MAX_DIGEST_ITEMS = 30  # lines in one digest; the rest is counted ("and 12 more")
DEFAULT_TIMEZONE = "Asia/Shanghai"
# check_templates' samples: (with a household, with action links, as whose view): staff's, then a family's.
_SAMPLE_CASES = ((True, True, "grid_worker"), (False, False, "grid_worker"), (True, True, "family"))

# (channel type, family, audience) of every channel rendered from these templates: check_templates tries each.
CHANNEL_FAMILIES: tuple[tuple[str, str, Audience], ...] = (
    ("dingtalk_robot", "markdown", "group"),
    ("wecom_robot", "markdown", "group"),
    ("wecom_robot", "text", "group"),
    ("feishu_bot", "markdown", "group"),
    ("wecom_app", "markdown", "person"),
    ("wecom_app", "text", "person"),
    ("email", "email", "person"),
)

# "3 栋", "12号楼", "A座", "Building 3": the building alone says where to knock without saying which door.
_BUILDING_ZH = re.compile(r"([0-9０-９A-Za-z一二三四五六七八九十百]+)\s*(栋|幢|号楼|座)")
_BUILDING_EN = re.compile(r"\b(Building|Bldg\.?|Block|Tower)\s*([0-9A-Za-z]+)\b", re.IGNORECASE)


class TemplateError(ValueError):
    """A template that cannot be found, parsed or rendered; the message names the template and the cause."""


@dataclass(frozen=True)
class Rendered:
    title: str  # one line: a chat's title or preview, an email's subject
    body: str
    html: str | None = None  # email only, when its template has an ``html`` block


class Templates:
    """The templates of one deployment: ``override_dir`` (searched first), then the shipped ones."""

    def __init__(self, override_dir: str | Path | None = None) -> None:
        loaders: list[jinja2.BaseLoader] = []
        self.override_dir = None if override_dir is None else Path(override_dir)
        if self.override_dir is not None:
            if not self.override_dir.is_dir():
                raise TemplateError(f"template folder {self.override_dir} does not exist or is not a folder")
            loaders.append(jinja2.FileSystemLoader(self.override_dir))
        loaders.append(jinja2.FileSystemLoader(DEFAULT_DIR))
        # Sandboxed: override templates are written by operators, and must not reach Python's internals.
        self._env = SandboxedEnvironment(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # chat markdown and plain text; the email html block turns escaping on itself
            trim_blocks=True,
            lstrip_blocks=True,
        )

    @staticmethod
    def candidates(*, channel_type: str, family: str, event_type: str, language: str) -> list[str]:
        return [
            f"{channel_type}.{event_type}.{language}.j2",
            f"{channel_type}.{language}.j2",
            f"{family}.{event_type}.{language}.j2",
            f"{family}.{language}.j2",
        ]

    def render(
        self, notification: Notification, *, channel_type: str, family: str, audience: Audience, buttons: bool = False
    ) -> Rendered:
        """The message for ``notification`` as ``audience`` may read it. ``buttons``: the channel shows the
        action links as buttons of its own, so the body need not list them."""
        language = w.language_of(notification.language)
        names = self.candidates(
            channel_type=channel_type, family=family, event_type=notification.event_type, language=language
        )
        try:
            template = self._env.select_template(names)
        except jinja2.TemplatesNotFound:
            raise TemplateError(f"no {family} template for {channel_type}: looked for {', '.join(names)}") from None
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"template {exc.name or exc.filename} line {exc.lineno}: {exc.message}") from None
        variables = message_context(notification, audience=audience, buttons=buttons)
        try:
            context = template.new_context(variables)
            title = " ".join(_block(template, context, "title").split())
            body = _tidy(_block(template, context, "body"))
            html = _tidy(_block(template, context, "html")) if "html" in template.blocks else None
        except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
            where = f"{template.name} failed for {notification.event_type} ({audience})"
            raise TemplateError(f"template {where}: {type(exc).__name__}: {exc}") from None
        if not title or not body:
            missing = "title" if not title else "body"
            raise TemplateError(f"template {template.name} rendered an empty {missing} for {notification.event_type}")
        return Rendered(title=title, body=body, html=html or None)


def _block(template: jinja2.Template, context: Any, name: str) -> str:
    block = template.blocks.get(name)
    if block is None:
        raise TemplateError(f"template {template.name} has no {{% block {name} %}}")
    return "".join(block(context))


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


def mask_name(name: str | None) -> str | None:
    """王阿姨 → 王**: the first character only, and always two stars so the length says nothing either."""
    name = (name or "").strip()
    return f"{name[0]}**" if name else None


def building_of(address: str | None) -> str | None:
    """The building part of an address ("3栋", "Building 3") when exactly one is found, else None: an
    address we cannot take apart reliably shows nothing rather than too much."""
    if not address:
        return None
    found = [f"{m.group(1)}{m.group(2)}" for m in _BUILDING_ZH.finditer(address)]
    found += [f"{m.group(1).capitalize()} {m.group(2)}" for m in _BUILDING_EN.finditer(address)]
    return found[0] if len(found) == 1 else None


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _local_time(value: object, timezone: str, language: str) -> str | None:
    """An ISO timestamp as the household reads its clock: 3月2日 09:00 / 2 Mar 09:00."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is not None:
            moment = moment.astimezone(ZoneInfo(timezone))
    except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        return None
    if language == "en":
        return f"{moment.day} {w.MONTHS_EN[moment.month - 1]} {moment:%H:%M}"
    return f"{moment.month}月{moment.day}日 {moment:%H:%M}"


def _timezone(household: Mapping[str, Any]) -> str:
    name = _text(household.get("timezone")) or DEFAULT_TIMEZONE
    try:
        ZoneInfo(name)
    except (ValueError, KeyError):
        return DEFAULT_TIMEZONE
    return name


def _actions(actions: Iterable[ActionLink], language: str) -> list[dict[str, str]]:
    return [
        {"action": link.action, "label": link.label_en if language == "en" else link.label_zh, "url": link.url}
        for link in actions
    ]


def message_context(notification: Notification, *, audience: Audience, buttons: bool = False) -> dict[str, Any]:
    """The variables every template gets, already filtered for ``audience`` (see the module docstring)."""
    language = w.language_of(notification.language)
    event, data = notification.event_type, notification.data
    group = audience == "group"
    household, explanations, resolution = (
        raw if isinstance(raw := data.get(key), Mapping) else {} for key in ("household", "explanation", "resolution")
    )
    timezone = _timezone(household)
    kind, severity = _text(data.get("kind")), _text(data.get("severity"))
    name, address = _text(household.get("name")), _text(household.get("address"))
    shown_name = mask_name(name) if group else name
    grid_cell = _text(data.get("grid_cell"))
    cell_words = ("Grid cell " if language == "en" else "网格 ") + grid_cell if grid_cell else None
    raw_facts = data.get("facts")
    outcome = _text(resolution.get("outcome"))
    message = _all_is_well_message(data, language, group) if event == ALL_IS_WELL_EVENT else None
    away_until = _local_time(data.get("away_until"), timezone, language) if event == AWAY_EVENT else None
    if event == AWAY_EVENT:
        message = _away_message(data, language, shown_name or cell_words or "", away_until, group)
    report = _report(data, language) if event == REPORT_EVENT else None
    if report is not None:  # counts only, no household (a group reads what a person reads), named by its community
        message, cell_words = report["message"], report["community"]
    no_kind = ("alert.resolved", "endpoint.ping", "alert.check_in", ALL_IS_WELL_EVENT, AWAY_EVENT, REPORT_EVENT)
    if event in (*no_kind, DIGEST_EVENT):
        advice, event_advice = w.pick(w.EVENT_ADVICE, event, language), None
    else:
        pair = w.ADVICE.get(kind or "", w.DEFAULT_ADVICE)
        advice = pair[1] if language == "en" else pair[0]
        event_advice = w.pick(w.EVENT_ADVICE, event, language, default="") or None
    return {
        "event": event,
        "event_label": w.pick(w.EVENT_LABELS, event, language),
        "lang": language,
        "audience": audience,
        "alert_id": _text(data.get("alert_id")),
        "kind": kind,
        "kind_label": w.pick(w.KIND_LABELS, kind, language) if kind else message,
        "message": message,
        "severity": severity,
        "severity_label": w.pick(w.SEVERITY_LABELS, severity, language) if severity else None,
        "advice": advice,
        "event_advice": event_advice,
        "name": shown_name,
        "who": shown_name or cell_words or ("Shouwang" if language == "en" else "守望"),
        "building": building_of(address) if group else None,
        "address": None if group else address,
        "grid_cell": grid_cell,
        "at": _local_time(data.get("at") or notification.payload.get("timestamp"), timezone, language),
        "since": None if group else _local_time(data.get("since"), timezone, language),
        "explanation": None if group else _text(explanations.get("en" if language == "en" else "zh")),
        "facts": {} if group or not isinstance(raw_facts, Mapping) else dict(raw_facts),
        "meter_id": None if group else _text(data.get("meter_id")),
        "tier": data.get("tier") if isinstance(data.get("tier"), int) else None,
        "outcome": outcome,
        "outcome_label": w.pick(w.OUTCOME_LABELS, outcome, language) if outcome else None,
        "resolved_at": _local_time(resolution.get("at"), timezone, language),
        "note": None if group else _text(data.get("note") if event == AWAY_EVENT else resolution.get("note")),
        "away_until": away_until,
        "report": report,
        "family_seen": _family_seen(data.get("family_seen"), timezone, language, group=group),
        "told": w.told(data.get("told"), language),  # a family's view: the roles told, never names
        "endpoint_id": _text(data.get("endpoint_id")),
        "actions": _actions(notification.actions, language),
        "buttons": buttons,
        **(
            _digest(notification, audience=audience)
            if event == DIGEST_EVENT
            else {"count": None, "items": [], "more": 0}
        ),
    }


def _all_is_well_message(data: Mapping[str, Any], language: str, group: bool) -> str:
    """The family's all-is-well sentence; a group chat gets the same news without the elder's times."""
    raw = data.get("message")
    words: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    said = _text(words.get("en" if language == "en" else "zh"))
    return w.pick(w.EVENT_ADVICE, ALL_IS_WELL_EVENT, language) if group or said is None else said


def _report(data: Mapping[str, Any], language: str) -> dict[str, Any]:
    """The monthly report's community, its month as the reader says it, the sentence, and the page and workbook."""
    month = _text(data.get("month")) or ""
    year, _, mon = month.partition("-")
    said = f"{year}年{int(mon)}月" if language != "en" and year.isdigit() and mon.isdigit() else month
    links, words = (raw if isinstance(raw := data.get(key), Mapping) else {} for key in ("links", "message"))
    sentence = _text(words.get("en" if language == "en" else "zh"))
    found = {key: _text(links.get(key)) for key in ("page", "workbook")}
    return {"community": _text(data.get("community")), "month": said, "message": sentence, **found}


def _away_message(data: Mapping[str, Any], language: str, who: str, until: str | None, group: bool) -> str:
    """The grid worker's away notice: the router's sentence for a person; a group's is made again from the
    masked name (the router's has the full one). Without an end time, the advice alone."""
    raw = data.get("message")
    words: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    said = None if group else _text(words.get("en" if language == "en" else "zh"))
    if said is not None:
        return said
    if until is None:
        return w.pick(w.EVENT_ADVICE, AWAY_EVENT, language)
    zh, en = w.AWAY_MESSAGE
    return (en if language == "en" else zh).format(name=who, until=until)


def _family_seen(raw: Any, timezone: str, language: str, *, group: bool) -> str | None:
    """ "The family has seen it" for staff, who are still to act; a group reads when, not who."""
    if not isinstance(raw, Mapping):
        return None
    when = _local_time(raw.get("at"), timezone, language) or ""
    who = None if group else _text(raw.get("by"))
    detail = ("，" if language != "en" else ", ").join(part for part in (who, when) if part)
    if language == "en":
        return f"The family has seen it ({detail}); please still follow up." if detail else None
    return f"家属已看到（{detail}），请仍按流程跟进。" if detail else None


def _digest(notification: Notification, *, audience: Audience) -> dict[str, Any]:
    """A digest's items, each as the variables of a single alert (privacy included), at most MAX_DIGEST_ITEMS."""
    raw = notification.data.get("items")
    items = [item for item in raw if isinstance(item, Mapping)] if isinstance(raw, list) else []
    count = notification.data.get("count")
    count = count if isinstance(count, int) and not isinstance(count, bool) else len(items)
    shown = [
        message_context(
            Notification(
                notification.message_id,
                {"type": str(item.get("type") or ""), "timestamp": notification.payload.get("timestamp"), "data": item},
                notification.recipient_role,
                language=notification.language,
            ),
            audience=audience,
        )
        for item in items[:MAX_DIGEST_ITEMS]
    ]
    return {"count": count, "items": shown, "more": max(0, count - len(shown))}


def sample_notification(
    event_type: str = "alert.raised",
    *,
    kind: str = "no_usage",
    language: str = "zh-CN",
    household: bool = True,
    actions: bool = True,
    role: str = "grid_worker",
) -> Notification:
    """A realistic notification of every field a template may use (for ``check_templates`` and previews)."""
    if event_type == DIGEST_EVENT:
        singles = [sample_notification(t, kind=kind, language=language, household=household) for t in EVENT_TYPES[:5]]
        items = [{"type": single.event_type, **single.data} for single in singles]
        payload_: dict[str, Any] = {
            "type": DIGEST_EVENT,
            "timestamp": "2026-03-02T01:00:05+00:00",
            "data": {"count": 40, "items": items},
        }
        return Notification("dig-sample", payload_, "grid_worker", language=language)
    if event_type == ALL_IS_WELL_EVENT:
        return Notification(
            "msg-sample",
            {"type": event_type, "timestamp": "2026-03-02T02:00:00+00:00", "data": _ALL_IS_WELL_SAMPLE},
            "family",
            language=language,
        )
    if event_type == AWAY_EVENT:
        return Notification(
            "msg-sample",
            {"type": event_type, "timestamp": "2026-03-02T02:00:00+00:00", "data": _AWAY_SAMPLE},
            "grid_worker",
            language=language,
        )
    if event_type == REPORT_EVENT:
        payload_ = {"type": event_type, "timestamp": "2026-04-01T00:00:00+00:00", "data": _REPORT_SAMPLE}
        return Notification("msg-sample", payload_, "supervisor", language=language)
    if event_type == "endpoint.ping":
        payload: dict[str, Any] = {
            "type": event_type,
            "timestamp": "2026-03-02T01:00:00+00:00",
            "data": {"endpoint_id": "ep-sample"},
        }
        return Notification("msg-sample", payload, "grid_worker", language=language)
    data: dict[str, Any] = {
        "alert_id": "al-sample",
        "status": "resolved" if event_type == "alert.resolved" else "raised",
        "kind": kind,
        "severity": "high",
        "since": "2026-03-01T13:00:00+00:00",
        "at": "2026-03-02T01:00:00+00:00",
        "meter_id": "SZ-FT-0001",
        "grid_cell": "FT-12-3",
        "household": {
            "id": "hh-sample",
            "name": "王阿姨",
            "address": "莲花路 12 号 3 栋 501",
            "timezone": "Asia/Shanghai",
        }
        if household
        else None,
        "explanation": {
            "zh": "平时 07:20 前会用水；昨晚 21:00 起至今未用水（12 小时）",
            "en": "Usually uses water by 07:20; none since 21:00 (12 h)",
        },
        "facts": {"silence_h": 12, "usage_hourly_l": [0.0, 0.0, 0.0]},
        "tier": 0,
        "acknowledge_url": "https://shouwang.example/v1/alerts/al-sample/ack",
    }
    if event_type == "alert.resolved":
        data["resolution"] = {
            "outcome": "resident_fine",
            "by": "gw-1",
            "at": "2026-03-02T02:00:00+00:00",
            "note": "老人在家，一切安好",
        }
    links = (
        (
            ActionLink("acknowledge", "https://shouwang.example/a/ack-sample", "确认收到", "Acknowledge"),
            ActionLink("resolve", "https://shouwang.example/a/resolve-sample", "已处理", "Resolve"),
        )
        if actions
        else ()
    )
    role = "resident" if event_type == "alert.check_in" else role  # only the resident is asked
    data = dict(view_for(role, data, told=("family", "grid_worker")))  # the body this role's message is made from
    payload = {"type": event_type, "timestamp": "2026-03-02T01:00:05+00:00", "data": data}
    return Notification("msg-sample", payload, role, actions=links, language=language)


_ALL_IS_WELL_SAMPLE: dict[str, Any] = {
    "household": {"id": "hh-sample", "name": "王阿姨", "timezone": "Asia/Shanghai"},
    "period": "day",
    "day": "2026-03-02",
    "call": "妈妈",
    "first_use_at": "2026-03-02T07:12:00+08:00",
    "days": [{"day": "2026-03-02", "first_use_at": "2026-03-02T07:12:00+08:00", "litres": 35.0, "hours_with_use": 3}],
    "message": {
        "zh": "妈妈今天 07:12 开始用水，一切如常",
        "en": "妈妈 started using water at 07:12 today: all is well",
    },
}


_AWAY_SAMPLE: dict[str, Any] = {
    "household": {"id": "hh-sample", "name": "王阿姨", "address": "莲花路 12 号 3 栋 501", "timezone": "Asia/Shanghai"},
    "grid_cell": "FT-12-3",
    "away_until": "2026-03-10T18:00:00+08:00",
    "set_by": "family:key_sample",
    "note": "去女儿家住一周",
    "message": {
        "zh": "王阿姨的家属设置了外出模式，至 3月10日 18:00；期间不提醒长时间未用水。",
        "en": "The family of 王阿姨 set away mode until 10 Mar 18:00: the home is empty, and no alerts for no water "
        "use until then.",
    },
}


_REPORT_LINK = "https://shouwang.example/console/report?community=FT-Lianhua&month=2026-03"
_REPORT_SAMPLE: dict[str, Any] = {
    **{"community": "FT-Lianhua", "month": "2026-03", "previous_month": "2026-02", "timezone": "Asia/Shanghai"},
    "summary": {"households": 40, "alerts": 21, "alerts_previous": 18},
    "links": {"page": _REPORT_LINK, "workbook": f"{_REPORT_LINK}&download=xlsx"},
    "message": {
        "zh": "FT-Lianhua 2026年3月报表：在册 40 户；告警 21 条（上月 18 条）",
        "en": "FT-Lianhua, 2026-03: 21 alerts",
    },
}


def check_templates(templates: Templates, channels: Iterable[tuple[str, str, Audience]] = CHANNEL_FAMILIES) -> int:
    """Render every template each channel may use (every event type, both languages, with and without a household
    and action links, as staff and as a family read it) with sample payloads; raise one TemplateError listing every
    failure. Returns how many messages rendered. Call at startup and when an operator changes the override folder."""
    failures: list[str] = []
    rendered = 0
    for channel_type, family, audience in channels:
        for event_type in ALL_EVENT_TYPES:
            for language in w.LANGUAGES:
                for household, actions, role in _SAMPLE_CASES:
                    notification = sample_notification(
                        event_type, language=language, household=household, actions=actions, role=role
                    )
                    try:
                        templates.render(
                            notification, channel_type=channel_type, family=family, audience=audience, buttons=actions
                        )
                    except TemplateError as exc:
                        failures.append(f"{channel_type}/{event_type}/{language}: {exc}")
                    else:
                        rendered += 1
    if failures:
        unique = list(dict.fromkeys(failures))
        more = f" (and {len(unique) - 5} more)" if len(unique) > 5 else ""
        raise TemplateError("; ".join(unique[:5]) + more)
    return rendered


@functools.cache
def default_templates() -> Templates:
    """The shipped templates alone (no override folder): what a channel uses when it is given none."""
    return Templates()
