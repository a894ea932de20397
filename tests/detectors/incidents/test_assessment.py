from __future__ import annotations

import json

import pytest

from detectors.incidents import CATEGORIES, URGENCY_LEVELS, IncidentAssessment, classify, classify_lines

JUNK = [
    "🙂🔥💧🐶" * 10,  # emoji only
    "x" * 100_000,  # 100 KB of one letter
    "楼道里有人飞线充电。" * 10_000,  # 100 KB of a real sentence
    bytes(range(256)).decode("latin-1"),  # binary decoded as Latin-1
    bytes(range(256)).decode("utf-8", "surrogateescape"),  # binary with lone surrogates
    bytes(range(256)).decode("utf-8", "replace"),
    "\x00\x1b[31m\u200b\ufeff",  # control and zero-width characters
    "！？。，、……——",  # punctuation only
    "<script>alert(1)</script>",
    "a",
]


def test_assessment_of_a_clear_report() -> None:
    result = classify("12号楼2单元楼道里有人给电动车充电，插线板就放在楼梯上")
    assert isinstance(result, IncidentAssessment)
    assert result.category == "ebike" and result.urgency == "high"
    assert 0.5 < result.confidence <= 1.0 and not result.needs_review
    assert result.explanation_zh.startswith("类别：电动车停放充电（置信度 ")
    assert "依据：“" in result.explanation_zh and "紧急程度：高（" in result.explanation_zh
    assert result.explanation_en.startswith("Category: e-bike parking and charging (confidence ")
    assert "urgency: high (" in result.explanation_en
    assert result.top_terms and result.reasons and result.reasons_en
    assert json.loads(json.dumps(result.to_dict(), ensure_ascii=False))["category"] == "ebike"


def test_critical_report() -> None:
    result = classify("3栋楼道里冒烟了，好像着火了，快来人")
    assert (result.category, result.urgency) == ("hazard", "critical")
    assert "紧急" in result.explanation_zh and "critical" in result.explanation_en


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_text_is_a_clear_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        classify(text)


def test_non_string_is_a_clear_value_error() -> None:
    with pytest.raises(ValueError, match="string"):
        classify(b"bytes")  # type: ignore[arg-type]


@pytest.mark.parametrize("text", JUNK, ids=range(len(JUNK)))
def test_junk_gets_a_defined_result(text: str) -> None:
    result = classify(text)
    assert result.category in CATEGORIES and result.urgency in URGENCY_LEVELS
    assert 0.0 <= result.confidence <= 1.0
    json.dumps(result.to_dict(), ensure_ascii=False).encode("utf-8")  # serialisable, no lone surrogates


def test_text_without_letters_is_flagged_for_review() -> None:
    result = classify("🙂🙂🙂")
    assert (result.category, result.urgency, result.needs_review) == ("other", "low", True)


def test_classify_lines() -> None:
    lines = [
        json.dumps({"text": "楼道里有很重的煤气味", "id": "r-1"}, ensure_ascii=False),
        "",
        "not json",
        json.dumps({"text": ""}),
        json.dumps(["a list"]),
        json.dumps({"txt": "wrong key"}),
        json.dumps({"text": "小区路灯不亮了"}, ensure_ascii=False) + "\n",
    ]
    out = [json.loads(line) for line in classify_lines(lines)]
    assert len(out) == 6  # the blank line is skipped
    first = out[0]
    assert first["id"] == "r-1" and first["line"] == 1
    assert (first["category"], first["urgency"]) == ("hazard", "critical")
    assert first["explanation"].startswith("类别：") and first["explanation_en"].startswith("Category:")
    assert 0 < first["confidence"] <= 1
    for record, line in zip(out[1:5], (3, 4, 5, 6), strict=True):
        assert set(record) == {"line", "error"} and record["line"] == line
        assert record["error"].startswith(f"line {line}: ")
    assert out[5]["line"] == 7 and out[5]["category"] == "facility"


def test_classify_lines_is_lazy_and_survives_junk() -> None:
    results = classify_lines(iter(['{"text": "' + "\\ud800" * 3 + '"}', '{"text": "' + "a" * 200_000 + '"}']))
    for line in results:
        json.loads(line)
        line.encode("utf-8")
