"""Incident reports (随手拍): category, urgency, explanation, near-duplicate merging, hotspots.

Pure like the rest of ``detectors``: numpy and scikit-learn only, no I/O except reading the
shipped corpus (package data). See docs/INCIDENTS.md.

    classify(text) -> IncidentAssessment            category + urgency + explanation (zh, en)
    default_classifier() / train(records)           the character n-gram classifier
    assess_urgency(text, category) -> Urgency       the urgency model, raised (never lowered) by the rules
    default_urgency_model() / train_urgency(...)    the urgency model
    assess(text, category) -> Urgency               the documented urgency rules alone
    IncidentMerger(...).add(...) -> MergeDecision   same thing, same cell, within 48 h → one incident
    HotspotDetector(...).update(...) -> HotspotFinding | None
    classify_lines(lines) -> Iterator[str]          JSON Lines in and out (the CLI's core)
"""

from detectors.incidents.assessment import IncidentAssessment, classify
from detectors.incidents.categories import (
    CATEGORIES,
    CATEGORY_EN,
    CATEGORY_ZH,
    SEVERITY_OF_URGENCY,
    URGENCY_LEVELS,
)
from detectors.incidents.classifier import IncidentClassifier, Prediction, default_classifier, train
from detectors.incidents.cli_io import classify_lines
from detectors.incidents.corpus import (
    LabelledReport,
    load_colloquial,
    load_corpus,
    load_urgency_extra,
    split_corpus,
)
from detectors.incidents.hotspot import HotspotDetector, HotspotFinding
from detectors.incidents.merging import IncidentMerger, MergeDecision
from detectors.incidents.urgency import Urgency, assess
from detectors.incidents.urgency_model import (
    UrgencyModel,
    UrgencyPrediction,
    assess_urgency,
    default_urgency_model,
    train_urgency,
)

__all__ = [
    "CATEGORIES",
    "CATEGORY_EN",
    "CATEGORY_ZH",
    "SEVERITY_OF_URGENCY",
    "URGENCY_LEVELS",
    "HotspotDetector",
    "HotspotFinding",
    "IncidentAssessment",
    "IncidentClassifier",
    "IncidentMerger",
    "LabelledReport",
    "MergeDecision",
    "Prediction",
    "Urgency",
    "UrgencyModel",
    "UrgencyPrediction",
    "assess",
    "assess_urgency",
    "classify",
    "classify_lines",
    "default_classifier",
    "default_urgency_model",
    "load_colloquial",
    "load_corpus",
    "load_urgency_extra",
    "split_corpus",
    "train",
    "train_urgency",
]
