"""The words of chat, app and email messages, in Simplified Chinese (default) and English.

Kept out of the templates so every template, shipped or an operator's override, gets the same labels,
and so a test can check that every kind, severity, event and outcome has words in both languages.
Advice leads each message: what the reader should do now, not what the detector saw.
"""

from __future__ import annotations

from collections.abc import Mapping

LANGUAGES = ("zh-CN", "en")

KIND_LABELS: Mapping[str, tuple[str, str]] = {
    "no_usage": ("长时间未用水", "No water use for a long time"),
    "continuous_flow": ("持续用水（疑似漏水）", "Water running without a break (possible leak)"),
    "spike": ("用水突然大增", "Sudden surge in water use"),
    "meter_offline": ("水表离线", "Meter offline"),
    "data_quality": ("水表数据异常", "Meter data look wrong"),
    "routine_change": ("作息明显变化", "Daily routine has changed"),
    "incident": ("居民上报", "Resident report"),
    "hotspot": ("同一片区多起上报", "Several reports from one area"),
}

# What to do, per kind: the first line of a raise, a reminder or an escalation.
ADVICE: Mapping[str, tuple[str, str]] = {
    "no_usage": ("请电话或上门确认老人是否安好", "Call or visit to check the resident is well"),
    "continuous_flow": (
        "请尽快电话或上门查看：可能没关水龙头或水管漏水",
        "Call or visit soon: a tap may be open or a pipe leaking",
    ),
    "spike": ("请电话确认：可能爆管或有人需要帮助", "Call to check: a pipe may have burst or someone may need help"),
    "meter_offline": ("请检查水表的电池和信号", "Check the meter's battery and signal"),
    "data_quality": ("请检查水表读数", "Check the meter's readings"),
    "routine_change": ("请找时间问候一下老人", "Check in with the resident when you can"),
    "incident": ("请查看居民上报的情况并处理", "Look into what residents reported"),
    "hotspot": ("请到现场查看：同一片区有多起上报", "Go and look: several reports come from one area"),
}
DEFAULT_ADVICE = ("请查看并处理", "Please look into it")

SEVERITY_LABELS: Mapping[str, tuple[str, str]] = {
    "critical": ("紧急", "critical"),
    "high": ("高", "high"),
    "medium": ("中", "medium"),
    "low": ("低", "low"),
    "info": ("提示", "info"),
}

EVENT_LABELS: Mapping[str, tuple[str, str]] = {
    "alert.raised": ("新告警", "New alert"),
    "alert.updated": ("情况加重", "Got worse"),
    "alert.escalated": ("无人确认·已升级", "Nobody acknowledged, escalated"),
    "alert.reminder": ("提醒·仍未确认", "Reminder, still unacknowledged"),
    "alert.resolved": ("已解除", "Resolved"),
    "endpoint.ping": ("通道测试", "Channel test"),
    "alert.digest": ("汇总", "Digest"),
    "alert.check_in": ("您还好吗？", "Are you well?"),
    "household.all_is_well": ("平安", "All is well"),
    "household.away": ("外出模式", "Away mode"),
    "report.monthly": ("月度报表", "Monthly report"),
}

# Said before the kind's advice when the event itself asks something more of the reader.
EVENT_ADVICE: Mapping[str, tuple[str, str]] = {
    "alert.updated": ("情况加重，请优先处理", "It got worse: deal with this first"),
    "alert.escalated": ("先前通知的人尚未确认，请您跟进", "Nobody acknowledged it yet: please follow up"),
    "alert.reminder": ("仍未确认，处理后请点“确认收到”", "Still unacknowledged: tap Acknowledge once handled"),
    "alert.resolved": ("无需再处理", "No action needed"),
    "endpoint.ping": (
        "测试消息，说明通知能送达这里，无需处理",
        "A test: notifications reach this place. No action needed",
    ),
    "alert.digest": ("以下告警请逐条处理", "Deal with each alert below"),
    "alert.check_in": (
        "您好，今天还没看到用水，您还好吗？请点下面的“我很好”或“我不在家”回复。",
        "Hello, we have not seen any water use today. Are you well? Tap I'm fine or I'm away below.",
    ),
    # What a group chat is told instead of the family's message (no times of an elder's day in a group).
    "household.all_is_well": ("今天已看到用水，一切如常", "Water use seen today: all is well"),
    # To the grid worker when the family sets away mode: the home is empty; leaks and bursts still come.
    "household.away": (
        "家中无人，期间无需因未用水上门；漏水、爆管仍会照常提醒",
        "The home is empty: no visit needed for no water use; leaks and bursts are still alerted",
    ),
    # To a supervisor on the 1st: the links open the console, where their API key shows the figures.
    "report.monthly": (
        "上月报表已生成：打开链接，用您的 API 密钥登录即可查看、打印或下载",
        "Last month's report is ready: open the link and sign in with your API key to read, print or download it",
    ),
}
# The away notice as a group chat reads it: the elder's masked name and the end of away mode, nothing more.
AWAY_MESSAGE: tuple[str, str] = (
    "{name}的家属设置了外出模式，至 {until}；期间不提醒长时间未用水。",
    "The family of {name} set away mode until {until}: the home is empty, and no alerts for no water use until then.",
)

OUTCOME_LABELS: Mapping[str, tuple[str, str]] = {
    "false_alarm": ("误报", "false alarm"),
    "resident_fine": ("老人平安", "the resident is fine"),
    "help_given": ("已提供帮助", "help was given"),
    "emergency": ("已紧急处置", "handled as an emergency"),
    "condition_cleared": ("情况已自行恢复", "the condition cleared by itself"),
}

# Who has been told about an alert, as a family's message says it (roles only: never who by name).
ROLE_LABELS: Mapping[str, tuple[str, str]] = {
    "family": ("家属", "family"),
    "grid_worker": ("网格员", "grid worker"),
    "supervisor": ("主管", "supervisor"),
    "operator": ("运维", "operator"),
}

MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def language_of(requested: str) -> str:
    """One of ``LANGUAGES``: English for any ``en…`` tag, Simplified Chinese for everything else."""
    return "en" if requested.lower().startswith("en") else "zh-CN"


def pick(words: Mapping[str, tuple[str, str]], key: str | None, language: str, default: str | None = None) -> str:
    """The label of ``key`` in ``language``; an unknown key shows as itself (or ``default``)."""
    pair = words.get(key or "")
    if pair is None:
        return default if default is not None else (key or "")
    return pair[1] if language == "en" else pair[0]


def told(roles: object, language: str) -> str | None:
    """ "已通知：家属、网格员" from a family view's ``told`` list; None when there is none (other views)."""
    if not isinstance(roles, list) or not roles:
        return None
    names = [pick(ROLE_LABELS, str(role), language) for role in roles]
    return f"Told so far: {', '.join(names)}" if language == "en" else f"已通知：{'、'.join(names)}"
