"""When a rule's keyword counts: negation, hypotheticals, habits, the past, resolution, context."""

from __future__ import annotations

import pytest

from detectors.incidents.rules import find, rule, sentence_of

FIRE = rule("fire", "critical", "着火 冒烟", "着火", "fire", hypothetical_counts=False)
RISK = rule("risk", "high", "着火", "着火风险", "fire risk")  # a high rule: hypotheticals count
SPARKS = rule(
    "sparks", "critical", "火花", "火花", "sparks", hypothetical_counts=False, habitual_counts=True, needs="插座 电线"
)
SMOKE = rule("smoke", "critical", "烟很大", "烟", "smoke", hypothetical_counts=False, unless="烧烤")
UNSEEN = rule(
    "unseen",
    "critical",
    "敲门没人应",
    "没人应",
    "no answer",
    "vulnerable_person",
    hypothetical_counts=False,
    elsewhere="老人|奶奶",
    past_counts=True,
    resolved="开门了",
)
FLOOD = rule("flood", "critical", "家.{0,12}往下淌", "水", "water", hypothetical_counts=False)


@pytest.mark.parametrize(
    ("text", "counts"),
    [
        ("楼道着火了", True),
        ("没有着火", False),  # negated right before
        ("还没着火", False),
        ("没看到哪里着火", False),  # not perceived
        ("打不着火", False),  # a bare 不 right before
        ("万一着火了怎么办", False),  # hypothetical
        ("着火了怎么办", False),  # … said after it
        ("会不会着火", False),  # a question about what may happen
        ("以为着火了，原来是烧烤", False),  # a mistaken belief
        ("经常有人说着火", False),  # habitual
        ("以前着过火", False),  # the past
        ("着过火", False),
        ("消防演习的时候楼道冒烟", False),  # a drill
        ("有没有冒烟？楼道里已经冒烟了", True),  # a question word is no negation
        ("着火了，已经修好了电线", False),  # resolved after it
        ("着火了，修好了吗", True),  # … but asking is not resolving
    ],
)
def test_when_an_emergency_keyword_counts(text: str, counts: bool) -> None:
    found = find(FIRE, text, "hazard")
    assert bool(found.counted) is counts, found


def test_a_risk_rule_counts_when_hypothetical() -> None:
    assert find(RISK, "万一着火跑不出去", "clutter").counted == ["着火"]
    assert not find(RISK, "没有着火", "clutter").counted


def test_habitual_counts_for_a_fault_that_is_there_now() -> None:
    assert find(SPARKS, "电表箱里的电线经常冒火花", "hazard").counted
    assert not find(SPARKS, "插座以前冒火花", "hazard").counted  # the past still does not
    assert not find(SPARKS, "灶台打火有火花", "hazard").counted  # needs electrics in the sentence


def test_unless_and_elsewhere() -> None:
    assert find(SMOKE, "楼道里烟很大", "hazard").counted
    assert not find(SMOKE, "楼下烧烤烟很大", "noise_dispute").counted
    assert find(UNSEEN, "敲门没人应", "vulnerable_person").counted
    assert find(UNSEEN, "独居奶奶家漏水，敲门没人应", "water_pipe").counted
    assert not find(UNSEEN, "楼上漏水，敲门没人应", "water_pipe").counted
    assert not find(UNSEEN, "敲门没人应。楼上的老人", "water_pipe").counted  # another sentence


def test_past_counts_and_resolution_for_not_seen() -> None:
    assert find(UNSEEN, "上周开始就敲门没人应", "vulnerable_person").counted
    found = find(UNSEEN, "敲门没人应，后来她开门了", "vulnerable_person")
    assert found.resolved and not found.counted


def test_a_negated_long_match_does_not_hide_a_later_one() -> None:
    # The first 家 is in "没人在家" (negated); the flood is described after it.
    assert find(FLOOD, "楼上没人在家，水从我家天花板哗哗地往下淌", "water_pipe").counted


def test_sentence_of() -> None:
    text = "第一句。楼道里冒烟了！第三句"
    start = text.index("冒烟")
    assert sentence_of(text, start, start + 2) == "楼道里冒烟了"
