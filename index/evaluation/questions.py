"""The rider question set: does the right document come first, and are off-topic questions declined?"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from index.answers.composer import AnswerComposer
from index.answers.models import Answer
from index.errors import HingeError
from index.retrieval.search import SearchIndex


class QuestionCase(BaseModel):
    question: str
    on_topic: bool
    expected: list[str] = Field(default_factory=list)
    split: Literal["tune", "holdout"] = "tune"
    category: str | None = None
    part: Literal["near_miss", "typo"] | None = Field(
        default=None, description="near_miss: off-topic but shares the library's words; typo: phone-typed on-topic")
    clean: str | None = Field(default=None, description="for a typo question, the same question spelled right")


class PartReport(BaseModel):
    name: str
    on_topic: int
    off_topic: int
    hit_at_1: float
    hit_at_3: float
    mrr: float
    off_topic_declined: float
    on_topic_declined: float
    clean_hit_at_3: float | None = Field(default=None,
                                         description="typo part: hit@3 of the same questions spelled right")


class QuestionReport(BaseModel):
    parts: list[PartReport]
    subsets: list[PartReport] = Field(default_factory=list,
                                      description="the near-miss and typo parts, tune and holdout")
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
    query = composer.query(question, index)
    docs: dict[str, None] = {}
    for hit in composer.rank(index, query, index.embed_query(query), k=depth * 3):
        docs.setdefault(hit.chunk.doc_id, None)
    return list(docs)[:depth]


def _share(flags: Sequence[bool | float]) -> float:
    return round(sum(flags) / len(flags), 4) if flags else 0.0


def _part(name: str, rows: Sequence[tuple[QuestionCase, Answer, list[str]]],
          clean_ranked: dict[str, list[str]] | None = None) -> PartReport:
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
        clean_hit_at_3=None if clean_ranked is None else _share(
            [bool(set(clean_ranked[c.clean or c.question][:3]) & set(c.expected)) for c, _, _ in on]),
    )


def evaluate_questions(index: SearchIndex, composer: AnswerComposer, cases: Sequence[QuestionCase]) -> QuestionReport:
    rows = []
    for case in cases:
        answer = composer.ask(index, case.question)
        ranked = ranked_documents(index, composer, case.question) if case.on_topic else []
        rows.append((case, answer, ranked))
    clean_ranked = {c.clean: ranked_documents(index, composer, c.clean) for c in cases if c.part == "typo" and c.clean}
    clean_ranked.update({c.question: r for c, _, r in rows if c.part == "typo" and not c.clean})
    subsets = [_part(f"{part} {split}", [r for r in rows if r[0].part == part and r[0].split == split],
                     clean_ranked if part == "typo" else None)
               for part in ("near_miss", "typo") for split in ("tune", "holdout")
               if any(c.part == part and c.split == split for c in cases)]
    latencies = np.array([a.elapsed_ms for _, a, _ in rows] or [0.0])
    parts = [_part("tune", [r for r in rows if r[0].split == "tune"]),
             _part("holdout", [r for r in rows if r[0].split == "holdout"]), _part("all", rows)]
    return QuestionReport(
        parts=parts, subsets=subsets,
        p50_ms=round(float(np.percentile(latencies, 50)), 2), p95_ms=round(float(np.percentile(latencies, 95)), 2),
        misses=[c.question for c, _, r in rows if c.on_topic and not set(r[:3]) & set(c.expected)],
        wrongly_answered=[c.question for c, a, _ in rows if not c.on_topic and a.answered],
        wrongly_declined=[c.question for c, a, _ in rows if c.on_topic and not a.answered],
    )


def subset_line(part: PartReport) -> str:
    """One printed line for a near-miss or typo part."""
    if part.on_topic == 0:
        return f"{part.name:17} off-topic {part.off_topic:3}  declined {part.off_topic_declined:.3f}"
    clean = f" (spelled right {part.clean_hit_at_3:.3f})" if part.clean_hit_at_3 is not None else ""
    return (f"{part.name:17} on-topic {part.on_topic:3}  hit@3 {part.hit_at_3:.3f}{clean}  "
            f"wrongly declined {part.on_topic_declined:.3f}")


class LeadCase(BaseModel):
    """A question and the leads that answer it (tests/data/leads.jsonl).

    Each entry of `good_leads` is either "doc:ID", accepting that document's summary or any sentence
    quoted from its text, or a phrase that an acceptable lead contains (case ignored)."""

    question: str
    good_leads: list[str]
    split: Literal["tune", "holdout"] = "tune"


def load_leads(path: Path) -> list[LeadCase]:
    try:
        return [LeadCase.model_validate(json.loads(line))
                for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (json.JSONDecodeError, ValidationError) as exc:
        raise HingeError(f"{path}: not a lead case: {exc}") from exc


def lead_answers(index: SearchIndex, case: LeadCase, lead: str) -> bool:
    """Whether `lead` is one the case accepts."""
    flat = " ".join(lead.split()).lower()
    for good in case.good_leads:
        if good.startswith("doc:"):
            doc = index.documents.get(good[4:])
            if doc is not None and (flat == " ".join(doc.summary.split()).lower()
                                    or flat in " ".join(doc.body.split()).lower()):
                return True
        elif " ".join(good.split()).lower() in flat:
            return True
    return False


def lead_share(index: SearchIndex, composer: AnswerComposer, cases: Sequence[LeadCase]) -> tuple[float, list[str]]:
    """The share of answered questions whose lead answers them, and the questions whose lead does not
    (a declined question counts as a bad lead)."""
    wrong = []
    for case in cases:
        answer = composer.ask(index, case.question)
        if not answer.answered or not lead_answers(index, case, answer.lead):
            wrong.append(case.question)
    return _share([c.question not in wrong for c in cases]), wrong
