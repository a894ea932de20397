"""The public vocabulary of incident reports: category codes, urgency levels, their names.

The codes are a contract with the API, the alert router and the console: never rename one.
"""

from __future__ import annotations

CATEGORIES: tuple[str, ...] = (
    "clutter",
    "water_pipe",
    "ebike",
    "noise_dispute",
    "pets",
    "vulnerable_person",
    "hazard",
    "sanitation",
    "facility",
    "other",
)

CATEGORY_ZH: dict[str, str] = {
    "clutter": "楼道堆物",
    "water_pipe": "水管漏水停水",
    "ebike": "电动车停放充电",
    "noise_dispute": "噪音与邻里纠纷",
    "pets": "宠物与犬只",
    "vulnerable_person": "老人或弱势人员求助",
    "hazard": "火灾燃气用电隐患",
    "sanitation": "环境卫生",
    "facility": "公共设施损坏",
    "other": "其他",
}

CATEGORY_EN: dict[str, str] = {
    "clutter": "stairwell clutter",
    "water_pipe": "water pipes, leaks and supply",
    "ebike": "e-bike parking and charging",
    "noise_dispute": "noise and neighbour disputes",
    "pets": "dogs and pets",
    "vulnerable_person": "an elder or vulnerable person needing help",
    "hazard": "fire, gas or electrical danger",
    "sanitation": "rubbish, hygiene and pests",
    "facility": "broken lifts, lights, doors or public facilities",
    "other": "other matters",
}

# Ordered from least to most urgent; comparisons use this order.
URGENCY_LEVELS: tuple[str, ...] = ("low", "normal", "high", "critical")
URGENCY_ZH: dict[str, str] = {"low": "低", "normal": "一般", "high": "高", "critical": "紧急"}
URGENCY_EN: dict[str, str] = {"low": "low", "normal": "normal", "high": "high", "critical": "critical"}

# Urgency → alert severity (the values of shouwang.events.Severity).
SEVERITY_OF_URGENCY: dict[str, str] = {"low": "low", "normal": "medium", "high": "high", "critical": "critical"}


def urgency_rank(level: str) -> int:
    return URGENCY_LEVELS.index(level)


def check_category(category: str) -> str:
    if category not in CATEGORIES:
        raise ValueError(f"unknown incident category {category!r}; expected one of {', '.join(CATEGORIES)}")
    return category
