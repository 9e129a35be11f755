"""Conversation benchmark: follow-up questions with and without the conversation's context.

    python bench/conversations.py [--grid | --latency]

Each conversation of tests/data/conversations.jsonl is replayed turn by turn with the shipped engine and
composer. A turn hits when the answer is given and one of its three cited documents is expected. Follow-up
turns are reported with context and alone (the gain is the point); topic-change turns with context against
the same question asked alone; off-topic questions of tests/data/questions.jsonl asked as the second turn of a
hinge conversation against asked alone, by split. `--grid` varies the context policy one setting at a time on
the tune part (choose there, report the held-out part). Latency: warm follow-up answers against single
questions, with the load average (the machine's other work shows in it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from index.answers.composer import AnswerComposer, turn_of
from index.answers.conversation import ContextPolicy, Turn
from index.answers.models import Answer
from index.engine import build_engine

PROJECT = Path(__file__).resolve().parent.parent


def hit(answer: Answer, expected: list[str]) -> bool:
    return answer.answered and bool({c.document_id for c in answer.citations[:3]} & set(expected))


def replay(engine, composer: AnswerComposer, conversations: list[dict],  # type: ignore[type-arg,no-untyped-def]
           alone_too: bool = True) -> dict[str, list[bool]]:
    results: dict[str, list[bool]] = {"followup": [], "followup_alone": [], "topic_change": [],
                                      "topic_change_alone": [], "first": []}
    for conversation in conversations:
        history: list[Turn] = []
        for turn in conversation["turns"]:
            answer = composer.ask(engine.index, turn["question"], history=history)
            results[turn["kind"]].append(hit(answer, turn["expected"]))
            if turn["kind"] != "first" and alone_too:
                alone = composer.ask(engine.index, turn["question"])
                results[turn["kind"] + "_alone"].append(hit(alone, turn["expected"]))
            history.append(turn_of(answer))
    return results


def share(flags: list[bool]) -> float:
    return sum(flags) / len(flags) if flags else float("nan")


def report(name: str, results: dict[str, list[bool]]) -> None:
    print(f"{name:8} follow-ups hit@3 {share(results['followup']):.3f} with context, "
          f"{share(results['followup_alone']):.3f} alone (n={len(results['followup'])}) | topic changes "
          f"{share(results['topic_change']):.3f} with context, {share(results['topic_change_alone']):.3f} alone "
          f"(n={len(results['topic_change'])}) | first turns {share(results['first']):.3f}")


def off_topic_questions(split: str | None = None) -> list[str]:
    rows = [json.loads(line) for line in (PROJECT / "tests/data/questions.jsonl").read_text().splitlines() if line]
    return [r["question"] for r in rows if not r["on_topic"] and split in (None, r["split"])]


def declined_after(engine, composer: AnswerComposer, questions: list[str]) -> float:  # type: ignore[no-untyped-def]
    """Share of off-topic questions still declined when asked as the second turn of a hinge conversation."""
    first = turn_of(composer.ask(engine.index, "how do I hinge properly?"))
    return share([not composer.ask(engine.index, q, history=[first]).answered for q in questions])


def declined_alone(engine, composer: AnswerComposer, questions: list[str]) -> float:  # type: ignore[no-untyped-def]
    return share([not composer.ask(engine.index, q).answered for q in questions])


def latency(engine, composer: AnswerComposer, conversations: list[dict],  # type: ignore[type-arg,no-untyped-def]
            rounds: int = 3) -> None:
    """Warm p50/p95 of each conversation's first question asked alone and of each later turn asked after the
    turns before it (their answers computed beforehand, as a thread's stored history is), interleaved."""
    cases = []
    for conversation in conversations:
        history: list[Turn] = []
        for turn in conversation["turns"]:
            if history:
                cases.append((turn["question"], list(history)))
            history.append(turn_of(composer.ask(engine.index, turn["question"], history=history)))
    single: list[float] = []
    follow: list[float] = []
    for _ in range(rounds):
        for conversation in conversations:
            started = time.perf_counter()
            composer.ask(engine.index, conversation["turns"][0]["question"])
            single.append((time.perf_counter() - started) * 1000)
        for question, history in cases:
            started = time.perf_counter()
            composer.ask(engine.index, question, history=history)
            follow.append((time.perf_counter() - started) * 1000)
    p = np.percentile
    print(f"warm latency ({rounds} rounds, load average {os.getloadavg()[0]:.2f}): single p50 {p(single, 50):.1f} ms "
          f"p95 {p(single, 95):.1f} ms (n={len(single)}) | follow-up p50 {p(follow, 50):.1f} ms p95 "
          f"{p(follow, 95):.1f} ms (n={len(follow)}) | ratio of p50s {p(follow, 50) / p(single, 50):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=Path, default=PROJECT / "tests/data/conversations.jsonl")
    parser.add_argument("--grid", action="store_true")
    parser.add_argument("--latency", action="store_true", help="only the warm latency (measure when the load is low)")
    args = parser.parse_args()
    conversations = [json.loads(line) for line in args.conversations.read_text(encoding="utf-8").splitlines()
                     if line.strip()]
    tune = [c for c in conversations if c["split"] == "tune"]
    holdout = [c for c in conversations if c["split"] == "holdout"]
    engine = build_engine(PROJECT / ".hinge", PROJECT / "knowledge")
    engine.load()
    composer = AnswerComposer()
    composer.warm(engine.index)
    if args.latency:
        latency(engine, composer, conversations, rounds=5)
        return
    if args.grid:
        base = ContextPolicy()
        off_topic = off_topic_questions("tune")
        variations = [{}, *({"passage_weight": w} for w in (0.3, 0.45, 0.8, 1.0)), {"own_repeat": 1},
                      *({"standalone_confidence": c} for c in (0.7, 0.9, 1.01)),
                      *({"off_topic_margin": m} for m in (0.05, 0.08, 0.15, 9.0)),
                      *({"follow_up_threshold": t} for t in (0.3, 0.5, 0.6)),
                      *({"declined_alone_below": a} for a in (None, 0.3, 0.4, 0.5)), {"amounts_follow": False},
                      {"amounts_in_topic_follow": False},
                      *({"self_contained_unknown_words": n} for n in (None, 1, 3))]
        for change in variations:
            composer.context = replace(base, **change)  # type: ignore[arg-type]
            results = replay(engine, composer, tune, alone_too=False)
            print(f"tune {change or 'shipped'}: follow-ups {share(results['followup']):.3f} topic changes "
                  f"{share(results['topic_change']):.3f} | off-topic follow-ups declined "
                  f"{declined_after(engine, composer, off_topic):.3f}", flush=True)
        composer.context = base
    print(f"shipped context policy: {composer.context}")
    report("tune", replay(engine, composer, tune))
    report("holdout", replay(engine, composer, holdout))
    for split in ("tune", "holdout"):
        questions = off_topic_questions(split)
        print(f"{split:8} off-topic questions declined: {declined_after(engine, composer, questions):.3f} as a "
              f"follow-up, {declined_alone(engine, composer, questions):.3f} alone (n={len(questions)})")
    latency(engine, composer, conversations)


if __name__ == "__main__":
    main()
