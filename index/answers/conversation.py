"""Follow-up questions: a conversation's earlier questions as weighted context, with no language model.

A follow-up ("and for a 12 year old?") is searched with a query vector that leans towards the earlier
questions (each turn further back counts less) and with the earlier questions' words added, at a lower
weight, to the lexical query. A question that stands on its own is searched alone, so a change of topic
is not dragged back to the old one. The weights and the stand-alone test were chosen on the tune part of
tests/data/conversations.jsonl (bench/conversations.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, Field

from index.retrieval.embedding import Vectors

MAX_CONTEXT_TURNS = 3


class Turn(BaseModel):
    """One earlier question of a conversation and what its answer already showed the rider."""

    question: str
    passages: list[str] = Field(default_factory=list, description="ids of the passages quoted")
    videos: list[str] = Field(default_factory=list, description="urls of the videos suggested")
    drill: str | None = Field(default=None, description="id of the drill suggested")


@dataclass(frozen=True)
class ContextPolicy:
    # Weight of the previous question's vector added to the follow-up's own; each turn further back is
    # multiplied by `decay`. The follow-up's own vector keeps weight 1, so its words dominate.
    # Chosen on the tune part of tests/data/conversations.jsonl (bench/conversations.py --grid), follow-up
    # hit@3 / topic-change hit@3: weight 0.6 0.932/0.933, 1.0 0.932/0.933, 1.5 0.915/0.933 (own_repeat 1,
    # standalone_similarity 0.35); own_repeat 2 0.898/0.933; standalone_similarity 0 (always mix) 0.949/0.867,
    # below the 0.933 those topic changes get asked alone, so the stand-alone test stays.
    weight: float = 0.6
    decay: float = 0.5
    # How many times the follow-up's own words are repeated in the lexical query, against once for the
    # earlier questions' words: BM25 sums a repeated term, so this is its weight.
    own_repeat: int = 1
    # A follow-up whose own vector is this far from the conversation so far, and which the library answers
    # confidently on its own, is a new topic: it is searched alone.
    standalone_similarity: float = 0.35
    standalone_confidence: float = 0.8
    # A follow-up searched with its context answers at this confidence (the decline policy's own bar is for a
    # question with nothing before it: "and for a 12 year old?" is vague alone but clear after a hinge question).
    follow_up_threshold: float = 0.6
    # A follow-up whose own words are nearer one of the topics the library does not cover (index/answers/data/
    # off_topic.txt) than to its best passage, by more than this, is declined: context never launders an
    # off-topic question ("door hinge squeaks" after a hinge question).
    off_topic_margin: float = 0.05

    def vector(self, own: Vectors, earlier: Vectors) -> Vectors:
        """The follow-up's vector moved towards the earlier questions (`earlier`: oldest first)."""
        mixed = own.astype(np.float32).copy()
        for distance, row in enumerate(earlier[::-1][:MAX_CONTEXT_TURNS]):
            mixed += self.weight * self.decay ** distance * row
        return (mixed / max(float(np.linalg.norm(mixed)), 1e-9)).astype(np.float32)

    def lexical(self, own: str, earlier: Sequence[str]) -> str:
        return " ".join([own] * self.own_repeat + list(earlier[-MAX_CONTEXT_TURNS:]))

    def stands_alone(self, own: Vectors, earlier: Vectors, confidence_alone: float) -> bool:
        if not len(earlier):
            return True
        closeness = float(earlier[-1] @ own)
        return closeness < self.standalone_similarity and confidence_alone >= self.standalone_confidence
