"""The ``sms`` channel: a text message to one phone number, through Aliyun or Tencent Cloud SMS.

In mainland China only pre-approved templates can be sent: a registered signature (``SignName``), a
template code and a few short variables. A detector's free-text explanation can never be the message,
so this channel derives the variables from the payload instead:

``name``     the household's name masked (``张**``), or a label when there is no household
``kind``     the alert kind in a few Chinese characters (``无用水``, ``持续用水``, ``用水突增``, ``水表离线`` …)
``time``     when it began (when it was resolved, for ``alert.resolved``), in the household's time zone
``link``     the first action link, else ``acknowledge_url``, with the template's fixed prefix removed
``outcome``  how it ended (``老人平安`` …), for ``alert.resolved``

Each is cut to the provider's per-variable limit (Aliyun 35, Tencent 6 characters, counted as UTF-16
units so an emoji cannot push a value over): a name or label is shortened with "…"; a link is never cut,
since a cut link is a broken one (``link_fallback`` is sent instead). Which variables a template takes,
and in which order (Tencent's are positional), is part of its configuration (``SmsTemplate.params``).

The alert's delivery id goes in Aliyun's ``OutId`` / Tencent's ``SessionContext``, which both echo in
their delivery receipts. Templates are approved in Chinese, so ``Notification.language`` is not used.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from alerts.channels.base import Audience, HttpChannel, Notification, OutgoingRequest, Verdict
from alerts.channels.sms_aliyun import AliyunSms
from alerts.channels.sms_tencent import TencentSms
from alerts.channels.types import ChannelType
from alerts.statuses import AttemptOutcome
from alerts.webhooks.attempt import AttemptResult

Provider = Literal["aliyun", "tencent"]
PROVIDERS: tuple[Provider, ...] = ("aliyun", "tencent")

# The message types an SMS can carry, keyed without their "alert." prefix. Each needs an approved template
# ("updated" may share the code of "raised"): a gap found at start-up beats a refusal at 3 a.m., which
# would also mark every SMS endpoint failing.
MESSAGE_TYPES = (
    "raised",
    "updated",
    "escalated",
    "reminder",
    "resolved",
    "ping",
    "check_in",
    "all_is_well",
    "away",
    "monthly",
)
# check_in is asked of residents only: a deployment that gives no resident an SMS channel needs no template
# for it (a check-in without one is refused, and the household's carers are told at the alarm limit).
# all_is_well ("{name}今天 {time} 开始用水，一切如常") goes only to families who opted in: without a template a
# family's SMS channel gets no such message, and their alerts are unaffected.
# away ("{name}的家属设置了外出模式，至{time}；期间不提醒长时间未用水。") goes to grid workers when a family sets away
# mode: without a template their SMS channel gets no such notice (their other channels still do).
# monthly ("{name}{time}月度报表已生成，请登录控制台查看") goes to supervisors on the 1st: without a template their SMS
# channel gets no such message (their other channels still do).
OPTIONAL_TEMPLATES = ("check_in", "all_is_well", "away", "monthly")
REQUIRED_TEMPLATES = tuple(kind for kind in MESSAGE_TYPES if kind not in OPTIONAL_TEMPLATES)
VARIABLES = ("name", "kind", "time", "link", "outcome")

# Short enough for Tencent's six characters; the console's longer labels do not fit an SMS variable.
KIND_ZH: Mapping[str, str] = {
    "no_usage": "无用水",
    "continuous_flow": "持续用水",
    "spike": "用水突增",
    "meter_offline": "水表离线",
    "data_quality": "数据异常",
    "routine_change": "作息变化",
    "incident": "居民上报",
    "hotspot": "上报增多",
}
OUTCOME_ZH: Mapping[str, str] = {
    "false_alarm": "误报",
    "resident_fine": "老人平安",
    "help_given": "已提供帮助",
    "emergency": "已紧急处置",
    "condition_cleared": "已自行恢复",
}

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_MAINLAND_MOBILE = re.compile(r"\+861[3-9][0-9]{9}")
# Brackets would read as a second signature (【签名】) and carriers refuse such messages.
_FORBIDDEN = str.maketrans("", "", "【】[]〖〗")


def validate_phone(value: str, *, field: str = "phone") -> str:
    """``value`` as an E.164 number (``+8613800138000``), or ValueError naming ``field``.

    A mainland number (+86) must be a mobile one (11 digits from 13… to 19…): SMS cannot reach a landline.
    """
    if not isinstance(value, str) or not _E164.fullmatch(value):
        raise ValueError(f"{field}: not an E.164 phone number (+ country code and number, e.g. +8613800138000)")
    if value.startswith("+86") and not _MAINLAND_MOBILE.fullmatch(value):
        raise ValueError(f"{field}: not a mainland China mobile number (+86 then 11 digits starting 13-19)")
    return value


@dataclass(frozen=True)
class SmsTemplate:
    """An approved template: its code (Aliyun ``SMS_…``, Tencent a numeric id) and the variables it takes,
    in its order. ``params=None`` takes the defaults of ``default_params``."""

    code: str
    params: tuple[str, ...] | None = None


def default_params(provider: Provider, message_type: str) -> tuple[str, ...]:
    """Variables of a template whose configuration does not list them."""
    if message_type == "ping":
        return ("time",)
    if message_type == "resolved":
        return ("name", "kind", "outcome")
    # "{name}今天 {time} 开始用水，一切如常" / "…外出模式，至{time}…" / "{name}{time}月度报表已生成…"
    if message_type in ("all_is_well", "away", "monthly"):
        return ("name", "time")
    if message_type == "check_in":  # "您好，今天还没看到用水，您还好吗？回复 1 我很好，回复 2 我不在家" + the link
        return ("link",) if provider == "aliyun" else ()
    # Tencent refuses links in variables: its templates carry the console's address as fixed text.
    return ("name", "kind", "time", "link") if provider == "aliyun" else ("name", "kind", "time")


@dataclass(frozen=True)
class SmsConfig:
    """How this deployment sends SMS (the ``SHOUWANG_SMS_*`` settings); every phone shares it."""

    provider: Provider
    access_key_id: str  # Aliyun AccessKeyId / Tencent SecretId
    access_key_secret: str = field(repr=False)  # Aliyun AccessKeySecret / Tencent SecretKey
    sign_name: str  # the approved signature, shown as 【…】
    templates: Mapping[str, SmsTemplate]  # message type ("raised", …) → approved template
    sdk_app_id: str = ""  # Tencent's SmsSdkAppId; unused by Aliyun
    endpoint: str | None = None  # base URL; None: the provider's public endpoint
    region: str | None = None  # None: cn-hangzhou (Aliyun) / ap-guangzhou (Tencent)
    max_variable_chars: int | None = None  # None: 35 (Aliyun) / 6 (Tencent)
    link_prefix: str = ""  # the start of the link written in the approved template; the variable is the rest
    link_fallback: str = "-"  # sent in ``link`` when no link fits the limit
    mask_names: bool = True  # a text message lies on a lock screen: show the surname only
    default_timezone: str = "Asia/Shanghai"  # when the household has none (or an unknown one)

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise ValueError(f"provider: {self.provider!r} is not one of {', '.join(PROVIDERS)}")
        if not self.access_key_id or not self.access_key_secret:
            raise ValueError("access_key_id and access_key_secret: the provider's key pair is required")
        if not self.sign_name.strip():
            raise ValueError("sign_name: the approved SMS signature is required")
        if self.provider == "tencent" and not self.sdk_app_id:
            raise ValueError("sdk_app_id: Tencent Cloud SMS needs the SMS application's SdkAppId")
        unknown = sorted(set(self.templates) - set(MESSAGE_TYPES))
        if unknown:
            raise ValueError(f"templates: unknown message types {unknown} (known: {', '.join(MESSAGE_TYPES)})")
        missing = [kind for kind in REQUIRED_TEMPLATES if kind not in self.templates]
        if missing:
            raise ValueError(f"templates: no approved template configured for {', '.join(missing)}")
        for kind, template in self.templates.items():
            if not template.code.strip():
                raise ValueError(f"templates: the template of {kind!r} has no code")
            bad = sorted(set(template.params or ()) - set(VARIABLES))
            if bad:
                raise ValueError(f"templates: {kind!r} uses unknown variables {bad} (known: {', '.join(VARIABLES)})")
        if self.provider == "tencent" and any("link" in self.params_of(kind) for kind in self.templates):
            # "模板中的变量参数不允许传链接": such a template is never approved; the link belongs in its text.
            raise ValueError("templates: Tencent Cloud refuses links in variables; write the link into the template")
        if self.max_variable_chars is not None and self.max_variable_chars < 6:
            raise ValueError("max_variable_chars: at least 6 (a time HH:MM and a short name must fit)")
        if self.endpoint is not None and not self.endpoint.startswith(("https://", "http://")):
            raise ValueError("endpoint: an http(s) base URL")
        try:
            ZoneInfo(self.default_timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"default_timezone: unknown time zone {self.default_timezone!r}") from exc

    def params_of(self, message_type: str) -> tuple[str, ...]:
        template = self.templates[message_type]
        return template.params if template.params is not None else default_params(self.provider, message_type)


def parse_templates(text: str) -> dict[str, SmsTemplate]:
    """``SHOUWANG_SMS_TEMPLATES``: a JSON object of message type → template code, or → ``{"code": …,
    "params": [variable, …]}`` when the template takes other variables than the defaults."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ValueError("templates: not valid JSON") from exc
    if not isinstance(raw, dict):
        raise ValueError('templates: a JSON object such as {"raised": "SMS_123456789", …}')
    templates: dict[str, SmsTemplate] = {}
    for kind, spec in raw.items():
        if isinstance(spec, str):
            templates[kind] = SmsTemplate(spec)
        elif isinstance(spec, dict) and isinstance(spec.get("code"), str):
            params = spec.get("params")
            if params is not None and not (isinstance(params, list) and all(isinstance(p, str) for p in params)):
                raise ValueError(f"templates: the params of {kind!r} must be a list of variable names")
            templates[kind] = SmsTemplate(spec["code"], None if params is None else tuple(params))
        else:
            raise ValueError(f"templates: {kind!r} must map to a template code or to {{'code', 'params'}}")
    return templates


def message_type_of(event_type: str) -> str:
    """``alert.raised`` → ``raised``; ``endpoint.ping`` → ``ping``."""
    return event_type.rsplit(".", 1)[-1]


def units(text: str) -> int:
    """Length as carriers count it: UTF-16 code units (an emoji is two)."""
    return len(text.encode("utf-16-le")) // 2


def fit(text: str, limit: int) -> str:
    """``text`` cleaned (no control characters, brackets or runs of spaces) and cut to ``limit`` units
    with a trailing "…", never inside a character."""
    cleaned = "".join(ch for ch in text.translate(_FORBIDDEN) if unicodedata.category(ch)[0] != "C")
    cleaned = " ".join(cleaned.split())
    if units(cleaned) <= limit:
        return cleaned
    kept, used = [], 1  # room for the "…"
    for ch in cleaned:
        if used + units(ch) > limit:
            break
        kept.append(ch)
        used += units(ch)
    return "".join(kept).rstrip() + "…"


def mask_name(name: str) -> str:
    """The first character (usually the surname) and a star per remaining character, at most two."""
    name = "".join(name.split())
    return name[:1] + "*" * min(len(name) - 1, 2) if name else ""


def _zone(name: object, default: str) -> ZoneInfo:
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass  # an unknown zone in one household's record must not cost the message
    return ZoneInfo(default)


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    # The store keeps UTC (alerts.models.UTCDateTime), so a time that lost its offset is a UTC one.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def render_time(moment: datetime, zone: ZoneInfo, limit: int) -> str:
    """Date and time when they fit (``2026-06-01 21:15``), else the time alone (``21:15``)."""
    local = moment.astimezone(zone)
    full = local.strftime("%Y-%m-%d %H:%M")
    return full if units(full) <= limit else local.strftime("%H:%M")


def _label(data: Mapping[str, Any], mask: bool) -> str:
    household = data.get("household")
    if isinstance(household, Mapping) and isinstance(household.get("name"), str) and household["name"].strip():
        return mask_name(household["name"]) if mask else household["name"]
    if isinstance(data.get("grid_cell"), str) and data["grid_cell"]:
        return f"网格{data['grid_cell']}"
    if isinstance(data.get("meter_id"), str) and data["meter_id"]:
        return f"水表{data['meter_id'][-4:]}"
    return "住户"


def _link(notification: Notification, *, prefix: str, limit: int, fallback: str) -> str:
    candidates = [action.url for action in notification.actions[:1]]
    if isinstance(notification.data.get("acknowledge_url"), str):
        candidates.append(notification.data["acknowledge_url"])
    for url in candidates:
        if prefix and not url.startswith(prefix):
            continue  # another host than the one fixed in the template
        rest = url[len(prefix) :]
        if rest and units(rest) <= limit:
            return rest
    return fit(fallback, limit) or "-"


def template_variables(
    notification: Notification,
    *,
    params: Sequence[str],
    max_chars: int,
    link_prefix: str = "",
    link_fallback: str = "-",
    mask_names: bool = True,
    default_timezone: str = "Asia/Shanghai",
) -> list[tuple[str, str]]:
    """The template's variables for ``notification``, in the template's order, each within ``max_chars``
    and never empty (both providers refuse an empty variable)."""
    data = notification.data
    household = data.get("household")
    zone = _zone(household.get("timezone") if isinstance(household, Mapping) else None, default_timezone)
    resolution = data.get("resolution")
    resolution = resolution if isinstance(resolution, Mapping) else {}
    if notification.event_type == "alert.resolved":
        moment = _parse_time(resolution.get("at")) or _parse_time(data.get("at"))
    else:
        moment = _parse_time(data.get("since")) or _parse_time(data.get("at"))
    moment = moment or _parse_time(notification.payload.get("timestamp"))
    if notification.event_type == "household.all_is_well":
        return _all_is_well_variables(data, params=params, max_chars=max_chars, zone=zone, mask_names=mask_names)
    if notification.event_type == "household.away":
        return _away_variables(data, params=params, max_chars=max_chars, zone=zone, mask_names=mask_names)
    if notification.event_type == "report.monthly":  # the community and the month: no one's name
        month = str(data.get("month") or "-")
        said = {"name": str(data.get("community") or "-"), "time": month, "kind": "月度报表", "outcome": "已生成"}
        return [(param, fit(said.get(param, "-"), max_chars) or "-") for param in params]
    values: dict[str, Callable[[], str]] = {
        "name": lambda: fit(_label(data, mask_names), max_chars),
        "kind": lambda: fit(KIND_ZH.get(str(data.get("kind")), "用水异常"), max_chars),
        "time": lambda: render_time(moment, zone, max_chars) if moment else "-",
        "link": lambda: _link(notification, prefix=link_prefix, limit=max_chars, fallback=link_fallback),
        "outcome": lambda: fit(OUTCOME_ZH.get(str(resolution.get("outcome")), "已处理"), max_chars),
    }
    return [(name, values[name]() or "-") for name in params]


def _all_is_well_variables(
    data: Mapping[str, Any], *, params: Sequence[str], max_chars: int, zone: ZoneInfo, mask_names: bool
) -> list[tuple[str, str]]:
    """The elder as the family calls them (妈妈), else the masked name; the morning's first use as HH:MM (the
    week's message: the day it ends)."""
    call = data.get("call")
    name = call if isinstance(call, str) and call.strip() and call != _household_name(data) else None
    first_use = _parse_time(data.get("first_use_at"))
    values = {
        "name": fit(name or _label(data, mask_names), max_chars),
        "time": first_use.astimezone(zone).strftime("%H:%M")
        if first_use
        else fit(str(data.get("day") or "-"), max_chars),
        "kind": fit("平安", max_chars),
        "link": "-",
        "outcome": fit("一切如常", max_chars),
    }
    return [(param, values[param] or "-") for param in params]


def _away_variables(
    data: Mapping[str, Any], *, params: Sequence[str], max_chars: int, zone: ZoneInfo, mask_names: bool
) -> list[tuple[str, str]]:
    """The masked name and the end of away mode on the household's clock."""
    until = _parse_time(data.get("away_until"))
    values = {
        "name": fit(_label(data, mask_names), max_chars),
        "time": render_time(until, zone, max_chars) if until else "-",
        "kind": fit("外出模式", max_chars),
        "link": "-",
        "outcome": fit("家中无人", max_chars),
    }
    return [(param, values[param] or "-") for param in params]


def _household_name(data: Mapping[str, Any]) -> str | None:
    household = data.get("household")
    name = household.get("name") if isinstance(household, Mapping) else None
    return name if isinstance(name, str) else None


class SmsProvider(Protocol):
    """What ``sms_aliyun.AliyunSms`` and ``sms_tencent.TencentSms`` share."""

    name: str
    max_variable_chars: int

    def request(
        self,
        *,
        phone: str,
        sign_name: str,
        template_code: str,
        variables: Sequence[tuple[str, str]],
        out_id: str,
        now: datetime,
    ) -> OutgoingRequest: ...

    def judge(self, status: int, body: bytes) -> Verdict: ...

    def secrets(self) -> tuple[str, ...]: ...


def make_provider(config: SmsConfig, *, nonce: Callable[[], str] | None = None) -> SmsProvider:
    """The adapter ``config.provider`` names (``nonce`` pins Aliyun's SignatureNonce in tests)."""
    if config.provider == "aliyun":
        return AliyunSms(
            access_key_id=config.access_key_id,
            access_key_secret=config.access_key_secret,
            endpoint=config.endpoint,
            region=config.region,
            nonce=nonce,
        )
    return TencentSms(
        secret_id=config.access_key_id,
        secret_key=config.access_key_secret,
        sdk_app_id=config.sdk_app_id,
        endpoint=config.endpoint,
        region=config.region,
    )


class SmsChannel(HttpChannel):
    """One phone number, reached through the configured provider."""

    type: ClassVar[str] = ChannelType.SMS
    audience: ClassVar[Audience] = "person"

    def __init__(self, *, phone: str, config: SmsConfig, nonce: Callable[[], str] | None = None) -> None:
        self.phone = validate_phone(phone)
        self.config = config
        self.provider = make_provider(config, nonce=nonce)
        self.max_chars = config.max_variable_chars or self.provider.max_variable_chars

    def template_for(self, notification: Notification) -> SmsTemplate | None:
        return self.config.templates.get(message_type_of(notification.event_type))

    def variables(self, notification: Notification) -> list[tuple[str, str]]:
        return template_variables(
            notification,
            params=self.config.params_of(message_type_of(notification.event_type)),
            max_chars=self.max_chars,
            link_prefix=self.config.link_prefix,
            link_fallback=self.config.link_fallback,
            mask_names=self.config.mask_names,
            default_timezone=self.config.default_timezone,
        )

    def render(self, notification: Notification, *, now: datetime) -> OutgoingRequest:
        template = self.template_for(notification)
        if template is None:
            raise ValueError(f"templates: no approved SMS template for {notification.event_type!r}")
        return self.provider.request(
            phone=self.phone,
            sign_name=self.config.sign_name,
            template_code=template.code,
            variables=self.variables(notification),
            out_id=notification.message_id,
            now=now,
        )

    def judge(self, status: int, body: bytes) -> Verdict:
        return self.provider.judge(status, body)

    async def send(
        self, client: httpx.AsyncClient, notification: Notification, *, now: datetime, timeout_s: float
    ) -> AttemptResult:
        if self.template_for(notification) is None:
            # Nothing approved to send this with; retrying cannot change that (configure the template).
            error = f"no approved SMS template for {notification.event_type or 'this message'}"
            return AttemptResult(AttemptOutcome.REJECT, None, error, 0.0)
        return await super().send(client, notification, now=now, timeout_s=timeout_s)

    def redact(self, text: str) -> str:
        for secret in self.provider.secrets():
            if secret:
                text = text.replace(secret, "[redacted]")
        return text
