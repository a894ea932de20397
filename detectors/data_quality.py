"""``data_quality``: the meter's numbers cannot be right — for operators, never for families.

Issues are named where readings become intervals (``detectors.intervals``): a register going
backwards, a reset or rollover, an impossible rate, two different registers at one timestamp.
The first issue raises an episode; more issues join it; a day of clean readings resolves it.
"""

from __future__ import annotations

import math
from typing import ClassVar

from detectors.base import Finding, Interval
from detectors.findings import finding
from detectors.state import StateLayout
from detectors.timefmt import when_en, when_zh

ISSUES_ZH = {
    "backwards": "读数倒退",
    "reset": "读数归零（疑似换表或重置）",
    "rollover": "读数满量程翻转",
    "impossible_rate": "流量超出水表能力（疑似读数跳变）",
    "conflicting_duplicate": "同一时间两个不同读数",
}
ISSUES_EN = {
    "backwards": "the register went backwards",
    "reset": "the register reset to zero (a replaced meter?)",
    "rollover": "the register rolled over",
    "impossible_rate": "a rate beyond what the meter can pass (a jump)",
    "conflicting_duplicate": "two different registers at one timestamp",
}
_ISSUE_BITS = {name: 1 << index for index, name in enumerate(ISSUES_EN)}
_LAYOUT = StateLayout(1, "ddIHB")
_CLEAN_S = 24 * 3600.0


class DataQualityDetector:
    """One episode per run of data-quality issues, resolved after a clean day."""

    name: ClassVar[str] = "data_quality"

    def __init__(self) -> None:
        self._episode_since = 0.0
        self._last_issue = 0.0
        self._count = 0
        self._kinds = 0
        self._open = 0

    def update(self, interval: Interval) -> list[Finding]:
        offset = interval.utc_offset
        if interval.issues:
            self._last_issue = interval.end
            self._count += 1
            for issue in interval.issues:
                self._kinds |= _ISSUE_BITS.get(issue, 0)
            if self._open:
                return []
            self._open, self._episode_since, self._count = 1, interval.end, 1
            self._kinds = sum(_ISSUE_BITS.get(issue, 0) for issue in set(interval.issues))
            zh = "、".join(ISSUES_ZH[i] for i in interval.issues if i in ISSUES_ZH)
            en = "; ".join(ISSUES_EN[i] for i in interval.issues if i in ISSUES_EN)
            when = when_zh(interval.end, interval.end, offset)
            return [
                finding(
                    self.name,
                    "raised",
                    "low",
                    since=interval.end,
                    at=interval.end,
                    utc_offset=offset,
                    zh=f"水表数据异常：{zh}（{when}）。"
                    + ("该时段用水量未知。" if interval.litres is None else "跨越翻转的用水量已照常计入。"),
                    en=f"Meter data problem: {en} ({when_en(interval.end, interval.end, offset)}). "
                    + (
                        "Water use in that interval is unknown."
                        if interval.litres is None
                        else "The use across the wrap is counted as usual."
                    ),
                    facts={"issues": ",".join(interval.issues)},
                )
            ]
        if self._open and interval.end - self._last_issue >= _CLEAN_S:
            self._open = 0
            kinds = ",".join(name for name, bit in _ISSUE_BITS.items() if self._kinds & bit)
            return [
                finding(
                    self.name,
                    "resolved",
                    "low",
                    since=self._episode_since,
                    at=interval.end,
                    utc_offset=offset,
                    zh=f"水表数据已连续一天正常（此前共 {self._count} 次异常）。",
                    en=f"Meter data has been clean for a day ({self._count} problems before).",
                    facts={"issues": kinds, "count": self._count},
                )
            ]
        return []

    def advance(self, now: float, utc_offset: float) -> list[Finding]:
        return []

    def wake_at(self) -> float:
        return math.inf

    def dump(self) -> bytes:
        return _LAYOUT.pack((self._episode_since, self._last_issue, self._count, self._kinds, self._open))

    def load(self, data: bytes) -> None:
        (self._episode_since, self._last_issue, self._count, self._kinds, self._open), _ = _LAYOUT.unpack(data)  # type: ignore[assignment]
