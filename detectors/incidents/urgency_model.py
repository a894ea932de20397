"""Urgency from a model, raised (never lowered) by the rules.

A character n-gram TF-IDF + logistic regression model, in the style of the category classifier,
is trained on the urgency labels of the corpus and of ``data/urgency_extra.jsonl`` (reports
written to show indirect danger and negation). It reads a report as a whole and so picks up
danger described without the obvious words, and learns that "没有着火，只是有点味道" is not a fire.

The rules then only raise its level: the danger rules of ``danger`` (someone trapped, fallen,
not seen or not answering; fire, smoke, gas, sparks, water pouring indoors → ``critical``), the
risk rules of ``urgency`` (``high``: trailing leads, blocked fire escapes, bursts, bites…), and
the floors "every ``hazard`` report is at least high" and "every ``vulnerable_person`` report
is at least high unless it is a plain request for a service". A level the model gives is never
lowered by a rule, and a rule's negation handling ("没有冒烟", "万一着火", "差点摔了",
"已经修好") only stops that rule from raising.

Punctuation is dropped before the model sees a report: "！！" says how upset a writer is, not
what is happening, and short exclamatory reports ("电梯又坏了！！") must not look like emergencies.
Clause breaks become word breaks, so an n-gram never spans two clauses.

The hyper-parameters were chosen by stratified 5-fold cross-validation on the training data
only (``select_urgency_hyperparameters``; ``scripts/evaluate_incidents.py`` re-runs it), by the
F1 of the ``critical`` class.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from detectors.incidents.categories import URGENCY_EN, URGENCY_LEVELS, URGENCY_ZH, check_category
from detectors.incidents.classifier import IncidentClassifier, _pipeline
from detectors.incidents.corpus import LabelledReport, load_corpus, load_urgency_extra
from detectors.incidents.text import has_content
from detectors.incidents.urgency import Decision, Urgency, category_default, decide, find_rules, readable

NGRAM_RANGE: tuple[int, int] = (1, 2)
C: float = 10.0
CLASS_WEIGHT: str | None = None
URGENCY_PARAM_GRID: dict[str, list] = {
    "tfidf__ngram_range": [(1, 2), (1, 3)],
    "model__C": [3.0, 10.0, 30.0, 100.0],
    "model__class_weight": [None, "balanced"],
}
CV_SEED = 0
TOLERANCE = 0.01  # CV scores this close to the best are not told apart (see select_urgency_hyperparameters)

# Categories whose default level is also a rule that raises: a hazard is at least high, and so is
# an elder or vulnerable person (unless the report is a plain request for a service).
FLOOR_CATEGORIES = frozenset({"hazard", "vulnerable_person"})

_DIGITS = re.compile(r"[0-9]+")
_NOT_WORD = re.compile(r"[^0-9a-z\u3400-\u9fff\uf900-\ufaff]+")


def for_urgency(text: str) -> str:
    """What the urgency model sees: the cleaned text, lower-case, numbers folded to ``0``, every run of
    punctuation, emoji or space made one space (callers pass text that went through ``readable``)."""
    return _NOT_WORD.sub(" ", _DIGITS.sub("0", text.lower())).strip()


@dataclass(frozen=True, slots=True)
class UrgencyPrediction:
    level: str
    confidence: float  # the model's probability for that level
    top_terms: list[str]  # n-grams of the text that pushed most towards it


class UrgencyModel:
    """A trained urgency model. ``predict`` is pure and thread-safe."""

    def __init__(self, classifier: IncidentClassifier) -> None:
        self._classifier = classifier
        self.levels: tuple[str, ...] = classifier.classes

    def predict(self, text: str, n_terms: int = 3) -> UrgencyPrediction:
        """``ValueError`` if the text has no letter, digit or Chinese character."""
        level, confidence, terms = self._classifier.predict(text, n_terms)
        return UrgencyPrediction(level, confidence, terms)

    def predict_many(self, texts: Iterable[str]) -> list[str]:
        return self._classifier.predict_many(texts)


def train_urgency(
    records: Sequence[LabelledReport],
    ngram_range: tuple[int, int] = NGRAM_RANGE,
    c: float = C,
    class_weight: str | None = CLASS_WEIGHT,
) -> UrgencyModel:
    """Train on labelled reports (anything with ``.text`` and ``.urgency``)."""
    labels = [r.urgency for r in records]
    unknown = set(labels) - set(URGENCY_LEVELS)
    if unknown:
        raise ValueError(f"unknown urgency levels {sorted(unknown)}")
    if len(set(labels)) < 2:
        raise ValueError("need reports of at least two urgency levels to train")
    pipeline = _pipeline(ngram_range, c, for_urgency, class_weight)
    pipeline.fit([readable(r.text) for r in records], labels)
    return UrgencyModel(IncidentClassifier(pipeline))


def training_records() -> list[LabelledReport]:
    """What the shipped model is trained on: the corpus and the extra urgency examples."""
    return load_corpus() + load_urgency_extra()


@lru_cache(maxsize=1)
def default_urgency_model() -> UrgencyModel:
    """The urgency model trained once on the shipped training data (cached; nothing fetched)."""
    return train_urgency(training_records())


def critical_f1(truth: Sequence[str], predicted: Sequence[str]) -> float:
    return float(f1_score(truth, predicted, labels=["critical"], average="macro", zero_division=0))


def select_urgency_hyperparameters(records: Sequence[LabelledReport]) -> tuple[dict, float, list[tuple[dict, float]]]:
    """Grid search by stratified 5-fold cross-validation on ``records`` (training data only), scored by
    the F1 of ``critical`` for the model alone (the rules were written on the same data, so a score
    of the model with the rules would flatter them).

    Among the settings within ``TOLERANCE`` of the best score, the most regularised (smallest C,
    then shorter n-grams) is chosen: the scores differ by less than their noise there, and the
    simpler model trains faster at every worker start. Returns (chosen parameters, its mean CV
    score, every (parameters, score))."""
    texts = [readable(r.text) for r in records]
    labels = [r.urgency for r in records]
    folds = StratifiedKFold(5, shuffle=True, random_state=CV_SEED)
    scored: list[tuple[dict, float]] = []
    for ngram_range in URGENCY_PARAM_GRID["tfidf__ngram_range"]:
        for c in URGENCY_PARAM_GRID["model__C"]:
            for class_weight in URGENCY_PARAM_GRID["model__class_weight"]:
                predicted = cross_val_predict(
                    _pipeline(ngram_range, c, for_urgency, class_weight), texts, labels, cv=folds
                )
                params = {"tfidf__ngram_range": ngram_range, "model__C": c, "model__class_weight": class_weight}
                scored.append((params, critical_f1(labels, list(predicted))))
    best = max(score for _, score in scored)
    near = [(p, s) for p, s in scored if s >= best - TOLERANCE]
    chosen = min(near, key=lambda ps: (ps[0]["model__C"], ps[0]["tfidf__ngram_range"][1], -ps[1]))
    return chosen[0], chosen[1], scored


def _quote_zh(terms: list[str]) -> str:
    return "、".join(f"“{t}”" for t in terms)


def _quote_en(terms: list[str]) -> str:
    return ", ".join(f"'{t}'" for t in terms)


def model_decision(prediction: UrgencyPrediction) -> Decision:
    level = prediction.level
    basis_zh = f"，依据：{_quote_zh(prediction.top_terms)}" if prediction.top_terms else ""
    basis_en = f", based on {_quote_en(prediction.top_terms)}" if prediction.top_terms else ""
    return Decision(
        level, "model", f"模型判断为{URGENCY_ZH[level]}{basis_zh}", f"the model rates it {URGENCY_EN[level]}{basis_en}"
    )


def assess_urgency(text: str, category: str, model: UrgencyModel | None = None) -> Urgency:
    """Urgency of a report of ``category``: the model's level, raised by any rule at a higher level.

    The reasons name the model's top terms when the model decided and every rule at the final
    level, so a grid worker sees what was read. ``ValueError`` for an unknown category; a text
    with nothing readable in it is left to the rules and category default."""
    check_category(category)
    findings = find_rules(text, category)
    text = readable(text)  # the pinyin in it read as characters, as the rules read it
    decisions = list(findings.decisions)
    if has_content(text):
        decisions.insert(0, model_decision((model or default_urgency_model()).predict(text)))
    else:
        decisions.append(category_default(text, category))
    if category in FLOOR_CATEGORIES:
        decisions.append(category_default(text, category))
    return decide(decisions, findings.notes, findings.reading)


def levels_of(records: Sequence[LabelledReport], categories: Sequence[str], model: UrgencyModel) -> list[str]:
    """``assess_urgency`` for many reports with the given categories (evaluation helper)."""
    return [assess_urgency(r.text, c, model).level for r, c in zip(records, categories, strict=True)]


__all__ = [
    "CLASS_WEIGHT",
    "NGRAM_RANGE",
    "C",
    "UrgencyModel",
    "UrgencyPrediction",
    "assess_urgency",
    "default_urgency_model",
    "for_urgency",
    "levels_of",
    "select_urgency_hyperparameters",
    "train_urgency",
    "training_records",
]
