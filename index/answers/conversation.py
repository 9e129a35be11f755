"""Follow-up questions: what a conversation already said, as weighted context, with no language model.

A follow-up that points back ("is there a video of that?", "and for a 12 year old?") is searched with its own
vector moved towards the passages the previous answer quoted, and with the earlier questions' words added to
the lexical query at a lower weight. The previous answer stands for the topic: it already carries the turns
before it, and after a change of topic it is about the new one. A question that does not point back and that
the library answers confidently on its own (or declines on its own) is searched alone, so a change of topic is
not dragged back to the old one and an off-topic question is never laundered by what came before. A question
that asks for an amount ("how many sets", "how long per side") is an amount of something: asked after others
and answered alone, it is searched with its context even with no word pointing back; declined alone, only when
its other words are in the documents the conversation last cited. A follow-up that names two English words the
library never uses is about them, whatever its pronouns point at, and is judged alone. The rules and weights were
chosen on the tune part of tests/data/conversations.jsonl (bench/conversations.py --grid).
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


# Questions that ask for an amount: "how many reps", "how long per side", "how heavy should i go". English, not
# fitted to the conversation set.
_AMOUNT = re.compile(r"\bhow (many|much|long|often|heavy|far|hard|fast|slow|close|deep|low|high|wide)\b", re.I)


def asks_amount(question: str) -> bool:
    """Whether a question asks how many, how long, how heavy... of something."""
    return bool(_AMOUNT.search(question))


# Words that carry no topic, beyond the search's own stopwords: "how many swings per set" is about swings and sets.
_FUNCTION_WORDS = re.compile(r"\b(per|each|every|should|would|could|can|do|does|did|go|get|i|im|you|we|me|my|your)\b",
                             re.I)


def without_amount(question: str) -> str:
    """The question's words other than the amount it asks for and words with no topic ("how many swings per
    set" -> "swings set")."""
    return _FUNCTION_WORDS.sub(" ", _AMOUNT.sub(" ", question))


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
    # Chosen on the tune part of tests/data/conversations.jsonl; the held-out part is only reported. Follow-up
    # hit@3 / topic-change hit@3 / off-topic questions asked as a follow-up declined, tune part:
    # - The previous method (the earlier questions' vectors added at 0.6, halving per turn back; a question far
    #   from the last one, cosine < 0.35, and confident alone searched alone): 0.918 / 0.952 / 0.820 (61
    #   follow-ups, before 12 tune conversations were added).
    # - On that part: a question that does not refer back and is declined alone stays declined: off-topic
    #   0.820 -> 0.951. The previous answer's passages as the context vector instead of the earlier questions:
    #   mean over 144 other settings 0.961 against 0.931, no topic change lost in any of them, and no earlier
    #   turn embedded again; both together at 0.6 each lost topic changes (down to 0.81). A boost for the
    #   previous answer's documents (0.25-0.75): no better, topic changes down to 0.857 in some settings. The
    #   follow-up's own ranking fused in (0.5): 0.869. The old question-to-question cosine test changed nothing
    #   (0.25-0.6) and is gone.
    # - With the 12 conversations added (78 follow-ups, 21 topic changes), shipped 0.962 / 0.952 / 0.984, one
    #   setting changed at a time (bench/conversations.py --grid): passage_weight 0.3 0.821, 0.45 0.923, 0.8
    #   0.962, 1.0 0.949 (0.6 over 0.8: mean topic changes over the other settings 0.950 against 0.921);
    #   own_repeat 1 0.949; standalone_confidence 0.7 0.936, 0.9 and never 0.962 (on the first part 0.9 lost a
    #   topic change); off_topic_margin 0.05 0.923 / off-topic 1.000, 0.08 0.936 / 1.000, 0.15 0.962 / 0.967,
    #   none 0.962 / 0.951; follow_up_threshold 0.4-0.6 the same. The earlier questions' words in the lexical
    #   query: none 0.918, the last one 0.984, the last three 0.984 (first part).
    # - 26 tune conversations added in riders' words (c101-c126: amounts and details with no word pointing back,
    #   "how long per side", "how many sets", and wrong middle answers), 118 follow-ups and 23 topic changes: the
    #   method above 0.805 / 0.957 / 0.984. An amount question ("how many", "how long", "how heavy"...) that does
    #   not refer back and that the library answers alone searched with its context whatever its confidence
    #   (amounts_follow): 0.839 / 0.957 / 0.984. Also searching the ones declined alone with their context when
    #   the library knows all their words: 0.890 / 0.957 / 0.984, but it launders short off-topic amount
    #   questions: 30 more of 230 answered (46 such questions written for the check, each after 5 tune first
    #   turns: "how many laps", "how much does a coach cost"), and the held-out off-topic share fell 0.933 ->
    #   0.900 (held-out follow-ups 0.919); dropped. The passages' weight for amount questions (0.8-1.2),
    #   own_repeat 1 for them: 0 to +2 follow-ups by setting, no steady gain. standalone_confidence never (1.01)
    #   on top: 0.915 but topic changes down to 0.870-0.913 at neighbouring settings. A question-specificity
    #   test (rarest word's share of passages) and the follow-up's cosine to the previous passages did not
    #   separate vague follow-ups from off-topic questions.
    # - Amount questions declined alone searched with their context when every other word of theirs is in the
    #   documents the conversation last cited (amounts_in_topic_follow): 0.864 / 0.957 / 0.984 (from 0.839), and 31
    #   of the 230 off-topic amount checks answered against 30 ("how long is the drive" after a swing answer that
    #   speaks of hip drive). The same test over the quoted passages only: 0.847. With words that carry no topic
    #   ("per", "should", "go"...) left out of the test as the search's stopwords are: 0.890 / 0.957 / 0.984, the
    #   same 31 of 230 off-topic checks answered, and held-out follow-ups 0.892 -> 0.919 (read after the choice).
    # - With the bundled pair (MiniLM + bge-small) the settings above gave 0.839 / 0.957 / 0.961 (tune, 76 off-topic
    #   questions now). Its confidences run higher, so a follow-up answered alone at 0.8 was often still vague:
    #   standalone_confidence 0.9 0.881, 0.95 0.907, never (1.01) 0.907 but topic changes 0.913 beside it; with
    #   own_repeat 1 at 0.95: passage_weight 0.6 0.907 / 1.000, 0.8 0.915 / 1.000, 1.0 0.907 / 0.957. Held-out:
    #   0.892 at 0.6 and 0.838 at 0.8. The tune part's one follow-up between them is within its noise, so the
    #   shipped 0.6 stays; the held-out part was read for both, which makes its 0.892 a less clean figure.
    # - After the decline policy was refitted with the everyday topics (bar 0.55), the settings above gave 0.881 /
    #   1.000 / 0.943: more follow-ups were declined alone and stayed declined. A bar of their own for that
    #   (declined_alone_below) against follow_up_threshold: None 0.898 / 0.943 at 0.4 (0.881 at 0.5-0.6); 0.3
    #   0.924 / 0.868; 0.4 0.915 / 0.915; 0.45 and 0.5 0.907 / 0.934 at 0.25-0.4 (0.890 at 0.5-0.6). 0.45 with
    #   0.4 keeps the off-topic share where it was and loses one follow-up of the 0.915 before.
    # - Off-topic questions whose pronouns point inside themselves ("they keep flopping over", "both sides") were
    #   searched with the hinge context and answered: 7 of the 106 tune ones. Searching alone a follow-up that
    #   names English words the library never uses (self_contained_unknown_words), tune: none 0.907 / 1.000 /
    #   0.934, 1 word 0.873 / 0.957 / 0.981, 2 words 0.907 / 1.000 / 0.972, 3 words 0.907 / 1.000 / 0.943.
    # Weight of the centre of the passages the previous answer quoted, added to the follow-up's own vector
    # (weight 1, so the follow-up's own words dominate).
    passage_weight: float = 0.6
    # How many times the follow-up's own words are repeated in the lexical query, against once for the
    # earlier questions' words: BM25 sums a repeated term, so this is its weight.
    own_repeat: int = 1
    # A follow-up that does not refer back and that the library answers this confidently on its own is a new
    # topic: it is searched alone. One the library declines on its own is declined.
    standalone_confidence: float = 0.95
    # A follow-up searched with its context answers at this confidence (the decline policy's own bar is for a
    # question with nothing before it: "and for a 12 year old?" is vague alone but clear after a hinge question).
    follow_up_threshold: float = 0.4
    # A follow-up that does not refer back and that the library answers alone below this confidence stays
    # declined (None: the decline policy's own bar, which is tuned for questions with nothing before them).
    declined_alone_below: float | None = 0.45
    # A follow-up whose own words are nearer one of the topics the library does not cover (index/answers/data/
    # off_topic.txt) than to its best passage, by more than this, is declined: context never launders an
    # off-topic question ("door hinge squeaks, how do I fix it?" after a hinge question).
    off_topic_margin: float = 0.1
    # A follow-up that asks for an amount and does not refer back, and that the library answers alone, is
    # searched with its context however confident that answer: alone, "how many sets" is about sets of anything.
    amounts_follow: bool = True
    # One the library declines alone is searched with its context only when each of its other words is in the
    # documents the conversation last cited ("how many days a week" after a core-training answer that speaks of
    # days a week); otherwise it stays declined, since a short amount question is as vague off topic as on it
    # ("how many laps is a pro moto" after a hinge answer).
    amounts_in_topic_follow: bool = True
    # A follow-up naming this many English words the library never uses is about them, whatever its pronouns
    # point at ("how do i get my tomato plants to stand up, they keep flopping over" after a hinge answer): it is
    # searched alone, as a single question. None: never.
    self_contained_unknown_words: int | None = 2

    def vector(self, own: Vectors, passages: Vectors) -> Vectors:
        """The follow-up's vector moved towards the centre of the passages the conversation last quoted."""
        mixed = own.astype(np.float32).copy()
        if len(passages):
            centre = passages.mean(axis=0)
            mixed += self.passage_weight * centre / max(float(np.linalg.norm(centre)), 1e-9)
        return (mixed / max(float(np.linalg.norm(mixed)), 1e-9)).astype(np.float32)

    def lexical(self, own: str, earlier: Sequence[str]) -> str:
        return " ".join([own] * self.own_repeat + list(earlier[-MAX_CONTEXT_TURNS:]))

    def self_contained(self, unknown_words: int) -> bool:
        """Whether a follow-up with so many English words the library never uses stands on its own words."""
        return self.self_contained_unknown_words is not None and unknown_words >= self.self_contained_unknown_words

    def stands_alone(self, question: str, confidence_alone: float, threshold: float,
                     words_in_topic: bool = False, unknown_words: int = 0) -> bool:
        """Whether a question asked after others is answered as if nothing came before it (`confidence_alone`:
        its answer's confidence searched alone; `threshold`: the bar a single question must clear;
        `words_in_topic`: every word of it besides the amount is in the documents the conversation last cited;
        `unknown_words`: how many English words of it the library never uses)."""
        if self.self_contained(unknown_words):
            return True
        if refers_back(question):
            return False
        if self.amounts_follow and asks_amount(question) and (
                confidence_alone >= threshold or (self.amounts_in_topic_follow and words_in_topic)):
            return False
        return confidence_alone < threshold or confidence_alone >= self.standalone_confidence
