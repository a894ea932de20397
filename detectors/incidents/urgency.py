"""Urgency of an incident report: documented keyword rules first, then category defaults.

Levels, from most to least urgent (docs/INCIDENTS.md has the full table):

``critical``  life or property in danger *now*: fire or smoke, a gas smell or leak, an explosion,
              electric shock, someone fallen / unconscious / calling for help, people trapped in a
              lift, water flooding a home.
``high``      a serious risk or a vulnerable person who needs someone soon: every ``hazard`` and
              ``vulnerable_person`` report, charging e-bikes indoors or from trailing leads,
              clutter or e-bikes blocking a fire escape, flammables stored in a stairwell, burst
              pipes, missing manhole covers, things that may collapse or fall, violence, dog bites,
              leaking or sparking electrics, pipes or lifts that leave a frail elder stranded.
``normal``    the default for clutter, water, e-bikes, noise, sanitation, facilities; a service
              request about an elder; a dog barking at night or a big dog off the lead.
``low``       the default for pets and other matters; suggestions and "where do I …" questions.

A critical keyword does not count when it is negated or hypothetical in its own clause
("没有冒烟", "万一着火", "差点摔了", "着火了怎么办"), and a fire reported as put out
("已经扑灭") is high, not critical. Every decision carries its reasons in Chinese and English.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from detectors.incidents.categories import URGENCY_LEVELS, check_category, urgency_rank
from detectors.incidents.text import clean


@dataclass(frozen=True, slots=True)
class Urgency:
    level: str
    reasons: list[str]  # in Chinese
    reasons_en: list[str]  # the same reasons in English
    rules: list[str] = field(default_factory=list)  # ids of the rules that decided


@dataclass(frozen=True, slots=True)
class _Rule:
    id: str
    level: str
    pattern: re.Pattern[str]
    zh: str
    en: str
    categories: frozenset[str] | None = None  # None: every category
    hypothetical_counts: bool = True  # a risk rule counts even when said as "万一…"
    inner_negation: re.Pattern[str] | None = None  # a negation inside a long match ("楼道里没充电")
    display: re.Pattern[str] | None = None  # the word to quote from a long match


def _alternatives(spec: str) -> re.Pattern[str]:
    """A regex from space-separated alternatives (no alternative contains a space)."""
    return re.compile("|".join(spec.split()))


def _rule(
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
) -> _Rule:
    return _Rule(
        id_,
        level,
        _alternatives(spec),
        zh,
        en,
        frozenset(categories.split()) if categories else None,
        hypothetical_counts,
        re.compile(inner_negation) if inner_negation else None,
        _alternatives(display) if display else None,
    )


def _emergency(id_: str, spec: str, zh: str, en: str, display: str | None = None) -> _Rule:
    return _rule(id_, "critical", spec, zh, en, hypothetical_counts=False, display=display)


_S = "[^。！？!?]"  # any character within the same sentence
_PLACES = "(?:楼道|楼梯|家里|家中|回家|室内|客厅|卧室|阳台|电梯|地下室|储物间|店里|车库|楼里|屋里|窗|配电|电表箱)"

_CRITICAL = [
    _emergency(
        "fire", "着火 起火 失火 火苗 火光 火势 明火 烧起来 燃起来 烧到", "有明火，着火了", "an open fire is reported"
    ),
    _emergency(
        "smoke", "冒烟 冒黑烟 浓烟 黑烟 全是烟 烟越来越大 烟雾弥漫 烟已经灌满 烟从", "冒烟或浓烟", "smoke is reported"
    ),
    _emergency(
        "gas",
        f"(?:煤|燃|天然|液化)气味 煤汽味 汽油味 漏气 "
        f"(?:燃气|煤气|天然气|液化气){_S}{{0,16}}?(?:泄漏|泄露|喷气|冒气|往外跑)",
        "有燃气或煤气气味、泄漏",
        "a smell of gas or a gas leak",
        display="(?:煤|燃|天然|液化)气味 煤汽味 汽油味 漏气 泄漏 泄露 喷气 冒气 往外跑",
    ),
    _emergency("explosion", "爆炸", "发生爆炸", "an explosion"),
    _emergency("shock", "触电 被电倒 电倒了", "有人触电", "someone has had an electric shock"),
    _emergency(
        "fall",
        "摔倒 跌倒 摔了(?!一跤) 摔下 摔在地 倒地 倒在地上 晕倒 昏倒 晕过去 昏过去 倒下了 突然倒下 "
        "起不来 爬不起来 动不了 落水 掉进水 滑下去 拉不上来",
        "有人摔倒或倒地",
        "someone has fallen or collapsed",
    ),
    _emergency(
        "unresponsive",
        "叫不醒 不省人事 昏迷 一动不动 没有?了?呼吸 呼吸很弱 "
        "(?<!呼)(?:叫|喊|拍)[^，。！？,.!?]{0,4}(?:没反应|没有反应|没回应|没有回应|不回答|不答应)",
        "有人失去反应，叫不醒或不省人事",
        "someone does not respond",
        display="叫不醒 不省人事 昏迷 一动不动 呼吸 没反应 没有反应 没回应 没有回应 不回答 不答应",
    ),
    _emergency(
        "medical",
        "胸口疼 胸痛 喘不上气 半边身子 中风 抽搐 呼救 救命 头上流血 头磕破 血流不止 流了很多血",
        "有人突发急症或在呼救",
        "someone is acutely ill or calling for help",
    ),
    _emergency(
        "trapped",
        f"困人 电梯关人 被困在?(?:电梯|轿厢) 困在(?:电梯|轿厢|里面) "
        f"(?:电梯|轿厢)里{_S}{{0,8}}(?:被困|困着|出不来) 被关在 关在里面",
        "有人被困，如电梯困人",
        "someone is trapped (in a lift)",
        display="困人 关人 被困 困在 困着 出不来 被关在 关在里面",
    ),
    _emergency(
        "flood",
        "水漫 漫到 漫进 漫下来 (?<!不)淹了 被淹 淹到 水淹 都淹 全淹 进水了 往下灌 往里灌 倒灌 关不住了 "
        f"积了一?层水 (?:屋|家|客厅|卧室){_S}{{0,6}}积水 都泡了 全泡了",
        "水漫进屋或楼道",
        "water is flooding a home or the building",
        display="水漫 漫到 漫进 漫下来 淹了 被淹 淹到 水淹 都淹 全淹 进水了 往下灌 往里灌 倒灌 关不住了 "
        "积了一?层水 积水 都泡了 全泡了",
    ),
]

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

_SERVICE = _alternatives(
    "申请 申领 办理 补贴 津贴 咨询 请问 有没有 想问 想给 想为 想请 能不能 课程 培训 食堂 助餐 助老餐 老年卡 志愿者 服务"
)
_WORRY = _alternatives(
    "没见 没人应 不应 没有回应 打不通 没接 担心 走失 走丢 找不到 不对劲 异味 没出门 "
    "没下楼 没开门 不开 哭 糊涂 说不清 没人照顾 没人管 被骗 诈骗 可怜 出院 病 摔 严重 咳嗽 饿 没去"
)
_SUGGESTION = re.compile(
    f"^(?:建议|希望{_S}{{0,8}}(?:设置|增加|多装|安装|增设|划)|能不能在|想问问)"
    f"|^请问{_S}{{0,20}}(?:在哪|哪里|怎么办|如何)"
)
_SUGGESTION_CATEGORIES = frozenset({"clutter", "water_pipe", "ebike", "noise_dispute", "sanitation", "facility"})

_CLAUSE_BREAK = re.compile(r"[，。！？；、,.!?;\s]")
_QUESTION = re.compile(r"是不是|会不会|是否|有没有")
_NEGATION = _alternatives("没有 没 无 未 不是 并非 不再 并不 别")
_NEGATION_WIDTH = 4  # a negator must stand right before the keyword: "没有冒烟", "还没冒烟", "没发现冒烟"
# … and a bare 不 only immediately before it: "打不着火", "狗不咬人" (but "不知道是哪家漏气了" is not negated)
_HYPOTHETICAL = _alternatives(
    "万一 要是 如果 一旦 假如 怕 担心 防止 以防 预防 容易 可能会 引发 差点 险些 经常 常常 总是 老是 曾经 隐患 风险"
)
# Used with ``pattern.match(text, pos)``, which anchors at ``pos`` (so no ``^``).
_HYPOTHETICAL_AFTER = re.compile(
    "[^，。！？；,.!?;]{0,4}(?:" + _alternatives("怎么办 咋办 咋整 后果不堪设想 就麻烦了 的话 很难 跑不").pattern + ")"
)
_PUT_OUT = re.compile(r"(?<![没未])(?:扑灭|踩灭|熄灭|灭掉了|灭了)")


def _clause_prefix(text: str, start: int, width: int = 8) -> str:
    begin = max(0, start - width)
    for i in range(start - 1, begin - 1, -1):
        if _CLAUSE_BREAK.match(text, i):
            begin = i + 1
            break
    return _QUESTION.sub("", text[begin:start])


def _shown(rule: _Rule, matched: str) -> str:
    found = rule.display.search(matched) if rule.display is not None else None
    return found.group() if found else matched


def _matches(rule: _Rule, text: str) -> tuple[list[str], list[str]]:
    """(keywords that count, keywords that were negated or hypothetical)."""
    counted, suppressed = [], []
    for match in rule.pattern.finditer(text):
        prefix = _clause_prefix(text, match.start())
        negated = bool(
            _NEGATION.search(prefix[-_NEGATION_WIDTH:])
            or prefix.endswith("不")
            or (rule.inner_negation is not None and rule.inner_negation.search(match.group()))
        )
        hypothetical = bool(_HYPOTHETICAL.search(prefix) or _HYPOTHETICAL_AFTER.match(text, match.end()))
        if negated or (hypothetical and not rule.hypothetical_counts):
            suppressed.append(match.group())
        else:
            counted.append(match.group())
    return counted, suppressed


def assess(text: str, category: str) -> Urgency:
    """Urgency of a report of ``category`` (one of ``CATEGORIES``) with its reasons in zh and en."""
    check_category(category)
    text = clean(text)
    level, zh, en = _DEFAULTS[category]
    if category == "vulnerable_person" and _SERVICE.search(text) and not _WORRY.search(text):
        level, zh, en = _SERVICE_REQUEST
    if category in _SUGGESTION_CATEGORIES and _SUGGESTION.search(text):
        level, zh, en = _SUGGESTION_DEFAULT
    decided: list[tuple[str, str, str, str]] = [(level, "default", zh, en)]
    notes: list[tuple[str, str]] = []
    for rule in (*_CRITICAL, *_HIGH, *_NORMAL):
        if rule.categories is not None and category not in rule.categories:
            continue
        counted, suppressed = _matches(rule, text)
        if counted:
            word = min((_shown(rule, w) for w in counted), key=len)  # the plainest mention
            decided.append((rule.level, rule.id, f"{rule.zh}，提到“{word}”", f"{rule.en} (mentions '{word}')"))
        elif suppressed and rule.level == "critical":
            word = suppressed[0]
            notes.append(
                (
                    f"提到“{word}”但为否定或假设，未按紧急处理",
                    f"'{word}' is mentioned but negated or hypothetical, so it is not treated as an emergency",
                )
            )
    fire_only = {d[1] for d in decided if d[0] == "critical"} <= {"fire", "smoke"}
    if any(d[0] == "critical" for d in decided) and fire_only and _PUT_OUT.search(text):
        decided = [d for d in decided if d[0] != "critical"]
        decided.append(
            (
                "high",
                "put_out",
                "火已扑灭，但仍需排查起火原因和隐患",
                "the fire is reported as put out; the cause still needs checking",
            )
        )
    final = max((d[0] for d in decided), key=urgency_rank)
    chosen = [d for d in decided if d[0] == final]
    if len(chosen) > 1:  # a rule decided: the category default is not a reason then
        chosen = [d for d in chosen if d[1] != "default"]
    reasons = [d[2] for d in chosen]
    reasons_en = [d[3] for d in chosen]
    if urgency_rank(final) < urgency_rank("critical"):
        reasons += [n[0] for n in notes]
        reasons_en += [n[1] for n in notes]
    assert final in URGENCY_LEVELS
    return Urgency(final, reasons, reasons_en, [d[1] for d in chosen])
