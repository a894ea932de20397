from __future__ import annotations

import time

import pytest

from detectors.incidents import CATEGORIES, LabelledReport, default_classifier, load_colloquial, train
from detectors.incidents import classifier as clf

CLEAR = {
    "clutter": "楼道里堆满了纸箱和旧家具，人都过不去",
    "water_pipe": "家里水管漏水了，地上全是水",
    "ebike": "有人在楼道里给电动车充电",
    "noise_dispute": "楼上邻居半夜还在装修，噪音太大了",
    "pets": "小区里遛狗不牵绳，狗屎也没人清理",
    "vulnerable_person": "独居老人好几天没出门了，敲门也没人应",
    "hazard": "楼道里有很重的煤气味",
    "sanitation": "垃圾桶满了好几天没人清运，苍蝇老鼠很多",
    "facility": "单元的电梯坏了好几天了，一直没人修",
    "other": "请问社区怎么办理居住证？",
}


def test_held_out_accuracy(split, held_out_model) -> None:
    result = clf.evaluate(held_out_model, split[1])
    assert result.accuracy >= 0.85, result
    assert result.macro_f1 >= 0.8
    assert all(f >= 0.7 for _, _, f, _ in result.per_class.values()), result.per_class


def test_colloquial_accuracy(held_out_model) -> None:
    assert clf.evaluate(held_out_model, load_colloquial()).accuracy >= 0.75


@pytest.mark.parametrize(("category", "text"), CLEAR.items())
def test_clear_examples(category: str, text: str) -> None:
    prediction = default_classifier().predict(text)
    assert prediction.category == category
    assert 0.0 < prediction.confidence <= 1.0
    assert prediction.top_terms and all(t in text.lower() for t in prediction.top_terms)


def test_prediction_unpacks_and_explains() -> None:
    category, confidence, terms = default_classifier().predict("3号楼有人飞线给电动车充电")
    assert category == "ebike" and confidence > 0.5
    assert any(t in ("飞线", "充电", "电动", "动车", "电动车") for t in terms)


def test_default_classifier_is_cached_and_quick() -> None:
    clf.default_classifier.cache_clear()
    started = time.perf_counter()
    first = default_classifier()
    assert time.perf_counter() - started < 2.0
    assert default_classifier() is first


def test_training_is_deterministic(split) -> None:
    texts = [r.text for r in split[1][:40]]
    assert train(split[0]).predict_many(texts) == train(split[0]).predict_many(texts)


def test_training_input_is_checked() -> None:
    with pytest.raises(ValueError, match="unknown categories"):
        train([LabelledReport("a", "nope", "low"), LabelledReport("b", "other", "low")])
    with pytest.raises(ValueError, match="two categories"):
        train([LabelledReport("楼道堆物", "clutter", "normal")] * 3)


@pytest.mark.parametrize("text", ["", "   ", "🙂🙂🙂", "！？。，"])
def test_predict_refuses_text_without_content(text: str) -> None:
    with pytest.raises(ValueError):
        default_classifier().predict(text)


def test_predict_survives_odd_text() -> None:
    model = default_classifier()
    for text in ("漏水" * 50_000, "\x00\x01\ud800楼道着火了\udfff", bytes(range(256)).decode("latin-1")):
        category, confidence, _ = model.predict(text)
        assert category in CATEGORIES and 0.0 <= confidence <= 1.0
