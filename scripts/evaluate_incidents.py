#!/usr/bin/env python3
"""Evaluate the incident classifier and urgency; print the Markdown tables of docs/INCIDENTS.md.

    .venv/bin/python scripts/evaluate_incidents.py            # everything (the grid searches take a while)
    .venv/bin/python scripts/evaluate_incidents.py --no-search
    .venv/bin/python scripts/evaluate_incidents.py --heldout-only   # just the independent held-out tables

1. Hyper-parameters: grid search by stratified 5-fold cross-validation on the *training* part
   of the deterministic split only; the held-out part is not looked at.
2. The classifier with the shipped hyper-parameters is trained on the training part and scored
   on the held-out part (25 %, stratified, seed ``SPLIT_SEED``) and on the colloquial set.
3. The urgency rules are compared with the hand labels (given the true category).
4. The urgency model: its grid search (5-fold CV on its training data), then the independent
   held-out sets, never trained on, scored for the rules of before the model, for the model with
   the rules as first shipped, and for the model with the rules now, side by side:
   ``data/heldout2.jsonl`` is the measurement (written while the second round of rules was being
   made, and first scored once that round was committed); ``data/heldout.jsonl`` was read to find
   that round's gaps, so it is development data now and shown as history.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType

from detectors.incidents import classifier as clf
from detectors.incidents import urgency_model as um
from detectors.incidents.categories import CATEGORIES, URGENCY_LEVELS
from detectors.incidents.corpus import (
    SPLIT_SEED,
    TEST_SIZE,
    LabelledReport,
    load_colloquial,
    load_corpus,
    load_heldout,
    load_heldout2,
    split_corpus,
)
from detectors.incidents.urgency import assess
from detectors.incidents.urgency_model import select_urgency_hyperparameters, training_records


def _per_class_table(held: clf.Evaluation, colloquial: clf.Evaluation) -> str:
    rows = [
        "| category | held-out P | held-out R | held-out F1 | n | colloquial F1 | n |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in CATEGORIES:
        p, r, f, n = held.per_class.get(c, (0.0, 0.0, 0.0, 0))
        cf, cn = colloquial.per_class.get(c, (0.0, 0.0, 0.0, 0))[2:]
        rows.append(f"| `{c}` | {p:.2f} | {r:.2f} | {f:.2f} | {n} | {cf:.2f} | {cn} |")
    rows.append(
        f"| **all** (accuracy / macro-F1) | | | **{held.accuracy:.3f}** / {held.macro_f1:.3f} | "
        f"{sum(v[3] for v in held.per_class.values())} | **{colloquial.accuracy:.3f}** / "
        f"{colloquial.macro_f1:.3f} | {sum(v[3] for v in colloquial.per_class.values())} |"
    )
    return "\n".join(rows)


def _urgency_table(name: str, records: Sequence[LabelledReport]) -> str:
    pairs = Counter((r.urgency, assess(r.text, r.category).level) for r in records)
    agree = sum(n for (a, b), n in pairs.items() if a == b)
    rows = [
        f"{name}: rules agree with the labels on {agree}/{len(records)} ({agree / len(records):.1%}); "
        "rows = label, columns = rules",
        "",
        "| label \\ rules | " + " | ".join(URGENCY_LEVELS) + " |",
        "|---|" + "---:|" * len(URGENCY_LEVELS),
    ]
    for a in URGENCY_LEVELS:
        rows.append(f"| {a} | " + " | ".join(str(pairs.get((a, b), 0)) for b in URGENCY_LEVELS) + " |")
    return "\n".join(rows)


# Today's urgency (before the model): the rules and category defaults as of this commit.
TODAY = "f7a96ab"
# The model with the rules as first shipped: the tree just before the second round of urgency
# changes (pinyin, more phrasings, the weapon rule, more training reports, re-chosen parameters).
FIRST_MODEL = "68f1ac9~1"
REPO = Path(__file__).resolve().parent.parent

_LEVELS_OF = """
import json, sys
from detectors.incidents.urgency_model import assess_urgency
pairs = json.load(sys.stdin)
print(json.dumps([assess_urgency(text, category).level for text, category in pairs]))
"""


def _levels_at(commit: str, texts: Iterable[str], categories: Iterable[str]) -> list[str]:
    """``assess_urgency`` of the package as it was at ``commit`` (code and training data, from git),
    run in a process of its own so that it imports nothing of today's package."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, "detectors"], cwd=REPO, check=True, capture_output=True
    ).stdout
    with tempfile.TemporaryDirectory() as tree:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tree, filter="data")
        done = subprocess.run(
            [sys.executable, "-c", _LEVELS_OF],
            cwd=tree,
            env={**os.environ, "PYTHONPATH": tree},
            input=json.dumps(list(zip(texts, categories, strict=True))),
            check=True,
            capture_output=True,
            text=True,
        )
    return [str(level) for level in json.loads(done.stdout)]


def _rules_of_today() -> ModuleType:
    """detectors/incidents/urgency.py as it was at ``TODAY``, loaded from git as a module of its own."""
    source = subprocess.run(
        ["git", "show", f"{TODAY}:detectors/incidents/urgency.py"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "urgency_today.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("urgency_today", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["urgency_today"] = module
    spec.loader.exec_module(module)
    return module


def _categories_unchanged_since_today() -> bool:
    """The category classifier's code and training categories are those of ``TODAY`` (only urgency labels
    were changed since), so its accuracy is today's."""
    old = subprocess.run(
        ["git", "show", f"{TODAY}:detectors/incidents/data/corpus.jsonl"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    before = [(item["text"], item["category"]) for item in map(json.loads, old.splitlines()) if item]
    return before == [(r.text, r.category) for r in load_corpus()]


def _critical(truth: Sequence[str], predicted: Sequence[str]) -> tuple[float, float, int, int, int]:
    tp = sum(1 for t, p in zip(truth, predicted, strict=True) if t == p == "critical")
    fp = sum(1 for t, p in zip(truth, predicted, strict=True) if p == "critical" and t != "critical")
    fn = sum(1 for t, p in zip(truth, predicted, strict=True) if t == "critical" and p != "critical")
    return tp / max(1, tp + fn), tp / max(1, tp + fp), tp, fp, fn


def _confusion(name: str, truth: Sequence[str], predicted: Sequence[str]) -> str:
    pairs = Counter(zip(truth, predicted, strict=True))
    rows = [
        f"{name} (rows = label, columns = decided)",
        "",
        "| label \\ decided | " + " | ".join(URGENCY_LEVELS) + " |",
    ]
    rows.append("|---|" + "---:|" * len(URGENCY_LEVELS))
    for a in URGENCY_LEVELS:
        rows.append(f"| {a} | " + " | ".join(str(pairs.get((a, b), 0)) for b in URGENCY_LEVELS) + " |")
    return "\n".join(rows)


def compare_urgency(records: Sequence[LabelledReport], name: str) -> str:
    """The rules of before the model, the model with the rules as first shipped and as now, on ``records``,
    all given the *predicted* category (as in the service), side by side: critical recall and
    precision, urgency agreement, confusion; and the reports the triage of now misses or over-rates."""
    today = _rules_of_today()
    categories: list[str] = clf.default_classifier().predict_many(r.text for r in records)
    truth = [r.urgency for r in records]
    decided = {
        "rules before the model": [
            str(today.assess(r.text, c).level) for r, c in zip(records, categories, strict=True)
        ],
        "model + rules, first shipped": _levels_at(FIRST_MODEL, (r.text for r in records), categories),
        "model + rules, now": [um.assess_urgency(r.text, c).level for r, c in zip(records, categories, strict=True)],
    }
    now = decided["model + rules, now"]
    category_accuracy = sum(1 for r, c in zip(records, categories, strict=True) if r.category == c) / len(records)
    lines = [
        f"{name}: {len(records)} reports, {truth.count('critical')} labelled critical; category accuracy "
        f"{category_accuracy:.3f} for all three (the category classifier is today's"
        f"{'' if _categories_unchanged_since_today() else ' — NOT: its training categories changed'})",
        "",
        "| urgency | critical recall | critical precision | critical found / missed / false | agrees with label |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, levels in decided.items():
        recall, precision, tp, fp, fn = _critical(truth, levels)
        agree = sum(1 for t, p in zip(truth, levels, strict=True) if t == p) / len(records)
        lines.append(f"| {label} | {recall:.3f} | {precision:.3f} | {tp} / {fn} / {fp} | {agree:.3f} |")
    for label, levels in decided.items():
        lines += ["", _confusion(f"{name}, {label}", truth, levels)]
    missed = [r.text for r, p in zip(records, now, strict=True) if r.urgency == "critical" != p]
    false = [f"[{r.urgency}] {r.text}" for r, p in zip(records, now, strict=True) if p == "critical" != r.urgency]
    lines += ["", f"{name}, model + rules now, critical missed:"] + [f"  - {t}" for t in missed]
    lines += [f"{name}, model + rules now, critical raised but not labelled so:"] + [f"  - {t}" for t in false]
    return "\n".join(lines)


def heldout_report() -> str:
    """The second held-out set (the measurement), the first (development data since the second round
    of rules) and the colloquial set; "model + rules, first" is the triage as first shipped."""
    parts: list[str] = []
    for loader, name in (
        (load_heldout2, "second held-out set (heldout2.jsonl, the measurement)"),
        (load_heldout, "first held-out set (heldout.jsonl, development data since the second round)"),
    ):
        try:
            parts.append(compare_urgency(loader(), name))
        except FileNotFoundError:
            parts.append(f"no {name} yet")
    parts.append(compare_urgency(load_colloquial(), "colloquial set"))
    return "\n\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-search", action="store_true", help="skip the cross-validated grid searches")
    parser.add_argument("--heldout-only", action="store_true", help="only the independent held-out comparison")
    args = parser.parse_args()
    if args.heldout_only:
        print(heldout_report())
        return

    corpus, colloquial = load_corpus(), load_colloquial()
    train, held_out = split_corpus(corpus)
    print(
        f"corpus: {len(corpus)} reports; colloquial: {len(colloquial)}; "
        f"split: {len(train)} train / {len(held_out)} held-out (test_size={TEST_SIZE}, seed={SPLIT_SEED})\n"
    )
    counts = Counter(r.category for r in corpus)
    urgencies = Counter((r.category, r.urgency) for r in corpus)
    print("| category | reports | critical | high | normal | low | colloquial |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    col_counts = Counter(r.category for r in colloquial)
    for c in CATEGORIES:
        levels = " | ".join(str(urgencies.get((c, u), 0)) for u in ("critical", "high", "normal", "low"))
        print(f"| `{c}` | {counts[c]} | {levels} | {col_counts[c]} |")
    print(
        f"| **total** | {len(corpus)} | "
        + " | ".join(str(sum(1 for r in corpus if r.urgency == u)) for u in ("critical", "high", "normal", "low"))
        + f" | {len(colloquial)} |\n"
    )

    if not args.no_search:
        started = time.perf_counter()
        best, score = clf.select_hyperparameters(train)
        print(
            f"grid search (5-fold CV on the training part, {time.perf_counter() - started:.0f} s): "
            f"best {best}, CV accuracy {score:.3f}"
        )
        shipped = {"model__C": clf.C, "tfidf__ngram_range": clf.NGRAM_RANGE}
        print(f"shipped: {shipped} ({'matches' if best == shipped else 'DIFFERS from'} the search)\n")

    model = clf.train(train)
    held, col = clf.evaluate(model, held_out), clf.evaluate(model, colloquial)
    print(_per_class_table(held, col) + "\n")

    wrong = [
        (r, p) for r, p in zip(held_out, model.predict_many(r.text for r in held_out), strict=True) if p != r.category
    ]
    confusions = Counter((r.category, p) for r, p in wrong)
    print(
        "most frequent held-out confusions (label → predicted): "
        + ", ".join(f"{a} → {b} ×{n}" for (a, b), n in confusions.most_common(6))
        + "\n"
    )

    everything = Counter(r.urgency == assess(r.text, r.category).level for r in corpus)
    print(f"whole corpus, true category: rules agree with the labels on {everything[True]}/{len(corpus)}\n")
    print(_urgency_table("held-out, true category", held_out) + "\n")
    print(_urgency_table("colloquial, true category", colloquial) + "\n")
    for name, records in (("held-out", held_out), ("colloquial", colloquial)):
        predicted = model.predict_many(r.text for r in records)
        rated = [assess(r.text, c).level for r, c in zip(records, predicted, strict=True)]
        agree = sum(1 for r, lv in zip(records, rated, strict=True) if r.urgency == lv)
        critical = [lv for r, lv in zip(records, rated, strict=True) if r.urgency == "critical"]
        print(
            f"{name}, predicted category: urgency agrees on {agree}/{len(records)} ({agree / len(records):.1%}); "
            f"labelled-critical reports rated critical: {critical.count('critical')}/{len(critical)}"
        )
    print()

    clf.default_classifier.cache_clear()
    started = time.perf_counter()
    clf.default_classifier()
    print(f"default_classifier() trains on all {len(corpus)} reports in {time.perf_counter() - started:.2f} s\n")

    if not args.no_search:
        started = time.perf_counter()
        urgency_records = training_records()
        chosen, score, scored = select_urgency_hyperparameters(urgency_records)
        print(
            f"urgency grid search (5-fold CV on the {len(urgency_records)} training reports, critical F1, "
            f"{time.perf_counter() - started:.0f} s):"
        )
        for params, value in scored:
            print(f"  {params}: {value:.3f}")
        shipped = {"tfidf__ngram_range": um.NGRAM_RANGE, "model__C": um.C, "model__class_weight": um.CLASS_WEIGHT}
        print(
            f"chosen {chosen} (CV critical F1 {score:.3f}); shipped {shipped} "
            f"({'matches' if chosen == shipped else 'DIFFERS from'} the search)\n"
        )
    um.default_urgency_model.cache_clear()
    started = time.perf_counter()
    um.default_urgency_model()
    print(f"default_urgency_model() trains in {time.perf_counter() - started:.2f} s\n")
    print(heldout_report())


if __name__ == "__main__":
    main()
