"""Near-duplicate merging: reports of the same thing in the same grid cell become one incident.

Two reports are "the same thing" when they are in the same grid cell, have the same category,
arrive within ``window`` of the incident's latest report (in event time), and their texts are
similar enough. Similarity is a weighted Dice coefficient over the characters and character
bigrams of the normalised text (digits and filler characters dropped); the weights are inverse
document frequencies from the shipped corpus, so that "电梯" counts for more than "坏了". Two
texts that name different buildings (3栋 / 5栋), gates (东门 / 西门), people (王奶奶 / 刘大爷) or
objects (电梯 / 门禁) are never merged. The default threshold errs on the side of *not* merging:
a missed merge costs a grid worker a second look, a wrong one could hide a report.

Pure and event-time driven: nothing reads a clock. State is a small dict (``to_dict``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from detectors.incidents.categories import check_category
from detectors.incidents.corpus import load_corpus
from detectors.incidents.text import for_similarity

STATE_VERSION = 1
DEFAULT_THRESHOLD = 0.35
SAME_PLACE_SCORE = 0.5  # similarity given to two reports naming the same building or unit
MAX_TEXTS = 5  # texts kept per incident for comparison (first and latest)
MAX_REPORT_IDS = 200  # report ids kept per incident to recognise a report sent twice
_KEPT_CHARS = 300  # of each kept text

_FILLER = set("的了在有是我们你他她它这那就都还也又很和吗呢吧啊呀一个里到着被把给请")
_BUILDING = re.compile(r"(?:[0-9]+|[一二三四五六七八九十]+)(?:栋|号楼|幢|座|单元|号门)")
_GATE = re.compile(r"[东西南北]门")
_PERSON = re.compile(
    r"[王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董程曹袁邓许沈曾彭吕苏卢蒋蔡贾丁魏薛叶"
    r"余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文]"
    r"(?:奶奶|爷爷|大爷|大妈|阿姨|阿婆|婆婆|伯|叔|老师|师傅)"
)
_OBJECT_WORDS = """
    电梯 门禁 单元门 防盗门 路灯 楼道灯 声控灯 应急灯 井盖 扶手 台阶 健身器材 道闸 监控 信报箱 快递柜 围墙 窗户
    座椅 秋千 滑梯 充电桩 车棚 水管 水龙头 马桶 下水道 地漏 水箱 暖气 热水器 燃气 煤气 配电箱 电表箱 电线 插座
    垃圾桶 垃圾站 化粪池 老鼠 蟑螂 蚊子 鸽子 猫 狗 广场舞 装修 麻将 烧烤
"""
_OBJECTS = tuple(_OBJECT_WORDS.split())


def _grams(normalised: str) -> frozenset[str]:
    text = re.sub(r"[0-9]+", "", normalised)
    grams = {c for c in text if c not in _FILLER}
    grams.update(text[i : i + 2] for i in range(len(text) - 1))
    return frozenset(grams)


@lru_cache(maxsize=1)
def _idf() -> tuple[dict[str, float], float]:
    docs = [_grams(for_similarity(r.text)) for r in load_corpus()]
    df = Counter(g for d in docs for g in d)
    n = len(docs)
    return {g: math.log((n + 1) / (c + 1)) + 1.0 for g, c in df.items()}, math.log(n + 1) + 1.0


def _markers(normalised: str) -> tuple[frozenset[str], ...]:
    return (
        frozenset(_BUILDING.findall(normalised)),
        frozenset(_GATE.findall(normalised)),
        frozenset(_PERSON.findall(normalised)),
        frozenset(o for o in _OBJECTS if o in normalised),
    )


def similarity(a: str, b: str) -> float:
    """Similarity in [0, 1] of two report texts (0 when they name different buildings, gates, people or objects)."""
    na, nb = for_similarity(a), for_similarity(b)
    for ma, mb in zip(_markers(na), _markers(nb), strict=True):
        if ma and mb and not ma & mb:
            return 0.0
    ga, gb = _grams(na), _grams(nb)
    if not ga or not gb:
        return 1.0 if na == nb and na else 0.0
    idf, unseen = _idf()
    shared = sum(idf.get(g, unseen) for g in ga & gb)
    score = 2.0 * shared / (sum(idf.get(g, unseen) for g in ga) + sum(idf.get(g, unseen) for g in gb))
    if _markers(na)[0] & _markers(nb)[0]:
        # The same building or unit (the caller already requires the same cell, category and
        # time window): residents describe one problem in many words, so the place decides.
        score = max(score, SAME_PLACE_SCORE)
    return score


@dataclass(frozen=True, slots=True)
class MergeDecision:
    incident_id: str
    is_new: bool
    report_count: int
    similarity: float = 1.0  # to the incident it joined (1.0 for a new one)
    duplicate: bool = False  # the same report id was seen before: nothing changed


@dataclass
class _Incident:
    id: str
    grid_cell: str
    category: str
    first_ts: datetime
    last_ts: datetime
    count: int
    texts: list[str]
    report_ids: list[str] = field(default_factory=list)


def _aware(ts: datetime) -> datetime:
    if not isinstance(ts, datetime) or ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError("ts must be a timezone-aware datetime")
    return ts


class IncidentMerger:
    """Groups reports into incidents. ``add`` returns which incident a report belongs to.

    The incident id is the id of its first report. Incidents whose latest report is older than
    ``window`` before the newest event time seen (the watermark) expire and are forgotten.
    """

    def __init__(self, window: timedelta = timedelta(hours=48), threshold: float = DEFAULT_THRESHOLD) -> None:
        if window <= timedelta(0):
            raise ValueError("window must be positive")
        if not 0.0 < threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")
        self.window = window
        self.threshold = threshold
        self.watermark: datetime | None = None
        self._cells: dict[str, list[_Incident]] = {}

    def __len__(self) -> int:
        return sum(len(v) for v in self._cells.values())

    def add(self, report_id: str, text: str, grid_cell: str, category: str, ts: datetime) -> MergeDecision:
        check_category(category)
        _aware(ts)
        if not isinstance(report_id, str) or not report_id:
            raise ValueError("report_id must be a non-empty string")
        if not isinstance(text, str):
            raise ValueError("text must be a string")
        self.watermark = ts if self.watermark is None or ts > self.watermark else self.watermark
        self.expire(self.watermark)
        incidents = self._cells.setdefault(grid_cell, [])
        for incident in incidents:
            if report_id in incident.report_ids or report_id == incident.id:
                return MergeDecision(incident.id, False, incident.count, 1.0, duplicate=True)
        normalised = for_similarity(text)[:_KEPT_CHARS]
        best, best_score = None, 0.0
        for incident in incidents:
            if incident.category != category:
                continue
            if not incident.first_ts - self.window <= ts <= incident.last_ts + self.window:
                continue
            score = max(similarity(normalised, kept) for kept in incident.texts)
            if score >= self.threshold and score > best_score:
                best, best_score = incident, score
        if best is None:
            incidents.append(_Incident(report_id, grid_cell, category, ts, ts, 1, [normalised], [report_id]))
            return MergeDecision(report_id, True, 1)
        best.count += 1
        best.first_ts, best.last_ts = min(best.first_ts, ts), max(best.last_ts, ts)
        if len(best.texts) < MAX_TEXTS:
            best.texts.append(normalised)
        else:  # keep the first report's text and the latest ones
            best.texts = [best.texts[0], *best.texts[2:], normalised]
        if len(best.report_ids) < MAX_REPORT_IDS:
            best.report_ids.append(report_id)
        return MergeDecision(best.id, False, best.count, round(best_score, 4))

    def expire(self, now: datetime) -> list[str]:
        """Forget incidents whose latest report is more than ``window`` before ``now``; return their ids."""
        _aware(now)
        gone: list[str] = []
        horizon = now - self.window
        for cell in list(self._cells):
            incidents = self._cells[cell]
            gone.extend(i.id for i in incidents if i.last_ts < horizon)
            kept = [i for i in incidents if i.last_ts >= horizon]
            if kept:
                self._cells[cell] = kept
            else:
                del self._cells[cell]
        return gone

    def incident(self, incident_id: str) -> dict[str, object] | None:
        """A live incident as a plain dict (``None`` if unknown or expired)."""
        for incidents in self._cells.values():
            for i in incidents:
                if i.id == incident_id:
                    return _incident_dict(i)
        return None

    def to_dict(self) -> dict[str, object]:
        return {
            "version": STATE_VERSION,
            "window_s": self.window.total_seconds(),
            "threshold": self.threshold,
            "watermark": self.watermark.isoformat() if self.watermark else None,
            "incidents": [_incident_dict(i) for incidents in self._cells.values() for i in incidents],
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> IncidentMerger:  # decoded JSON
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported merger state version {state.get('version')!r}")
        merger = cls(timedelta(seconds=float(state["window_s"])), float(state["threshold"]))
        watermark = state.get("watermark")
        merger.watermark = datetime.fromisoformat(watermark) if watermark else None
        for item in state["incidents"]:
            incident = _Incident(
                item["id"],
                item["grid_cell"],
                item["category"],
                _aware(datetime.fromisoformat(item["first_ts"])),
                _aware(datetime.fromisoformat(item["last_ts"])),
                int(item["count"]),
                list(item["texts"]),
                list(item["report_ids"]),
            )
            merger._cells.setdefault(incident.grid_cell, []).append(incident)
        return merger


def _incident_dict(i: _Incident) -> dict[str, object]:
    return {
        "id": i.id,
        "grid_cell": i.grid_cell,
        "category": i.category,
        "first_ts": i.first_ts.isoformat(),
        "last_ts": i.last_ts.isoformat(),
        "count": i.count,
        "texts": list(i.texts),
        "report_ids": list(i.report_ids),
    }
