"""Follow-up questions: what a conversation already said, as weighted context, with no language model.

A follow-up that points back ("is there a video of that?", "and for a 12 year old?") is searched with its own
vector moved towards the passages the previous answer quoted, and with the earlier questions' words added to
the lexical query at a lower weight. The previous answer stands for the topic: it already carries the turns
before it, and after a change of topic it is about the new one. A question that does not point back and that
the library answers confidently on its own (or declines on its own) is searched alone, so a change of topic is
not dragged back to the old one and an off-topic question is never laundered by what came before. The rules
and weights were chosen on the tune part of tests/data/conversations.jsonl (bench/conversations.py --grid).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, Field

from index.retrieval.embedding import Vectors

MAX_CONTEXT_TURNS = 3

# Words that point back at what was said before: pronouns and demonstratives ("how long should that take"),
# ellipsis ("the other one", "me too", "instead"), and openings that continue a thought ("and for a kid?",
# "what about...", "what if..."). English, not fitted to the conversation set.
_REFERS_BACK = re.compile(
    r"\b(it|its|that|this|those|these|them|they|their|theyre|he|she|him|her|his|there|then|one|ones|same|either"
    r"|both|instead|too|also|tho|though|else|other|another|again)\b"
    r"|^\W*(and|so|but|or|what about|how about|what if)\b", re.I)
# Phrases whose pronoun points inside the question itself ("are fork springs worth it?").
_IDIOMS = re.compile(r"\bworth it\b", re.I)


def refers_back(question: str) -> bool:
    """Whether a question points back at the conversation rather than standing on its own words."""
    return bool(_REFERS_BACK.search(_IDIOMS.sub(" ", question)))


class Turn(BaseModel):
    """One earlier question of a conversation and what its answer already showed the rider."""

    question: str
    passages: list[str] = Field(default_factory=list, description="ids of the passages quoted")
    videos: list[str] = Field(default_factory=list, description="urls of the videos suggested")
    drill: str | None = Field(default=None, description="id of the drill suggested")


@dataclass(frozen=True)
class ContextPolicy:
    # Chosen on the tune part of tests/data/conversations.jsonl (bench/conversations.py --grid; the held-out
    # part is only reported). Follow-up hit@3 / topic-change hit@3 / off-topic follow-ups declined, tune:
    # - the previous method (earlier questions' vectors mixed in at 0.6, decaying by 0.5 a turn; stand-alone
    #   when a question is far from the last one, cosine < 0.35, and confident alone): 0.918/0.952/0.820.
    # - a question that does not refer back and is declined alone stays declined: off-topic 0.820 -> 0.951.
    # - the previous answer's passages as the context vector instead of the earlier questions (mean over the
    #   other settings 0.961 against 0.931, and no topic change lost in any setting; no earlier turn is
    #   embedded again); passage_weight 0.3 0.852, 0.45 0.951, 0.6 0.984, 0.8 0.984, 1.0 0.967 (own_repeat 2).
    # - own_repeat 1 0.967, 2 0.984 (passage_weight 0.8); earlier questions in the lexical query: none 0.918,
    #   the last one 0.984, the last three 0.984.
    # - a boost for the previous answer's documents: 0.25-0.75 no better, topic changes down to 0.857.
    # - fusing the follow-up's own ranking in (0.5): 0.869. The question-to-question cosine of the old
    #   stand-alone test changed nothing (0.25-0.6), so it is gone.
    # - standalone_confidence 0.7 0.967/0.952, 0.8 0.984/0.952, 0.9 0.984/0.905.
    # - off_topic_margin 0.05 0.918/0.951 off-topic 1.0, 0.08 0.934, 0.1 0.984/0.984, 0.15 0.984/0.967,
    #   none 0.984/0.918. follow_up_threshold 0.4-0.6 the same.
    passage_weight: float = 0.8
    # How many times the follow-up's own words are repeated in the lexical query, against once for the
    # earlier questions' words: BM25 sums a repeated term, so this is its weight.
    own_repeat: int = 2
    # A follow-up that does not refer back and that the library answers this confidently on its own is a new
    # topic: it is searched alone. One the library declines on its own is declined.
    standalone_confidence: float = 0.8
    # A follow-up searched with its context answers at this confidence (the decline policy's own bar is for a
    # question with nothing before it: "and for a 12 year old?" is vague alone but clear after a hinge question).
    follow_up_threshold: float = 0.6
    # A follow-up whose own words are nearer one of the topics the library does not cover (index/answers/data/
    # off_topic.txt) than to its best passage, by more than this, is declined: context never launders an
    # off-topic question ("door hinge squeaks, how do I fix it?" after a hinge question).
    off_topic_margin: float = 0.1

    def vector(self, own: Vectors, passages: Vectors) -> Vectors:
        """The follow-up's vector moved towards the centre of the passages the conversation last quoted."""
        mixed = own.astype(np.float32).copy()
        if len(passages):
            centre = passages.mean(axis=0)
            mixed += self.passage_weight * centre / max(float(np.linalg.norm(centre)), 1e-9)
        return (mixed / max(float(np.linalg.norm(mixed)), 1e-9)).astype(np.float32)

    def lexical(self, own: str, earlier: Sequence[str]) -> str:
        return " ".join([own] * self.own_repeat + list(earlier[-MAX_CONTEXT_TURNS:]))

    def stands_alone(self, question: str, confidence_alone: float, threshold: float) -> bool:
        """Whether a question asked after others is answered as if nothing came before it (`confidence_alone`:
        its answer's confidence searched alone; `threshold`: the bar a single question must clear)."""
        if refers_back(question):
            return False
        return confidence_alone < threshold or confidence_alone >= self.standalone_confidence
