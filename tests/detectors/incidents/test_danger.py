"""The danger rules: someone who may be hurt now is critical however it is phrased; negated,
hypothetical, habitual, past or resolved mentions are not."""

from __future__ import annotations

import pytest

from detectors.incidents import assess, classify

# Ten reports of the four kinds the classifier alone rated too low (someone stuck, an elder not seen and not
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


# Other ways residents write the same dangers (written for this test; none is in the training data).
OTHER_PHRASINGS = [
    ("hazard", "楼道里堆的纸箱着起来了，有人在拿灭火器", "fire"),  # a fire verb variant
    ("hazard", "着伙了 快来 5栋", "fire"),  # a homophone typo
    ("ebike", "车棚里一辆电动车着了", "fire"),  # a thing that burns, then 着
    ("hazard", "电线的火花把旁边的纸箱引着了", "fire"),
    ("hazard", "灶台的火关不掉，旋钮坏了", "fire"),
    ("hazard", "后面那栋楼顶一股一股黑乎乎的往外冒，快打119", "fire"),
    ("hazard", "有烟！！4楼", "smoke"),
    ("hazard", "电箱在冒白的，还有股塑料烧糊的味", "smoke"),
    ("hazard", "单元门口一股gas味", "gas"),
    ("hazard", "家里有股怪味，像是煤气", "gas"),
    ("hazard", "一氧化碳报警器一直在叫", "gas"),
    ("noise_dispute", "楼下有人拿着菜刀在追人，快报警", "weapon"),
    ("noise_dispute", "他把酒瓶子砸碎了攥着在门口比划，说要捅死人", "weapon"),
    ("noise_dispute", "两个人打起来，一个被捅伤了", "weapon"),
    ("vulnerable_person", "隔壁王奶奶走丢了，到现在都没找到，她有老年痴呆", "missing"),
    ("facility", "冇见过五楼李伯成个礼拜，拍门都冇人应", "unseen"),  # Cantonese, an elder named 李伯
    ("vulnerable_person", "我给我妈打了十几个电话，一直响到自动挂断", "unseen"),  # the outcome in the next clause
    ("vulnerable_person", "我爸一个人住，手机一直不在服务区", "unseen"),
    ("vulnerable_person", "邻居家孩子一个人在家，爬到窗台上了", "self_harm"),
    ("vulnerable_person", "他坐在阳台边说要跳", "self_harm"),
    ("vulnerable_person", "超市门口的车里锁着个两三岁的小孩，车主找不到", "trapped"),
    ("facility", "电梯把人关里面了，按铃也没人来", "trapped"),
    ("vulnerable_person", "小孩把头伸进栏杆里卡住了", "trapped"),
    ("facility", "电梯卡住了，里面两位老人", "lift_occupied"),
    ("vulnerable_person", "楼下一个老太太坐在地上，嘴唇都紫了", "medical"),
    ("vulnerable_person", "老人吃饭噎住了", "medical"),
    ("vulnerable_person", "奶奶喘不过来气，一直捂着胸口", "medical"),
    ("other", "楼下有个人满脸是血", "medical"),
    ("vulnerable_person", "喊他他不晓得应，脸煞白的", "unresponsive"),  # Sichuanese
    ("vulnerable_person", "老人晕在小区门口了", "fall"),
    ("other", "一个外卖小哥被车撞了", "fall"),
    ("vulnerable_person", "阿婆喺屋企跌亲咗，起唔到身", "fall"),  # Cantonese
    ("water_pipe", "热水管爆了，开水喷得满屋子都是", "flood"),
]

# Danger words about what is not happening to anyone now, or about no one.
OTHER_LOOK_ALIKES = [
    ("water_pipe", "家里马桶水箱坏了，一直哗哗地响"),  # the sound of a cistern
    ("hazard", "我昨晚梦见楼里着火了，想问问灭火器放在哪"),  # a dream
    ("hazard", "电视剧里着火的场面把孩子吓哭了"),
    ("vulnerable_person", "帮独居的张奶奶挪车，挪车电话也打不通"),  # a car owner's phone
    ("vulnerable_person", "给独居的李奶奶送药，快递员的电话一直没人接"),
    ("hazard", "早上闻到一点煤气味，开窗通风以后就没有了"),  # the smell went away
    ("hazard", "闻着像煤气，燃气公司来测了说不是"),  # … or was checked
    ("hazard", "热水器的火苗有点发黄，是不是该换了"),  # an appliance's flame
    ("hazard", "燃气热水器打火的时候砰的一声"),  # … and its ignition
    ("noise_dispute", "邻居说要拿刀砍人，我们很害怕"),  # a threat, no weapon in hand
    ("noise_dispute", "今天他拎着棍子上来敲我家门，威胁我不许再投诉"),  # over: nothing says it is going on
    ("noise_dispute", "楼下天天拿棍子捅天花板，还在群里骂人"),  # a stick, not a weapon at people
    ("vulnerable_person", "小区门口有个老人好像走失了，问他住哪说不清"),  # found: someone is with him
    ("vulnerable_person", "我爸前几天摔了一下，医院查过没骨折"),  # days ago
    ("vulnerable_person", "王奶奶的电话打了两次没接，后来她回过来了"),  # she called back
]


@pytest.mark.parametrize(("category", "text", "rule"), OTHER_PHRASINGS)
def test_other_phrasings_of_danger_have_their_rule(category: str, text: str, rule: str) -> None:
    urgency = assess(text, category)
    assert urgency.level == "critical" and rule in urgency.rules, urgency
    assert all("提到“" in r for r in urgency.reasons)  # the reason quotes what was seen


@pytest.mark.parametrize(("category", "text"), OTHER_LOOK_ALIKES)
def test_other_look_alikes_are_not_critical_by_the_rules(category: str, text: str) -> None:
    assert assess(text, category).level != "critical", assess(text, category)


def test_a_weapon_in_a_fight_names_the_weapon() -> None:
    urgency = assess("楼下有人拿着菜刀在追人，快报警", "noise_dispute")
    assert urgency.rules == ["weapon"] and "提到“菜刀”" in urgency.reasons[0]
    assert "weapon" in urgency.reasons_en[0]
