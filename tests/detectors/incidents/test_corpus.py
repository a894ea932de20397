from __future__ import annotations

import json
import re
from collections import Counter

from detectors.incidents import (
    CATEGORIES,
    URGENCY_LEVELS,
    load_colloquial,
    load_corpus,
    load_urgency_extra,
    split_corpus,
)
from shouwang.settings import REPO_ROOT


def test_corpus_is_large_varied_and_labelled() -> None:
    corpus = load_corpus()
    assert len(corpus) >= 600
    counts = Counter(r.category for r in corpus)
    assert set(counts) == set(CATEGORIES)
    assert min(counts.values()) >= 60
    assert {r.urgency for r in corpus} == set(URGENCY_LEVELS)
    texts = [r.text for r in corpus]
    assert len(set(texts)) == len(texts), "duplicate reports"
    lengths = sorted(len(t) for t in texts)
    assert lengths[0] < 20 and lengths[-1] > 60, "lengths should vary"
    assert all(re.search(r"[\u4e00-\u9fff]", t) for t in texts)


def test_colloquial_set_is_separate() -> None:
    colloquial = load_colloquial()
    assert len(colloquial) >= 60
    assert {r.category for r in colloquial} == set(CATEGORIES)
    assert not {r.text for r in colloquial} & {r.text for r in load_corpus()}


def test_urgency_examples_are_separate_and_cover_both_sides() -> None:
    extra = load_urgency_extra()
    texts = [r.text for r in extra]
    assert len(set(texts)) == len(texts)
    assert not set(texts) & ({r.text for r in load_corpus()} | {r.text for r in load_colloquial()})
    levels = Counter(r.urgency for r in extra)
    assert levels["critical"] >= 100 and sum(levels.values()) - levels["critical"] >= 100  # danger and near misses


def test_files_are_one_json_object_a_line() -> None:
    for name in ("corpus.jsonl", "colloquial.jsonl", "urgency_extra.jsonl"):
        for line in (REPO_ROOT / "detectors/incidents/data" / name).read_text(encoding="utf-8").splitlines():
            assert set(json.loads(line)) == {"text", "category", "urgency"}


def test_split_is_deterministic_and_stratified() -> None:
    corpus = load_corpus()
    train_a, test_a = split_corpus(corpus)
    train_b, test_b = split_corpus(corpus)
    assert test_a == test_b and train_a == train_b
    assert len(test_a) == round(len(corpus) * 0.25)
    assert not {r.text for r in train_a} & {r.text for r in test_a}
    assert set(Counter(r.category for r in test_a)) == set(CATEGORIES)


def test_documented_class_counts_match_the_files() -> None:
    doc = (REPO_ROOT / "docs/INCIDENTS.md").read_text(encoding="utf-8")
    counts = Counter(r.category for r in load_corpus())
    colloquial = Counter(r.category for r in load_colloquial())
    for category in CATEGORIES:
        row = re.search(rf"^\| `{category}` \| (\d+) \|.*\| (\d+) \|$", doc, re.MULTILINE)
        assert row, f"docs/INCIDENTS.md has no count row for {category}"
        assert (int(row[1]), int(row[2])) == (counts[category], colloquial[category])
