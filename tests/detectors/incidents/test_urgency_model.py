"""The urgency model and how the rules raise it (never lower it)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from detectors.incidents import (
    URGENCY_LEVELS,
    LabelledReport,
    UrgencyModel,
    UrgencyPrediction,
    assess_urgency,
    classify,
    default_urgency_model,
    load_corpus,
    load_urgency_extra,
    train_urgency,
)
from detectors.incidents.categories import urgency_rank
from detectors.incidents.corpus import load_heldout, load_heldout2
from detectors.incidents.urgency import category_default, find_rules
from detectors.incidents.urgency_model import FLOOR_CATEGORIES, critical_f1, for_urgency, training_records


class FixedModel(UrgencyModel):
    """A stand-in that always gives one level, to test how the rules combine with the model."""

    def __init__(self, level: str) -> None:
        self.level = level
        self.levels = URGENCY_LEVELS

    def predict(self, text: str, n_terms: int = 3) -> UrgencyPrediction:
        return UrgencyPrediction(self.level, 0.9, ["词"])


SAMPLES = [
    ("hazard", "没有着火，只是有点味道"),
    ("hazard", "楼道里冒烟了"),
    ("pets", "遛狗不牵绳"),
    ("other", "请问居住证怎么办理"),
    ("sanitation", "建议多设几个垃圾分类点"),
    ("vulnerable_person", "想给家里老人申请助餐服务"),
    ("ebike", "有人飞线给电动车充电"),
    ("facility", "电梯上午困过人，已经修好了"),
]


@pytest.mark.parametrize("model_level", URGENCY_LEVELS)
@pytest.mark.parametrize(("category", "text"), SAMPLES)
def test_rules_never_lower_the_model(model_level: str, category: str, text: str) -> None:
    urgency = assess_urgency(text, category, FixedModel(model_level))
    raising = [d.level for d in find_rules(text, category).decisions]
    if category in FLOOR_CATEGORIES:
        raising.append(category_default(text, category).level)
    assert urgency.level == max([model_level, *raising], key=urgency_rank)


def test_rules_raise_the_model_and_say_why() -> None:
    raised = assess_urgency("楼道里冒烟了", "hazard", FixedModel("low"))
    assert raised.level == "critical" and raised.rules == ["smoke"]
    assert "提到“冒烟”" in raised.reasons[0]
    floor = assess_urgency("小区配电箱的门坏了", "hazard", FixedModel("low"))
    assert floor.level == "high" and floor.rules == ["default"]  # a hazard is at least high


def test_the_model_decides_when_no_rule_is_higher() -> None:
    kept = assess_urgency("没有着火，只是有点味道", "hazard", FixedModel("critical"))
    assert kept.level == "critical" and kept.rules == ["model"]
    assert kept.reasons == ["模型判断为紧急，依据：“词”"]
    assert kept.reasons_en == ["the model rates it critical, based on '词'"]
    low = assess_urgency("遛狗不牵绳", "pets", FixedModel("low"))
    assert low.level == "low" and low.rules == ["model"]


def test_the_trained_model_reads_negation() -> None:
    model = default_urgency_model()
    assert model.predict("没有着火，只是有点味道").level != "critical"
    assert model.predict("楼道里全是烟，火苗从三楼窗户窜出来").level == "critical"
    assert model.predict("对门的独居奶奶好几天没见出门了，敲门也没人应").level == "critical"


def test_classify_names_the_model_and_the_rules() -> None:
    result = classify("对门的独居奶奶好几天没见出门了，敲门也没人应")
    assert result.urgency == "critical"
    assert "模型判断为紧急，依据：“" in result.explanation_zh
    assert "提到“" in result.explanation_zh and "the model rates it critical" in result.explanation_en


def test_model_quality_on_the_corpus_split(split: tuple[list[LabelledReport], list[LabelledReport]]) -> None:
    """Trained without the held-out part of the corpus, the model alone finds its critical reports."""
    model = train_urgency(split[0] + load_urgency_extra())
    truth = [r.urgency for r in split[1]]
    assert critical_f1(truth, model.predict_many(r.text for r in split[1])) >= 0.7
    combined = [assess_urgency(r.text, r.category, model).level for r in split[1]]
    recall = sum(1 for t, p in zip(truth, combined, strict=True) if t == p == "critical") / truth.count("critical")
    assert recall >= 0.95


def test_default_model_is_cached() -> None:
    assert default_urgency_model() is default_urgency_model()
    assert set(default_urgency_model().levels) == set(URGENCY_LEVELS)


def test_training_input_is_checked() -> None:
    with pytest.raises(ValueError, match="unknown urgency"):
        train_urgency([LabelledReport("a", "other", "urgent"), LabelledReport("b", "other", "low")])
    with pytest.raises(ValueError, match="two urgency levels"):
        train_urgency([LabelledReport("楼道堆物", "clutter", "normal")] * 3)


def test_what_the_model_sees() -> None:
    assert for_urgency("3栋电梯又坏了！！Help") == "0栋电梯又坏了 help"
    assert for_urgency("没有着火，只是有点味道") == "没有着火 只是有点味道"  # clauses stay apart


def test_odd_text_never_crashes() -> None:
    for text in ("🔥🔥🔥", "着火" * 50_000, "\ud800\x00煤气味", ""):
        assert assess_urgency(text, "hazard").level in URGENCY_LEVELS
    with pytest.raises(ValueError, match="unknown incident category"):
        assess_urgency("着火了", "fire")


@pytest.mark.parametrize("load", [load_heldout, load_heldout2])
def test_the_independent_held_out_sets_are_never_trained_on(load: Callable[[], list[LabelledReport]]) -> None:
    try:
        heldout = {r.text for r in load()}
    except FileNotFoundError:
        pytest.skip("held-out set not shipped")
    trained = {r.text for r in training_records()} | {r.text for r in load_corpus()}
    assert not heldout & trained, f"{len(heldout & trained)} held-out reports are in the training data"
