"""Answer benchmark: the rider question set (tune and holdout parts), warm latency, and the
decline policy's fit.

    python bench/answers.py [--questions tests/data/questions.jsonl] [--leads tests/data/leads.jsonl] [--fit]

It also prints the share of tests/data/leads.jsonl whose lead (the first line a rider reads) answers the
question, for the tune and holdout parts.

`--fit` refits the decline policy's logistic coefficients on the tune part only and prints
them (paste them into `DeclinePolicy`); the holdout part is reported, never fitted on.
It also compares search settings (with and without the dense feedback round) on hit@3.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from index.answers.composer import AnswerComposer
from index.answers.decline import DeclinePolicy
from index.answers.text import clean_question, has_words
from index.engine import build_engine
from index.evaluation.questions import evaluate_questions, lead_share, load_leads, load_questions, subset_line

PROJECT = Path(__file__).resolve().parent.parent


def fitted_policy(index, composer: AnswerComposer, cases):  # type: ignore[no-untyped-def]
    """The decline policy's logistic coefficients fitted on the tune part of `cases` only, with the shipped
    threshold; also the features, labels and tune mask it was fitted on."""
    from scipy.optimize import minimize

    rows = []
    for case in cases:
        if not has_words(clean_question(case.question)):
            continue
        # The question as the composer searches it: typos corrected, shorthand spelled out, ranked.
        query = composer.query(case.question, index)
        vector = index.embed_query(query)
        hits = composer.rank(index, query, vector)
        evidence = composer.evidence(index, vector, hits, set(index.lexical.tokenize(query)))
        rows.append((evidence.features(), int(case.on_topic), case.split))
    x = np.array([r[0] for r in rows])
    y = np.array([r[1] for r in rows])
    tune = np.array([r[2] == "tune" for r in rows])
    # A wrong decline costs a rider an answer: on-topic errors weigh twice as much.
    weight = np.where(y[tune] == 1, 2.0, 1.0)

    def loss(w: np.ndarray) -> float:
        p = 1 / (1 + np.exp(-(w[0] + x[tune] @ w[1:])))
        ll = y[tune] * np.log(p + 1e-9) + (1 - y[tune]) * np.log(1 - p + 1e-9)
        return float(-(weight * ll).sum() / tune.sum() + 1e-4 * (w[1:] ** 2).sum())

    w = minimize(loss, np.zeros(x.shape[1] + 1), method="L-BFGS-B").x
    policy = DeclinePolicy(bias=round(float(w[0]), 3), weights=tuple(round(float(v), 3) for v in w[1:]))
    return policy, x, y, tune


def fit(engine, composer: AnswerComposer, cases) -> None:  # type: ignore[no-untyped-def]
    policy, x, y, tune = fitted_policy(engine.index, composer, cases)
    p = 1 / (1 + np.exp(-(policy.bias + x @ np.array(policy.weights))))
    print(f"fitted on {tune.sum()} tune questions: bias {policy.bias:.3f}, weights {list(policy.weights)}")
    for threshold in (0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7):
        on, off = (y == 1) & tune, (y == 0) & tune
        print(f"  threshold {threshold}: tune off-topic declined {np.mean(p[off] < threshold):.3f}, "
              f"on-topic wrongly declined {np.mean(p[on] < threshold):.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=PROJECT / "tests" / "data" / "questions.jsonl")
    parser.add_argument("--leads", type=Path, default=PROJECT / "tests" / "data" / "leads.jsonl")
    parser.add_argument("--data-dir", type=Path, default=PROJECT / ".hinge")
    parser.add_argument("--fit", action="store_true")
    args = parser.parse_args()

    engine = build_engine(args.data_dir, PROJECT / "knowledge")
    started = time.perf_counter()
    engine.load()
    print(f"library loaded in {time.perf_counter() - started:.1f}s: {len(engine.index)} chunks")
    composer = AnswerComposer()
    cases = load_questions(args.questions)
    composer.warm(engine.index)  # as the bot does before its first question
    report = evaluate_questions(engine.index, composer, cases)
    for part in report.parts:
        print(f"{part.name:8} on-topic {part.on_topic:3}  hit@1 {part.hit_at_1:.3f}  hit@3 {part.hit_at_3:.3f}  "
              f"MRR {part.mrr:.3f}  | off-topic {part.off_topic:3} declined {part.off_topic_declined:.3f}  "
              f"| on-topic wrongly declined {part.on_topic_declined:.3f}")
    for part in report.subsets:
        print(subset_line(part))
    print(f"warm answer latency over {len(cases)} questions: p50 {report.p50_ms:.1f} ms, p95 {report.p95_ms:.1f} ms")
    for name in ("misses", "wrongly_answered", "wrongly_declined"):
        for question in getattr(report, name):
            print(f"  {name}: {question}")
    leads = load_leads(args.leads)
    shares, good = [], 0
    for split in ("tune", "holdout"):
        part = [c for c in leads if c.split == split]
        share, wrong = lead_share(engine.index, composer, part)
        good += len(part) - len(wrong)
        shares.append(f"{split} {share:.3f} ({len(part) - len(wrong)}/{len(part)})")
        for question in wrong:
            print(f"  lead does not answer ({split}): {question}")
    print(f"leads that answer the question: {', '.join(shares)}, all {good / max(len(leads), 1):.3f}")

    if args.fit:
        fit(engine, composer, cases)
    return 0


if __name__ == "__main__":
    sys.exit(main())
