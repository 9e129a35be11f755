"""The rider question set: does the right document come first, and are off-topic questions declined?"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from index.answers import Answer, AnswerComposer
from index.errors import HingeError
from index.search import SearchIndex


class QuestionCase(BaseModel):
    question: str
    on_topic: bool
    expected: list[str] = Field(default_factory=list)
    split: Literal["tune", "holdout"] = "tune"
    category: str | None = None


class PartReport(BaseModel):
    name: str
    on_topic: int
    off_topic: int
    hit_at_1: float
    hit_at_3: float
    mrr: float
    off_topic_declined: float
    on_topic_declined: float


class QuestionReport(BaseModel):
    parts: list[PartReport]
    p50_ms: float
    p95_ms: float
    misses: list[str] = Field(default_factory=list, description="on-topic questions without a hit in the top 3")
    wrongly_answered: list[str] = Field(default_factory=list)
    wrongly_declined: list[str] = Field(default_factory=list)


def load_questions(path: Path) -> list[QuestionCase]:
    cases = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            cases.append(QuestionCase.model_validate(json.loads(line)))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise HingeError(f"{path}: line {n}: not a question case: {exc}") from exc
    return cases


def ranked_documents(index: SearchIndex, composer: AnswerComposer, question: str, depth: int = 10) -> list[str]:
    """Documents in the order the answer would cite them."""
    query = composer.query(question)
    docs: dict[str, None] = {}
    for hit in composer.rank(index, query, index.embed_query(query), k=depth * 3):
        docs.setdefault(hit.chunk.doc_id, None)
    return list(docs)[:depth]


def _share(flags: Sequence[bool | float]) -> float:
    return round(sum(flags) / len(flags), 4) if flags else 0.0


def _part(name: str, rows: Sequence[tuple[QuestionCase, Answer, list[str]]]) -> PartReport:
    on = [(c, a, r) for c, a, r in rows if c.on_topic]
    off = [(c, a, r) for c, a, r in rows if not c.on_topic]

    def first_rank(case: QuestionCase, ranked: list[str]) -> int | None:
        return next((i + 1 for i, d in enumerate(ranked) if d in case.expected), None)

    ranks = [first_rank(c, r) for c, _, r in on]
    return PartReport(
        name=name, on_topic=len(on), off_topic=len(off),
        hit_at_1=_share([rk == 1 for rk in ranks]),
        hit_at_3=_share([rk is not None and rk <= 3 for rk in ranks]),
        mrr=_share([1.0 / rk if rk else 0.0 for rk in ranks]),
        off_topic_declined=_share([not a.answered for _, a, _ in off]),
        on_topic_declined=_share([not a.answered for _, a, _ in on]),
    )


def evaluate_questions(index: SearchIndex, composer: AnswerComposer, cases: Sequence[QuestionCase]) -> QuestionReport:
    rows = []
    for case in cases:
        answer = composer.ask(index, case.question)
        ranked = ranked_documents(index, composer, case.question) if case.on_topic else []
        rows.append((case, answer, ranked))
    latencies = np.array([a.elapsed_ms for _, a, _ in rows] or [0.0])
    parts = [_part("tune", [r for r in rows if r[0].split == "tune"]),
             _part("holdout", [r for r in rows if r[0].split == "holdout"]), _part("all", rows)]
    return QuestionReport(
        parts=parts,
        p50_ms=round(float(np.percentile(latencies, 50)), 2), p95_ms=round(float(np.percentile(latencies, 95)), 2),
        misses=[c.question for c, _, r in rows if c.on_topic and not set(r[:3]) & set(c.expected)],
        wrongly_answered=[c.question for c, a, _ in rows if not c.on_topic and a.answered],
        wrongly_declined=[c.question for c, a, _ in rows if c.on_topic and not a.answered],
    )
