"""The danger rules: someone who may be hurt now is critical however it is phrased; negated,
hypothetical, habitual, past or resolved mentions are not."""

from __future__ import annotations

import pytest

from detectors.incidents import assess, classify

# Ten reports of the four kinds issue 22 found missed (someone stuck, an elder not seen and not
# answering, electrical danger, water pouring out), phrased without the obvious words. Written for
# this test; none of them is in the training data.
INDIRECT_DANGER = [
    ("facility", "电梯不上不下停在6楼和7楼当中，我爸还在里头出不来"),
    ("facility", "3号楼的电梯卡住半小时了，里面有个小孩在哭"),
    ("vulnerable_person", "楼下的孤老李阿婆三天没下来买菜了，门口的报纸一叠一叠的，敲门也没人开"),
    ("vulnerable_person", "我爸一个人在家，昨天到今天电话一直没人接，麻烦去敲敲门"),
    ("vulnerable_person", "对门的老奶奶这几天都没露面，屋里的灯白天晚上都亮着"),
    ("hazard", "卧室墙上的插座一插东西就啪啪响，还闪蓝光"),
    ("hazard", "下雨后单元门口的铁门带电，好几个人摸了都被麻到"),
    ("water_pipe", "楼上渗水顺着客厅的吊灯往下滴，灯还开着"),
    ("water_pipe", "厨房的水管接口崩了，水哗哗往外冒，地上全是水，总阀找不到"),
    ("water_pipe", "楼上家里没人，水从天花板一直往下灌，像下大雨一样"),
]

# Each names an emergency word but says it is not happening now.
NOT_NOW = [
    ("hazard", "没有着火，只是有点味道"),
    ("hazard", "楼道里有焦味，但没看到冒烟"),
    ("clutter", "万一着火了，这么多纸箱谁跑得出去"),
    ("vulnerable_person", "老人差点摔倒，幸好扶住了"),
    ("facility", "电梯上午困过人，已经修好了"),
    ("hazard", "插座以前打过火花，后来换了新的，现在没问题了"),
    ("hazard", "没闻到煤气味，就是燃气表走得快"),
    ("vulnerable_person", "王奶奶两天没下楼，刚才敲门她开了，说是感冒了"),
    ("facility", "电梯经常停在两层中间，虽然没困到人，但大家都害怕"),
    ("vulnerable_person", "老人想报名社区的防跌倒讲座"),
    ("hazard", "以为着火了，下去一看是有人在烧烤"),
    ("water_pipe", "楼上漏水没漏到灯上，就是墙角湿了"),
]


@pytest.mark.parametrize(("category", "text"), INDIRECT_DANGER)
def test_indirect_danger_is_critical_by_the_rules(category: str, text: str) -> None:
    urgency = assess(text, category)
    assert urgency.level == "critical", urgency
    assert all("提到“" in r for r in urgency.reasons)  # the reason quotes what was seen


@pytest.mark.parametrize(("category", "text"), INDIRECT_DANGER)
def test_indirect_danger_is_critical_end_to_end(category: str, text: str) -> None:
    result = classify(text)  # the predicted category, the model, the rules
    assert result.urgency == "critical", result.explanation_zh


@pytest.mark.parametrize(("category", "text"), NOT_NOW)
def test_what_is_not_happening_now_is_not_critical(category: str, text: str) -> None:
    assert assess(text, category).level != "critical", assess(text, category)
    assert classify(text).urgency != "critical", classify(text).explanation_zh


def test_the_reasons_say_why_a_word_did_not_count() -> None:
    negated = assess("楼道里有焦味，但没看到冒烟", "hazard")
    assert any("“冒烟”但为否定或假设" in r for r in negated.reasons)
    resolved = assess("王奶奶两天没下楼，刚才敲门她开了，说是感冒了", "vulnerable_person")
    assert any("但已处理" in r for r in resolved.reasons)
    assert any("dealt with" in r for r in resolved.reasons_en)


@pytest.mark.parametrize(
    ("category", "text", "rule"),
    [
        ("facility", "电梯到一半不走了，我妈在里头", "lift_occupied"),
        ("vulnerable_person", "独居老人门口的牛奶放了四天没人拿", "unseen_signs"),
        ("hazard", "配电箱里噼里啪啦的还冒火光", "sparks"),
        ("hazard", "闻到一股臭鸡蛋的味儿，三楼楼梯口特别冲", "gas_smell"),
        ("vulnerable_person", "我爸说话突然不利索了，一边胳膊抬不起来", "medical"),
        ("vulnerable_person", "有个小孩掉进景观池里了", "fall"),
        ("other", "楼顶有个人站在栏杆外面，说不想活了", "self_harm"),
    ],
)
def test_each_kind_of_danger_has_its_rule(category: str, text: str, rule: str) -> None:
    urgency = assess(text, category)
    assert urgency.level == "critical" and rule in urgency.rules, urgency


@pytest.mark.parametrize(
    ("category", "text"),
    [
        ("noise_dispute", "楼下烧烤摊烟很大，熏得我家不敢开窗"),  # smoke of a barbecue
        ("noise_dispute", "邻居在楼道抽烟，烟味很重"),  # … or of a cigarette
        ("sanitation", "垃圾桶旁边有股臭鸡蛋味，估计是垃圾坏了"),  # a rotten smell of rubbish
        ("hazard", "楼道里有人烧纸，灰里还有火星"),  # embers, not electrics
        ("noise_dispute", "楼上半夜吵架，敲门也不开"),  # a door not opened in a dispute
        ("pets", "邻居家的狗被锁在门外叫了一晚上"),  # a dog, not a person
        ("ebike", "电动车轮胎漏气了"),  # a tyre, not gas
        ("water_pipe", "家里水压小，洗澡水哗哗响但是出不来多少"),  # the sound of water, not a flood
    ],
)
def test_look_alikes_are_not_critical(category: str, text: str) -> None:
    assert assess(text, category).level != "critical", assess(text, category)


def test_not_answering_counts_outside_vulnerable_person_only_for_an_elder() -> None:
    assert assess("独居老人家里漏水，敲门没人应，电话也打不通", "water_pipe").level == "critical"
    assert assess("楼上漏水，敲门没人应，电话也打不通", "water_pipe").level != "critical"
