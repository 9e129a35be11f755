"""Question grouping benchmark: precision/recall/F1 of "same question" over a threshold grid, on
the tune and holdout parts of the labelled pairs, and the figures at the shipped SAME_QUESTION.

    python bench/grouping.py [--pairs tests/data/question_pairs.jsonl] [--errors]

The threshold is chosen on the tune part only (the rule is in index/coaching/grouping.py); holdout is
reported, never chosen on. `--errors` lists the pairs the shipped threshold gets wrong.
Plain numpy: the counts are simple and scikit-learn is not a project dependency.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from index.coaching.grouping import SAME_QUESTION
from index.engine import make_embedder
from index.retrieval.embedding import BUNDLED_MODEL

PROJECT = Path(__file__).resolve().parent.parent
GRID = [round(0.5 + 0.025 * i, 3) for i in range(19)]  # 0.50 .. 0.95
TARGET_PRECISION = 0.95


@dataclass(frozen=True)
class Figures:
    precision: float | None  # None: nothing reached the threshold
    recall: float
    f1: float
    merged: int


def figures(scores: np.ndarray, same: np.ndarray, threshold: float) -> Figures:
    merged = scores >= threshold
    hits = int((merged & same).sum())
    precision = hits / int(merged.sum()) if merged.any() else None
    recall = hits / int(same.sum()) if same.any() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else 0.0
    return Figures(precision, recall, f1, int(merged.sum()))


def show(f: Figures) -> str:
    precision = "  -  " if f.precision is None else f"{f.precision:.3f}"
    return f"P {precision} R {f.recall:.3f} F1 {f.f1:.3f} ({f.merged:2} merged)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, default=PROJECT / "tests" / "data" / "question_pairs.jsonl")
    parser.add_argument("--errors", action="store_true")
    args = parser.parse_args()

    pairs = [json.loads(line) for line in args.pairs.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = sorted({p["a"] for p in pairs} | {p["b"] for p in pairs})
    vectors = dict(zip(texts, make_embedder(BUNDLED_MODEL, Path(tempfile.gettempdir())).encode(texts), strict=True))
    scores = np.array([float(vectors[p["a"]] @ vectors[p["b"]]) for p in pairs])
    same = np.array([bool(p["same"]) for p in pairs])
    parts = {name: np.array([p["split"] == name for p in pairs]) for name in ("tune", "holdout")}
    for name, mask in parts.items():
        print(f"{name}: {int(mask.sum())} pairs, {int(same[mask].sum())} same")

    print(f"\n{'threshold':>9}  {'tune':40}  holdout")
    tune_precision: dict[float, float | None] = {}
    for threshold in GRID:
        tune = figures(scores[parts["tune"]], same[parts["tune"]], threshold)
        holdout = figures(scores[parts["holdout"]], same[parts["holdout"]], threshold)
        tune_precision[threshold] = tune.precision
        print(f"{threshold:9.3f}  {show(tune):40}  {show(holdout)}")

    # The rule of index/coaching/grouping.py: the lowest grid threshold from which tune precision stays >= target.
    steady = [t for t in GRID if all(p is None or p >= TARGET_PRECISION
                                     for u, p in tune_precision.items() if u >= t)]
    lowest = min((t for t, p in tune_precision.items() if p is not None and p >= TARGET_PRECISION), default=None)
    print(f"\nlowest tune threshold with precision >= {TARGET_PRECISION}: {lowest}; "
          f"lowest from which it stays there: {steady[0] if steady else None}")
    print(f"shipped SAME_QUESTION {SAME_QUESTION}:")
    for name, mask in (*parts.items(), ("all", np.ones_like(same))):
        print(f"  {name:8} {show(figures(scores[mask], same[mask], SAME_QUESTION))}")

    if args.errors:
        for pair, score, label in zip(pairs, scores, same, strict=True):
            if (score >= SAME_QUESTION) != label:
                kind = "missed" if label else "WRONG MERGE"
                print(f"  {kind:11} {score:.3f} [{pair['split']}] {pair['a']!r} / {pair['b']!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
