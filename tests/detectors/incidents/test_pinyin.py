"""Reports in pinyin are read as characters before the urgency rules and model see them."""

from __future__ import annotations

import pytest

from detectors.incidents import URGENCY_LEVELS, UrgencyModel, UrgencyPrediction, assess, assess_urgency, classify
from detectors.incidents.pinyin import read_pinyin, syllables


class LowModel(UrgencyModel):
    """A model that always says low, so whatever is critical is the rules' doing."""

    def __init__(self) -> None:
        self.levels = URGENCY_LEVELS

    def predict(self, text: str, n_terms: int = 3) -> UrgencyPrediction:
        return UrgencyPrediction("low", 0.9, [])


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ("dianti kazhu le, 9 hao lou, limian you ren", "电梯卡住了, 9 号楼, 里面有人"),
        ("wo ye ye shuai dao le qi bu lai", "我爷爷摔倒了起不来"),
        ("diàn tī kǎ zhù le", "电梯卡住了"),  # tone marks
        ("dian4ti1 ka3zhu4 le", "电梯卡住了"),  # tone digits
        ("Lou Dao Li Mao Yan Le", "楼道里冒烟了"),  # capitals
        ("mei you zhao huo", "没有着火"),  # the negation is read too
        ("楼下 xyz shuai dao le", "楼下 xyz 摔倒了"),  # a word that is not pinyin is left alone
        ("hua yuan li you dian wei dao", "hua yuan 里有点味道"),  # … and so is pinyin the dictionary does not know
    ],
)
def test_known_pinyin_words_are_read_as_characters(text: str, read: str) -> None:
    assert read_pinyin(text) == read
    assert read_pinyin(read) == read  # reading twice changes nothing


@pytest.mark.parametrize(
    "text",
    [
        "闻到好浓一股gas味",  # English, not pinyin
        "WIFI坏了 ok",
        "he is in the lift",  # "he" is a syllable, but the run is not pinyin
        "you",  # one syllable alone is never read
        "3栋电梯又坏了！！",
        "",
    ],
)
def test_other_latin_text_is_unchanged(text: str) -> None:
    assert read_pinyin(text) == text


def test_syllables_split_the_fewest_way() -> None:
    assert syllables("dianti") == ("dian", "ti")
    assert syllables("xian") == ("xian",)
    assert syllables("fangjian") == ("fang", "jian")
    assert syllables("gas") is None


@pytest.mark.parametrize(
    ("category", "text", "rule"),
    [
        ("noise_dispute", "dianti kazhu le, 9 hao lou, limian you ren", "lift_occupied"),
        ("clutter", "wo ye ye shuai dao le qi bu lai, 4 dong 201, kuai lai", "fall"),
        ("hazard", "lou xia you mei qi wei, hen nong", "gas"),
        ("other", "zhao huo le! 5 dong", "fire"),
    ],
)
def test_danger_written_in_pinyin_is_critical_and_says_how_it_was_read(category: str, text: str, rule: str) -> None:
    urgency = assess_urgency(text, category, LowModel())
    assert urgency.level == "critical" and rule in urgency.rules, urgency
    assert urgency.reasons[-1].startswith("拼音按汉字读作“")
    assert urgency.reasons_en[-1].startswith("the pinyin was read as '")
    assert assess(text, category).level == "critical"  # the rules alone read it the same way


def test_negated_pinyin_is_negated() -> None:
    urgency = assess("mei you zhao huo, zhi shi you dian wei dao", "hazard")
    assert urgency.level != "critical"
    assert any("“着火”但为否定或假设" in r for r in urgency.reasons)


def test_classify_reads_pinyin_end_to_end() -> None:
    result = classify("wo ye ye shuai dao le qi bu lai, 4 dong 201, kuai lai")
    assert result.urgency == "critical"
    assert "拼音按汉字读作" in result.explanation_zh and "read as" in result.explanation_en
