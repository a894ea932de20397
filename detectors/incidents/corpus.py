"""The labelled corpus shipped with the package (see docs/INCIDENTS.md for how it was made).

``data/corpus.jsonl``         hand-composed resident reports, one ``{"text", "category", "urgency"}`` a line
``data/colloquial.jsonl``     a separate, smaller set in a different style (short, typos, dialect)
``data/urgency_extra.jsonl``  reports written to teach the urgency model indirect danger and negation
                              (used to train urgency only, never the category)
``data/heldout.jsonl``        reports written independently of all the above, for evaluating urgency
                              only: never trained on; read to find the gaps of the second round of
                              urgency rules, so development data since
``data/heldout2.jsonl``       a second such set, written while that round was made and scored once
                              after it was committed: never trained on, never used to choose anything
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

from detectors.incidents.categories import CATEGORIES, URGENCY_LEVELS

SPLIT_SEED = 20240601
"""Seed of the one held-out split used in docs/INCIDENTS.md and the tests."""
TEST_SIZE = 0.25


@dataclass(frozen=True, slots=True)
class LabelledReport:
    text: str
    category: str
    urgency: str


def parse_records(lines: list[str], source: str = "<records>") -> list[LabelledReport]:
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        item = json.loads(line)
        if item.get("category") not in CATEGORIES or item.get("urgency") not in URGENCY_LEVELS:
            raise ValueError(f"{source}:{number}: bad category or urgency in {line!r}")
        if not isinstance(item.get("text"), str) or not item["text"].strip():
            raise ValueError(f"{source}:{number}: missing text")
        records.append(LabelledReport(item["text"], item["category"], item["urgency"]))
    return records


def _load(name: str) -> list[LabelledReport]:
    text = resources.files("detectors.incidents").joinpath("data").joinpath(name).read_text(encoding="utf-8")
    return parse_records(text.splitlines(), name)


def load_corpus() -> list[LabelledReport]:
    """The main labelled corpus (≈1000 reports, ≈100 per category)."""
    return _load("corpus.jsonl")


def load_colloquial() -> list[LabelledReport]:
    """The colloquial set: never used for training or model selection, only for evaluation."""
    return _load("colloquial.jsonl")


def load_urgency_extra() -> list[LabelledReport]:
    """Indirectly phrased dangers and negated or hypothetical ones, for training the urgency model."""
    return _load("urgency_extra.jsonl")


def load_heldout() -> list[LabelledReport]:
    """The independent held-out set (``FileNotFoundError`` until it is shipped): evaluation only."""
    return _load("heldout.jsonl")


def load_heldout2() -> list[LabelledReport]:
    """The second independent held-out set, written while the rules of the first one's gaps were being
    made (``FileNotFoundError`` until it is shipped): evaluation only, the acceptance figure."""
    return _load("heldout2.jsonl")


def split_corpus(
    records: list[LabelledReport], test_size: float = TEST_SIZE, seed: int = SPLIT_SEED
) -> tuple[list[LabelledReport], list[LabelledReport]]:
    """Deterministic stratified (train, held-out) split."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(
        records, test_size=test_size, random_state=seed, stratify=[r.category for r in records]
    )
    return list(train), list(test)
