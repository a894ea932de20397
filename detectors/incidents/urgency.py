"""Urgency of an incident report: documented keyword rules first, then category defaults.

Levels, from most to least urgent (docs/INCIDENTS.md has the full table):

``critical``  life or property in danger *now*: fire or smoke, a gas smell or leak, an explosion,
              electric shock, someone fallen / unconscious / calling for help, people trapped in a
              lift, water flooding a home, a weapon held at people (``danger``).
``high``      a serious risk or a vulnerable person who needs someone soon: every ``hazard`` and
              ``vulnerable_person`` report, charging e-bikes indoors or from trailing leads,
              clutter or e-bikes blocking a fire escape, flammables stored in a stairwell, burst
              pipes, missing manhole covers, things that may collapse or fall, violence, dog bites,
              leaking or sparking electrics, pipes or lifts that leave a frail elder stranded.
``normal``    the default for clutter, water, e-bikes, noise, sanitation, facilities; a service
              request about an elder; a dog barking at night or a big dog off the lead.
``low``       the default for pets and other matters; suggestions and "where do I …" questions.

Pinyin in a report is read as characters first (``pinyin``: "dianti kazhu le" → "电梯卡住了"),
and the reasons say how it was read. A critical keyword does not count when it is negated or
hypothetical in its own clause ("没有冒烟", "万一着火", "差点摔了", "着火了怎么办"), and a fire
reported as put out ("已经扑灭") is high, not critical. Every decision carries its reasons in
Chinese and English.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from detectors.incidents.categories import URGENCY_LEVELS, check_category, urgency_rank
from detectors.incidents.danger import CRITICAL
from detectors.incidents.pinyin import read_pinyin
from detectors.incidents.rules import Rule, S, alternatives, applies, find, rule, shown
from detectors.incidents.text import clean


@dataclass(frozen=True, slots=True)
class Urgency:
    level: str
    reasons: list[str]  # in Chinese
    reasons_en: list[str]  # the same reasons in English
    rules: list[str] = field(default_factory=list)  # ids of the rules that decided


def _rule(
    id_: str,
    level: str,
    spec: str,
    zh: str,
    en: str,
    categories: str | None = None,
    *,
    inner_negation: str | None = None,
    display: str | None = None,
) -> Rule:
    return rule(id_, level, spec, zh, en, categories, inner_negation=inner_negation, display=display)


_S = S
_PLACES = "(?:楼道|楼梯|家里|家中|回家|室内|客厅|卧室|阳台|电梯|地下室|储物间|店里|车库|楼里|屋里|窗|配电|电表箱)"

_HIGH = [
    _rule(
        "electrical",
        "high",
        f"漏电 打火花 冒火花 电火花 火星 电线裸露 裸露 铜丝 铜线 露出来?的?电线 "
        f"电线{_S}{{0,6}}露 焦糊味 焦味 烧焦 烧黑 短路",
        "用电隐患：漏电、打火或电线裸露",
        "an electrical danger (leakage, sparks or bare wires)",
        display="漏电 打火花 冒火花 电火花 火星 裸露 铜丝 铜线 焦糊味 焦味 烧焦 烧黑 短路",
    ),
    _rule(
        "ebike_lead",
        "high",
        "飞线 私拉 拉线 拉了?根线 拉电线 扯了?一?根线 吊根线 吊下来 垂下来 插线板 插排 接电 接了?个?插座 接了?电源",
        "飞线、私拉电线给电动车充电，有火灾和触电风险",
        "charging an e-bike from a trailing lead is a fire and shock risk",
        "ebike",
    ),
    _rule(
        "ebike_indoors",
        "high",
        f"(?:充|冲电|回家冲){_S}{{0,15}}?{_PLACES} {_PLACES}{_S}{{0,15}}?(?:充|冲电) "
        f"(?:电动车|电瓶车?|电池|电驴){_S}{{0,10}}(?:电梯|推进|带回家|拿回家|拎回家|上楼) "
        f"(?:电梯|推进){_S}{{0,8}}(?:电动车|电瓶|电池)",
        "电动车进楼入户或在楼道、室内充电，有火灾风险",
        "charging or keeping an e-bike indoors or in a stairwell is a fire risk",
        "ebike",
        inner_negation=r"[没未不]在?(?:充|冲)",
        display=f"{_PLACES} 推进 带回家 拿回家 拎回家 上楼",
    ),
    _rule(
        "ebike_fire",
        "high",
        "着火 起火 火灾 失火 自燃 爆燃",
        "电动车有起火风险",
        "an e-bike here is a fire risk",
        "ebike",
    ),
    _rule(
        "fire_escape",
        "high",
        "消防通道 消防车 安全出口 安全通道 逃生 疏散 防火门 消防前室 应急通道 消防楼梯",
        "堵占消防通道或安全出口",
        "a fire escape or fire lane is blocked",
        "clutter ebike",
    ),
    _rule(
        "flammables",
        "high",
        "汽油 液化气 煤气罐 稀释剂 易燃 木柴 食用油 泡沫板 泡沫(?!箱) 火灾隐患 着火 起火 失火 火灾",
        "堆放易燃物，有火灾风险",
        "flammable things are stored there; a fire risk",
        "clutter",
    ),
    _rule("blocked", "high", "堵死 封住 推不开", "通道被完全堵死", "the way is completely blocked", "clutter"),
    _rule(
        "burst_pipe",
        "high",
        "爆裂 爆管 爆了 爆开 崩开 喷水 往外喷 水柱 喷得 脱落 冲开",
        "水管爆裂，水在外喷",
        "a burst pipe is spraying water",
        "water_pipe",
    ),
    _rule(
        "collapse",
        "high",
        "塌陷 坍塌 塌了一 掉下来 砸到 砸伤 摇摇欲坠 随时会掉 随时可能 晃得很厉害 露出了?钢筋 踩空",
        "有坍塌或坠物风险",
        "something may collapse or fall on people",
        "facility water_pipe",
    ),
    _rule(
        "manhole",
        "high",
        f"井盖{_S}{{0,8}}(?:不见|没了|丢|偷|碎|松动|缺|翻|掉)",
        "井盖缺失或损坏，有跌落风险",
        "a missing or broken manhole cover; someone may fall in",
        "facility water_pipe",
        display="井盖",
    ),
    _rule(
        "violence",
        "high",
        f"动手 打起来 打架 打人 拿刀 砍人 持刀 拿了棍子 拿着棍子 抄起 见血 "
        f"砸{_S}{{0,4}}门 门{_S}{{0,3}}砸 推倒 泼 威胁 扬言",
        "有肢体冲突或人身威胁",
        "violence or threats between people",
        "noise_dispute",
        display="动手 打起来 打架 打人 拿刀 砍人 持刀 拿了棍子 拿着棍子 抄起 见血 砸 推倒 泼 威胁 扬言",
    ),
    _rule(
        "bite", "high", "咬伤 咬了 咬到 被咬 咬出血 咬死 追咬 扑咬 咬人", "犬只咬人", "a dog has bitten someone", "pets"
    ),
    _rule(
        "frail",
        "high",
        "独居 孤寡 高龄 [七八九]十多?岁 [七八九]十几岁 行动不便 腿脚不[便方] 瘫痪 卧床",
        "涉及独居、高龄或行动不便的老人",
        "it affects an elder who lives alone, is very old or cannot move easily",
        "water_pipe facility",
    ),
]

_NORMAL = [
    _rule(
        "dog_nuisance",
        "normal",
        "半夜 凌晨 整晚 整夜 一晚上 一整夜 一整晚 从早叫到晚 白天晚上都 狂叫 狂吠 嚎 大型犬 大狗 藏獒 狼狗 德牧 比特 "
        "野狗 嘴套 扑 窜出来 追着?(?:人|老人|小孩|孩子|路人|电动车|骑车) 见人就追 骑车的就追",
        "犬只夜间扰民或有伤人风险",
        "a dog disturbs people at night or could hurt someone",
        "pets",
    ),
]

_DEFAULTS: dict[str, tuple[str, str, str]] = {
    "clutter": ("normal", "楼道堆物影响通行，需要清理", "clutter in a shared space needs clearing"),
    "water_pipe": ("normal", "漏水、停水等供水问题，需要报修", "a water leak or supply problem needs repair"),
    "ebike": ("normal", "电动车停放问题，需要劝导", "e-bike parking needs sorting out"),
    "noise_dispute": ("normal", "噪音或邻里矛盾，需要协调", "noise or a neighbour dispute needs mediation"),
    "pets": ("low", "文明养宠问题，不紧急", "a pet-keeping nuisance; not urgent"),
    "vulnerable_person": (
        "high",
        "涉及需要帮助的老人或弱势人员，应尽快上门",
        "an elder or vulnerable person may need help; visit soon",
    ),
    "hazard": ("high", "火灾、燃气或用电隐患，需尽快排查", "a fire, gas or electrical risk needs checking soon"),
    "sanitation": ("normal", "环境卫生问题，需要清理", "a hygiene problem needs cleaning up"),
    "facility": ("normal", "公共设施损坏，需要报修", "a broken facility needs repair"),
    "other": ("low", "一般事务或咨询，不紧急", "a general matter or question; not urgent"),
}
_SERVICE_REQUEST = (
    "normal",
    "咨询或申请为老服务，暂无紧急迹象",
    "a request for a service for an elder; no sign of an emergency",
)
_SUGGESTION_DEFAULT = ("low", "建议或咨询，无需紧急处理", "a suggestion or question; nothing urgent")

_SERVICE = alternatives(
    "申请 申领 办理 补贴 津贴 咨询 请问 有没有 想问 想给 想为 想请 能不能 课程 培训 食堂 助餐 助老餐 老年卡 志愿者 服务"
)
_WORRY = alternatives(
    "没见 没人应 不应 没有回应 打不通 没接 担心 走失 走丢 找不到 不对劲 异味 没出门 "
    "没下楼 没开门 不开 哭 糊涂 说不清 没人照顾 没人管 被骗 诈骗 可怜 出院 病 摔 严重 咳嗽 饿 没去"
)
_SUGGESTION = re.compile(
    f"^(?:建议|希望{_S}{{0,8}}(?:设置|增加|多装|安装|增设|划)|能不能在|想问问)"
    f"|^请问{_S}{{0,20}}(?:在哪|哪里|怎么办|如何)"
)
_SUGGESTION_CATEGORIES = frozenset({"clutter", "water_pipe", "ebike", "noise_dispute", "sanitation", "facility"})

_PUT_OUT = re.compile(r"(?<![没未])(?:扑灭|踩灭|熄灭|灭掉了|灭了)")


@dataclass(frozen=True, slots=True)
class Decision:
    """One reason for an urgency level: a rule that fired, a category default, or the model."""

    level: str
    rule: str  # id: a rule's, "default", "put_out" or "model"
    zh: str
    en: str


@dataclass(frozen=True, slots=True)
class RuleFindings:
    decisions: list[Decision]  # the keyword rules that fired (no category default)
    notes: list[tuple[str, str]]  # (zh, en) for emergency words that were negated, hypothetical or resolved
    reading: tuple[str, str] | None = None  # (zh, en) saying how pinyin in the report was read


def readable(text: str) -> str:
    """What the urgency rules and model read: the cleaned text with its pinyin read as characters."""
    return read_pinyin(clean(text))


def reading_note(text: str) -> tuple[str, str] | None:
    """A reason saying how the pinyin of ``text`` was read, so "提到“卡住”" can be traced to "kazhu"."""
    cleaned = clean(text)
    read = read_pinyin(cleaned)
    if read == cleaned:
        return None
    return f"拼音按汉字读作“{read}”", f"the pinyin was read as '{read}'"


def find_rules(text: str, category: str) -> RuleFindings:
    """What the keyword rules see in a report of ``category``: every rule that fired, at its level."""
    check_category(category)
    reading = reading_note(text)
    text = readable(text)
    decided: list[Decision] = []
    notes: list[tuple[str, str]] = []
    for r in (*CRITICAL, *_HIGH, *_NORMAL):
        if not applies(r, category):
            continue
        found = find(r, text, category)
        if found.counted:
            word = min((shown(r, w) for w in found.counted), key=len)  # the plainest mention
            decided.append(Decision(r.level, r.id, f"{r.zh}，提到“{word}”", f"{r.en} (mentions '{word}')"))
        elif found.suppressed and r.level == "critical":
            word = shown(r, found.suppressed[0])
            notes.append(
                (
                    f"提到“{word}”但为否定或假设，未按紧急处理",
                    f"'{word}' is mentioned but negated or hypothetical, so it is not treated as an emergency",
                )
            )
        elif found.resolved:
            word = shown(r, found.resolved[0])
            notes.append(
                (
                    f"提到“{word}”但已处理，未按紧急处理",
                    f"'{word}' is mentioned but reported as dealt with, so it is not treated as an emergency",
                )
            )
    fire_only = {d.rule for d in decided if d.level == "critical"} <= {"fire", "smoke"}
    if any(d.level == "critical" for d in decided) and fire_only and _PUT_OUT.search(text):
        decided = [d for d in decided if d.level != "critical"]
        decided.append(
            Decision(
                "high",
                "put_out",
                "火已扑灭，但仍需排查起火原因和隐患",
                "the fire is reported as put out; the cause still needs checking",
            )
        )
    return RuleFindings(decided, notes, reading)


def category_default(text: str, category: str) -> Decision:
    """The level a report of ``category`` has when no rule fires (a service request or a suggestion lowers it)."""
    check_category(category)
    text = readable(text)
    level, zh, en = _DEFAULTS[category]
    if category == "vulnerable_person" and _SERVICE.search(text) and not _WORRY.search(text):
        level, zh, en = _SERVICE_REQUEST
    if category in _SUGGESTION_CATEGORIES and _SUGGESTION.search(text):
        level, zh, en = _SUGGESTION_DEFAULT
    return Decision(level, "default", zh, en)


def decide(decisions: list[Decision], notes: list[tuple[str, str]], reading: tuple[str, str] | None = None) -> Urgency:
    """The highest level among ``decisions``, with the reasons of every decision at that level (and,
    after them, how pinyin was read, at any level)."""
    final = max((d.level for d in decisions), key=urgency_rank)
    chosen = [d for d in decisions if d.level == final]
    if len(chosen) > 1:  # a rule decided: the category default is not a reason then
        chosen = [d for d in chosen if d.rule != "default"] or chosen
    reasons = [d.zh for d in chosen]
    reasons_en = [d.en for d in chosen]
    if urgency_rank(final) < urgency_rank("critical"):
        reasons += [n[0] for n in notes]
        reasons_en += [n[1] for n in notes]
    if reading is not None:
        reasons.append(reading[0])
        reasons_en.append(reading[1])
    assert final in URGENCY_LEVELS
    return Urgency(final, reasons, reasons_en, [d.rule for d in chosen])


def assess(text: str, category: str) -> Urgency:
    """Urgency of a report of ``category`` by the keyword rules and category defaults alone, with its
    reasons in zh and en. ``classify`` uses the model with these rules raising it (``urgency_model``)."""
    findings = find_rules(text, category)
    return decide([category_default(text, category), *findings.decisions], findings.notes, findings.reading)
