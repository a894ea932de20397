from __future__ import annotations

import pytest

from detectors.incidents import CATEGORIES, URGENCY_LEVELS, assess

CRITICAL = [
    ("hazard", "5栋3楼窗户往外冒烟，好像着火了"),
    ("hazard", "楼道里有很浓的煤气味"),
    ("hazard", "燃气管道被挖断了，正在往外喷气"),
    ("hazard", "有人触电了，倒在积水里"),
    ("vulnerable_person", "楼下有位老大爷摔倒了，起不来"),
    ("vulnerable_person", "老人倒在家门口，叫她没反应"),
    ("vulnerable_person", "我爸在家叫不醒"),
    ("vulnerable_person", "邻居老太太不省人事"),
    ("facility", "电梯困人了，卡在8楼"),
    ("water_pipe", "楼上水管爆了，我家客厅已经淹了"),
    ("water_pipe", "水漫得到处都是"),
    ("ebike", "楼道里充电的电动车着火了"),
]


@pytest.mark.parametrize(("category", "text"), CRITICAL)
def test_critical_cases(category: str, text: str) -> None:
    urgency = assess(text, category)
    assert urgency.level == "critical", urgency
    assert urgency.reasons and len(urgency.reasons) == len(urgency.reasons_en)


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("楼道里有焦糊味，但是没有冒烟", "冒烟"),
        ("找了一圈没发现着火的地方", "着火"),
        ("楼道堆满纸箱，万一着火根本跑不出去", "着火"),
        ("消防通道堵死了，着火了怎么办", "着火"),
        ("上周在楼下差点摔倒", "摔倒"),
        ("热水器打不着火", "着火"),
    ],
)
def test_negated_or_hypothetical_keywords_are_not_critical(text: str, word: str) -> None:
    for category in ("hazard", "clutter", "vulnerable_person", "water_pipe"):
        urgency = assess(text, category)
        assert urgency.level != "critical", (category, urgency)
    urgency = assess(text, "hazard")
    assert any(word in r for r in urgency.reasons)
    assert any("negated or hypothetical" in r for r in urgency.reasons_en)


def test_a_fire_already_put_out_is_high() -> None:
    urgency = assess("昨晚楼道里电线短路起火了，已经扑灭了，但电线烧得只剩铜丝", "hazard")
    assert urgency.level == "high"
    assert "put_out" in urgency.rules


@pytest.mark.parametrize(
    ("category", "text", "level"),
    [
        ("hazard", "小区配电箱的门坏了", "high"),  # hazard is at least high
        ("vulnerable_person", "对门的独居老人两天没出门了", "critical"),  # not seen for days: may be lying hurt
        ("vulnerable_person", "对门的独居老人最近走路不稳", "high"),
        ("vulnerable_person", "想给家里老人申请助餐服务", "normal"),  # a service request
        ("clutter", "楼道里堆了几个纸箱", "normal"),
        ("clutter", "楼道堆物把消防通道堵了", "high"),
        ("clutter", "安全出口被杂物挡住了", "high"),
        ("ebike", "楼下电动车乱停", "normal"),
        ("ebike", "有人飞线给电动车充电", "high"),
        ("ebike", "电动车推进楼道里充电", "high"),
        ("ebike", "电动车停在楼道里没充电，但挡路", "normal"),
        ("noise_dispute", "楼上半夜拖椅子", "normal"),
        ("noise_dispute", "两家人打起来了", "high"),
        ("pets", "遛狗不牵绳", "low"),
        ("pets", "狗叫了一整夜", "normal"),
        ("pets", "孩子被狗咬伤了", "high"),
        ("pets", "主人说狗不咬人，可狗屎也不清理", "low"),
        ("water_pipe", "厨房水管滴水", "normal"),
        ("water_pipe", "楼道主水管爆裂，一直在喷水", "critical"),  # water pouring indoors
        ("water_pipe", "小区路边的主水管爆裂，一直在喷水", "high"),  # … outdoors it is a burst, not a flood
        ("water_pipe", "独居的王奶奶家停水了", "high"),
        ("facility", "路灯不亮", "normal"),
        ("facility", "井盖不见了，剩一个大洞", "high"),
        ("sanitation", "垃圾没人清运", "normal"),
        ("sanitation", "建议多设几个垃圾分类点", "low"),
        ("other", "请问居住证怎么办理", "low"),
    ],
)
def test_rules_and_category_defaults(category: str, text: str, level: str) -> None:
    assert assess(text, category).level == level


def test_every_decision_is_explained_in_both_languages() -> None:
    for category in CATEGORIES:
        for text in ("楼道", "有人飞线充电，楼道里冒烟了", "没有问题"):
            urgency = assess(text, category)
            assert urgency.level in URGENCY_LEVELS
            assert urgency.reasons and len(urgency.reasons) == len(urgency.reasons_en)
            assert all(urgency.reasons_en)


def test_reasons_name_the_keyword() -> None:
    urgency = assess("楼道里有很浓的煤气味", "hazard")
    assert urgency.rules == ["gas"]
    assert "煤气味" in urgency.reasons[0] and "gas" in urgency.reasons_en[0]


def test_unknown_category_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown incident category"):
        assess("着火了", "fire")


def test_odd_text_never_crashes() -> None:
    for text in ("", "🔥🔥🔥", "着火" * 50_000, "\ud800\x00煤气味"):
        assert assess(text, "hazard").level in URGENCY_LEVELS
