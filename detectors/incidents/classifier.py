"""Category classifier: character n-gram TF-IDF + multinomial logistic regression.

Chinese needs no word segmenter here: character uni- to tri-grams of the normalised text
(``char_wb``) carry the words that matter (``充电``, ``漏水``, ``电梯``) and survive typos
and homophones better than a segmenter would. The hyper-parameters below were chosen by
5-fold cross-validation on the training part of the corpus only (``select_hyperparameters``;
``scripts/evaluate_incidents.py`` re-runs the search and prints what it picks).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, precision_recall_fscore_support
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline

from detectors.incidents.categories import CATEGORIES
from detectors.incidents.corpus import LabelledReport, load_corpus
from detectors.incidents.text import clean, for_model, has_content

NGRAM_RANGE: tuple[int, int] = (1, 2)
C: float = 10.0
PARAM_GRID: dict[str, list] = {"tfidf__ngram_range": [(1, 2), (1, 3)], "model__C": [1.0, 3.0, 10.0, 30.0, 100.0]}
CV_SEED = 0


def _pipeline(
    ngram_range: tuple[int, int] = NGRAM_RANGE,
    c: float = C,
    preprocessor: Callable[[str], str] = for_model,
    class_weight: str | None = None,
) -> Pipeline:
    """Character n-gram TF-IDF + logistic regression (the urgency model reuses it with its own settings)."""
    return Pipeline(
        [
            (
                "tfidf",
                TfidfVectorizer(
                    analyzer="char_wb",
                    ngram_range=ngram_range,
                    sublinear_tf=True,
                    preprocessor=preprocessor,
                    dtype=np.float64,
                ),
            ),
            (
                "model",
                LogisticRegression(
                    C=c, solver="saga", tol=1e-3, max_iter=5000, random_state=0, class_weight=class_weight
                ),
            ),
        ]
    )


# Function characters: an n-gram made only of these explains nothing to a reader.
_FILLER = set("的了在有是我们你他她它这那就都还也又很和吗呢吧啊呀一个里到着被把给")


_SHOWABLE = re.compile(r"[a-z\u3400-\u9fff\uf900-\ufaff]+")


def _is_showable(term: str) -> bool:
    """A term a reader can make sense of: letters or Chinese only, no filler at either end, not one Latin letter."""
    if not _SHOWABLE.fullmatch(term) or (len(term) == 1 and term.isascii()):
        return False
    return term[0] not in _FILLER and term[-1] not in _FILLER


@dataclass(frozen=True, slots=True)
class Prediction:
    category: str
    confidence: float
    top_terms: list[str]

    def __iter__(self) -> Iterator[Any]:  # so that ``category, confidence, terms = clf.predict(text)`` works
        return iter((self.category, self.confidence, self.top_terms))


class IncidentClassifier:
    """A trained classifier. ``predict`` is pure and thread-safe (no state changes)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._vectorizer: TfidfVectorizer = pipeline.named_steps["tfidf"]
        self._model: LogisticRegression = pipeline.named_steps["model"]
        self._terms = self._vectorizer.get_feature_names_out()
        coef = self._model.coef_
        # Contribution of an n-gram to a class relative to the average class: what makes it *this* class.
        self._weights = coef - coef.mean(axis=0, keepdims=True)
        self.classes: tuple[str, ...] = tuple(str(c) for c in self._model.classes_)

    def predict(self, text: str, n_terms: int = 3) -> Prediction:
        """(category, confidence, top_terms): the most probable category, its probability and the
        n-grams of the text that pushed most towards it. ``ValueError`` if the text holds no
        letter, digit or Chinese character."""
        text = clean(text)
        if not has_content(text):
            raise ValueError("report text has no letters, digits or Chinese characters")
        features = self._vectorizer.transform([text])
        proba = self._model.predict_proba(features)[0]
        best = int(np.argmax(proba))
        return Prediction(self.classes[best], float(proba[best]), self._top_terms(features, best, n_terms, text))

    def _top_terms(self, features: Any, class_index: int, n_terms: int, text: str) -> list[str]:
        row = features.tocsr()
        contributions = row.data * self._weights[class_index, row.indices]
        order = np.argsort(-contributions, kind="stable")
        ranked = [str(self._terms[row.indices[i]]).strip() for i in order if contributions[i] > 0]
        ranked = [t for t in ranked if _is_showable(t)]
        seen = for_model(text)
        chosen: list[str] = []
        # Prefer multi-character terms; a single character only if nothing longer explains it.
        for min_len in (2, 1):
            for term in ranked:
                if len(chosen) >= n_terms:
                    break
                if len(term) < min_len or any(term in c for c in chosen):
                    continue
                for i, c in enumerate(chosen):  # two overlapping bigrams of one word: 电动 + 动车 → 电动车
                    joined = ""
                    if len(c) == len(term) == 2:
                        joined = c + term[1] if c[1] == term[0] else term + c[1] if term[1] == c[0] else ""
                    if joined and joined in seen and _is_showable(joined):
                        chosen[i] = joined
                        break
                else:
                    if not any(c in term for c in chosen):
                        chosen.append(term)
        return chosen[:n_terms]

    def predict_many(self, texts: Iterable[str]) -> list[str]:
        return [str(c) for c in self._pipeline.predict([clean(t) for t in texts])]


def train(
    records: Sequence[LabelledReport], ngram_range: tuple[int, int] = NGRAM_RANGE, c: float = C
) -> IncidentClassifier:
    """Train on labelled reports (``LabelledReport`` or anything with ``.text`` and ``.category``)."""
    labels = [r.category for r in records]
    unknown = set(labels) - set(CATEGORIES)
    if unknown:
        raise ValueError(f"unknown categories {sorted(unknown)}")
    if len(set(labels)) < 2:
        raise ValueError("need reports of at least two categories to train")
    pipeline = _pipeline(ngram_range, c)
    pipeline.fit([clean(r.text) for r in records], labels)
    return IncidentClassifier(pipeline)


@lru_cache(maxsize=1)
def default_classifier() -> IncidentClassifier:
    """The classifier trained once on the whole shipped corpus (well under 2 s; nothing fetched)."""
    return train(load_corpus())


def select_hyperparameters(records: Sequence[LabelledReport]) -> tuple[dict, float]:
    """Grid search by stratified 5-fold cross-validation on ``records`` (the training part only).

    Returns (best parameters, mean CV accuracy)."""
    search = GridSearchCV(
        _pipeline(), PARAM_GRID, cv=StratifiedKFold(5, shuffle=True, random_state=CV_SEED), scoring="accuracy", n_jobs=1
    )
    search.fit([clean(r.text) for r in records], [r.category for r in records])
    return dict(search.best_params_), float(search.best_score_)


@dataclass(frozen=True, slots=True)
class Evaluation:
    accuracy: float
    macro_f1: float
    per_class: dict[str, tuple[float, float, float, int]]  # category → (precision, recall, F1, support)


def evaluate(classifier: IncidentClassifier, records: Sequence[LabelledReport]) -> Evaluation:
    truth = [r.category for r in records]
    predicted = classifier.predict_many(r.text for r in records)
    labels = [c for c in CATEGORIES if c in set(truth) | set(predicted)]
    p, r, f, s = precision_recall_fscore_support(truth, predicted, labels=labels, zero_division=0)
    per_class = {c: (float(p[i]), float(r[i]), float(f[i]), int(s[i])) for i, c in enumerate(labels)}
    present = [per_class[c][2] for c in labels if per_class[c][3] > 0]
    return Evaluation(float(accuracy_score(truth, predicted)), float(np.mean(present)), per_class)
