"""The machinery of the urgency keyword rules: a rule, and when one of its keywords counts.

A keyword does not count when it is negated right before it ("没有冒烟", "没闻到煤气味",
"打不着火"). A rule for an emergency (level ``critical``) also ignores a keyword that its clause
makes hypothetical ("万一着火", "怕起火", "着火了怎么办"), habitual or a near miss ("经常有人摔倒",
"差点摔了", "摔过"), or that the report says was dealt with ("电梯困人，已经放出来了",
"插座打火，已经修好了"). The rule sets themselves are in ``danger`` (critical) and ``urgency``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

S = "[^。！？!?]"  # any character within the same sentence
_C = "[^，。！？；,.!?;]"  # any character within the same clause


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    level: str
    pattern: re.Pattern[str]
    zh: str
    en: str
    categories: frozenset[str] | None = None  # None: every category
    hypothetical_counts: bool = True  # a risk rule counts even when said as "万一…"
    inner_negation: re.Pattern[str] | None = None  # a negation inside a long match ("楼道里没充电")
    display: re.Pattern[str] | None = None  # the word to quote from a long match
    # Outside ``categories`` the rule still applies when this is found in the match's sentence
    # (an elder not answering the door matters even when the report was filed as a leak).
    elsewhere: re.Pattern[str] | None = None
    habitual_counts: bool = False  # "电表箱经常打火花": the fault is there now
    past_counts: bool = False  # "上周起就没见她出门": the past is the point
    resolved: re.Pattern[str] | None = None  # words after the keyword that say it was dealt with
    needs: re.Pattern[str] | None = None  # the sentence must also say this ("火花" of electrics, not of a stove)
    unless: re.Pattern[str] | None = None  # … and must not say this ("烟很大" of a barbecue or a cigarette)


def alternatives(spec: str) -> re.Pattern[str]:
    """A regex from space-separated alternatives (no alternative contains a space)."""
    return re.compile("|".join(spec.split()))


def rule(
    id_: str,
    level: str,
    spec: str,
    zh: str,
    en: str,
    categories: str | None = None,
    *,
    hypothetical_counts: bool = True,
    inner_negation: str | None = None,
    display: str | None = None,
    elsewhere: str | None = None,
    habitual_counts: bool = False,
    past_counts: bool = False,
    resolved: str | None = None,
    needs: str | None = None,
    unless: str | None = None,
) -> Rule:
    return Rule(
        id_,
        level,
        alternatives(spec),
        zh,
        en,
        frozenset(categories.split()) if categories else None,
        hypothetical_counts,
        re.compile(inner_negation) if inner_negation else None,
        alternatives(display) if display else None,
        re.compile(elsewhere) if elsewhere else None,
        habitual_counts,
        past_counts,
        alternatives(resolved) if resolved else None,
        alternatives(needs) if needs else None,
        alternatives(unless) if unless else None,
    )


def applies(r: Rule, category: str) -> bool:
    return r.categories is None or category in r.categories or r.elsewhere is not None


_CLAUSE_BREAK = re.compile(r"[，。！？；、,.!?;\s]")
_SENTENCE_BREAK = re.compile(r"[。！？!?]")
_QUESTION = re.compile(r"是不是|会不会|是否|有没有")
_NEGATION = alternatives("没有 没 沒 冇 无 未 不是 并非 不再 并不 别 不到 不见 不出")
_NEGATION_WIDTH = 4  # a negator must stand right before the keyword: "没有冒烟", "还没冒烟", "没发现冒烟"
# … or before a verb of perceiving: "没有看到有烟", "并没闻到什么煤气味"
_NOT_PERCEIVED = re.compile(
    "(?:没有?|未|并没有?|也没有?)(?:看到|看见|见到|发现|闻到|听到|感觉到?|察觉)(?:有|什么|任何|过|哪里|哪儿|哪家|哪)?$"
)
# … and a bare 不 only immediately before it: "打不着火", "狗不咬人" (but "不知道是哪家漏气了" is not negated)
_HYPOTHETICAL = alternatives(
    "会不会 以为 听说 万一 要是 如果 一旦 假如 怕 担心 防止 以防 预防 容易 可能会 引发 差点 险些 隐患 风险 小心 "
    "注意 以免 免得 避免 梦见 梦到 做梦 梦里"  # "梦见楼里着火了": a dream
)
_HABITUAL = alternatives("经常 常常 总是 老是 每次 每回 有时 下雨天 一下雨 下雨的时候 下雨时 每逢")
_PAST = alternatives(
    "以前 之前 上次 上回 上个月 上周 上星期 上礼拜 去年 前年 曾经 原来 早先 前阵子 前几天 前两天 前些天 前些日子"
)  # "插座以前冒过火花"
# A sentence about a drill, a talk or a course mentions emergencies that are not happening.
_NOT_REAL = alternatives(
    "演习 演练 讲座 培训 宣传 知识 课程 科普 防跌倒 防火 防溺水 新闻 电视里 网上 视频里 "
    "电视剧 电影 动画片 小说 游戏里 剧里 梦里 梦见 梦到"
)
# Used with ``pattern.match(text, pos)``, which anchors at ``pos`` (so no ``^``).
_HYPOTHETICAL_AFTER = re.compile(
    f"{_C}{{0,4}}(?:"
    + alternatives("怎么办 咋办 咋整 后果不堪设想 就麻烦了 的话 很难 跑不 可咋 咋弄 隐患 风险").pattern
    + ")|过(?![来去了道门槛脚膝腰墙楼地桌床路])"  # "摔过", "困过人": once, not now
)
# Said after an emergency keyword, these mean the emergency is over (not "已经打了120").
_RESOLVED = re.compile(
    "(?:已经|早就|都)(?:修好|没事|解决|处理好|恢复|好了)|(?:修好|没事|解决|处理好|没问题)了(?![吗么嘛没])|没有?大碍|"
    "虚惊一场|换了新的|恢复得"
)


def clause_prefix(text: str, start: int, width: int = 8, questions: bool = False) -> str:
    """Up to ``width`` characters of the clause before ``start``; a question word ("有没有冒烟") is
    dropped unless ``questions`` (it is no negation, but it does make a keyword uncertain)."""
    begin = max(0, start - width)
    for i in range(start - 1, begin - 1, -1):
        if _CLAUSE_BREAK.match(text, i):
            begin = i + 1
            break
    return text[begin:start] if questions else _QUESTION.sub("", text[begin:start])


def sentence_of(text: str, start: int, end: int) -> str:
    """The sentence around ``text[start:end]``."""
    begin = start
    while begin > 0 and not _SENTENCE_BREAK.match(text, begin - 1):
        begin -= 1
    found = _SENTENCE_BREAK.search(text, end)
    return text[begin : found.start() if found else len(text)]


def shown(r: Rule, matched: str) -> str:
    found = r.display.search(matched) if r.display is not None else None
    return found.group() if found else matched


@dataclass(frozen=True, slots=True)
class Matches:
    counted: list[str]  # keywords that count
    suppressed: list[str]  # negated, hypothetical or habitual
    resolved: list[str]  # said to have been dealt with


def negated(r: Rule, text: str, match: re.Match[str]) -> bool:
    prefix = clause_prefix(text, match.start())
    return bool(
        _NEGATION.search(prefix[-_NEGATION_WIDTH:])
        or prefix.endswith("不")
        or _NOT_PERCEIVED.search(prefix)
        or (r.inner_negation is not None and r.inner_negation.search(match.group()))
    )


def find(r: Rule, text: str, category: str) -> Matches:
    """Which of the rule's keywords in ``text`` count for a report of ``category``."""
    counted: list[str] = []
    suppressed: list[str] = []
    resolved: list[str] = []
    at_home = r.categories is None or category in r.categories
    if not at_home and r.elsewhere is None:
        return Matches(counted, suppressed, resolved)
    emergency = r.level == "critical"
    position = 0
    while (match := r.pattern.search(text, position)) is not None:
        # A long match that does not count must not hide a shorter one after its start:
        # "楼上没人在家，水从我家天花板哗哗地往下淌" (the first "家" is in a negated clause).
        position = match.start() + 1
        sentence = sentence_of(text, match.start(), match.end())
        if not at_home and r.elsewhere is not None and not r.elsewhere.search(sentence):
            continue
        if r.needs is not None and not r.needs.search(sentence):
            continue
        if r.unless is not None and r.unless.search(sentence):
            continue
        prefix = clause_prefix(text, match.start(), questions=True)
        inside = match.group()  # a long match can hold the word itself: "电梯经常停在两层中间"
        hypothetical = bool(
            _HYPOTHETICAL.search(prefix)
            or prefix.endswith("防")
            or _HYPOTHETICAL_AFTER.match(text, match.end())
            or _HYPOTHETICAL.search(inside)
            or (not r.past_counts and (_PAST.search(prefix) or _PAST.search(inside)))
            or (emergency and _NOT_REAL.search(sentence))
        )
        habitual = bool(_HABITUAL.search(prefix) or _HABITUAL.search(inside))
        after = text[match.end() :]
        if (
            negated(r, text, match)
            or (emergency and not r.hypothetical_counts and hypothetical)
            or (emergency and habitual and not r.habitual_counts)
        ):
            suppressed.append(match.group())
        elif emergency and (_RESOLVED.search(after) or (r.resolved is not None and r.resolved.search(after))):
            resolved.append(match.group())
        else:
            counted.append(match.group())
            position = match.end()
    return Matches(counted, suppressed, resolved)
