#!/usr/bin/env python3
"""Evaluate the incident classifier and urgency rules; print the Markdown tables of docs/INCIDENTS.md.

    .venv/bin/python scripts/evaluate_incidents.py            # everything (the grid search takes a while)
    .venv/bin/python scripts/evaluate_incidents.py --no-search

1. Hyper-parameters: grid search by stratified 5-fold cross-validation on the *training* part
   of the deterministic split only; the held-out part is not looked at.
2. The classifier with the shipped hyper-parameters is trained on the training part and scored
   on the held-out part (25 %, stratified, seed ``SPLIT_SEED``) and on the colloquial set.
3. The urgency rules are compared with the hand labels (given the true category).
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

from detectors.incidents import classifier as clf
from detectors.incidents.categories import CATEGORIES, URGENCY_LEVELS
from detectors.incidents.corpus import SPLIT_SEED, TEST_SIZE, load_colloquial, load_corpus, split_corpus
from detectors.incidents.urgency import assess


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


def _urgency_table(name: str, records) -> str:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-search", action="store_true", help="skip the cross-validated grid search")
    args = parser.parse_args()

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
        levels = [assess(r.text, c).level for r, c in zip(records, predicted, strict=True)]
        agree = sum(1 for r, lv in zip(records, levels, strict=True) if r.urgency == lv)
        critical = [lv for r, lv in zip(records, levels, strict=True) if r.urgency == "critical"]
        print(
            f"{name}, predicted category: urgency agrees on {agree}/{len(records)} ({agree / len(records):.1%}); "
            f"labelled-critical reports rated critical: {critical.count('critical')}/{len(critical)}"
        )
    print()

    clf.default_classifier.cache_clear()
    started = time.perf_counter()
    clf.default_classifier()
    print(f"default_classifier() trains on all {len(corpus)} reports in {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
