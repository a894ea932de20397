"""One call for a report: category, urgency, confidence and a plain-words explanation."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from detectors.incidents.categories import CATEGORY_EN, CATEGORY_ZH, URGENCY_EN, URGENCY_ZH
from detectors.incidents.classifier import IncidentClassifier, default_classifier
from detectors.incidents.text import clean, has_content
from detectors.incidents.urgency_model import UrgencyModel, assess_urgency

LOW_CONFIDENCE = 0.4
"""Below this probability the category is flagged for a person to check (``needs_review``)."""


@dataclass(frozen=True, slots=True)
class IncidentAssessment:
    category: str
    urgency: str
    confidence: float
    explanation_zh: str
    explanation_en: str
    reasons: list[str]  # urgency reasons, Chinese
    reasons_en: list[str]  # urgency reasons, English
    top_terms: list[str]  # n-grams of the text that pointed to the category
    needs_review: bool  # low confidence or no readable text

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _quote_zh(terms: list[str]) -> str:
    return "、".join(f"“{t}”" for t in terms)


def _quote_en(terms: list[str]) -> str:
    return ", ".join(f"'{t}'" for t in terms)


def classify(
    text: str, classifier: IncidentClassifier | None = None, urgency_model: UrgencyModel | None = None
) -> IncidentAssessment:
    """Classify one report: the category from the classifier, the urgency from the urgency model
    raised by the rules (``urgency_model.assess_urgency``). ``ValueError`` for an empty or blank
    text; a text with nothing readable in it (only emoji or punctuation) is ``other``/``low`` and
    flagged for review."""
    if not isinstance(text, str):
        raise ValueError(f"report text must be a string, not {type(text).__name__}")
    cleaned = clean(text)
    if not cleaned:
        raise ValueError("report text is empty")
    if not has_content(cleaned):
        return IncidentAssessment(
            "other",
            "low",
            0.0,
            "类别：其他（没有可识别的文字，请人工查看照片或联系上报人）；紧急程度：低",
            "Category: other (no readable text; look at the photo or ask the reporter); urgency: low",
            ["没有可识别的文字"],
            ["no readable text"],
            [],
            True,
        )
    category, confidence, terms = (classifier or default_classifier()).predict(cleaned)
    urgency = assess_urgency(cleaned, category, urgency_model)
    review = confidence < LOW_CONFIDENCE
    basis_zh = f"，依据：{_quote_zh(terms)}" if terms else ""
    basis_en = f", based on {_quote_en(terms)}" if terms else ""
    zh = (
        f"类别：{CATEGORY_ZH[category]}（置信度 {confidence:.2f}{basis_zh}）；"
        f"紧急程度：{URGENCY_ZH[urgency.level]}（{'；'.join(urgency.reasons)}）"
    )
    en = (
        f"Category: {CATEGORY_EN[category]} (confidence {confidence:.2f}{basis_en}); "
        f"urgency: {URGENCY_EN[urgency.level]} ({'; '.join(urgency.reasons_en)})"
    )
    if review:
        zh += "；分类把握不大，请人工确认"
        en += "; the category is uncertain, please check"
    return IncidentAssessment(
        category, urgency.level, round(confidence, 4), zh, en, urgency.reasons, urgency.reasons_en, terms, review
    )
