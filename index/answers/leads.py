"""The lead: the first line a rider reads, chosen to answer the question asked.

The candidates are the summary of every cited document and every sentence of the quoted excerpts; the one
nearest the question leads. A summary is scored by the mean of two cosines with the question, its
document's own question (or title) and the summary itself, so a summary written for another question
loses to a sentence that answers this one. A video's summary describes the video, so it competes only when the
question asks for a video (the composer leaves it out otherwise). Sentence vectors come from `SentenceVectors`,
computed once per sentence of the library, and document vectors from the composer's `LibraryAids`, computed once
per index: choosing a lead costs no model call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

import numpy as np

from index.answers.excerpts import whole_sentences
from index.answers.models import Citation
from index.retrieval.embedding import Embedder, Vectors
from index.retrieval.search import SearchIndex


@dataclass(frozen=True)
class LeadPolicy:
    """How summaries and sentences compete for the lead.

    Chosen on the tune part of tests/data/leads.jsonl (`python bench/answers.py` prints the shares): the
    summary of the top document only when its own question is near the rider's (the rule before) led
    0.700 of the tune part; every cited summary and sentence on equal terms, 0.700; a summary scored by its
    own cosine alone, at most 0.700 whatever the bonuses; these bonuses, 0.867, on a plateau (summary bonus
    0.1-0.125 with top bonus 0.05; 0.125-0.15 with 0.075).
    """

    # A summary is the document's answer in one or two sentences: it leads when about as near as a sentence.
    summary_bonus: float = 0.1
    # The top citation is the search's best evidence: its summary and sentences get a small head start.
    top_bonus: float = 0.05


@dataclass(frozen=True)
class DocumentLead:
    """A cited document's summary, with the vectors of its own question (or title) and of the summary."""

    summary: str
    heading: Vectors
    vector: Vectors


class SentenceVectors:
    """Vectors of quoted sentences, by model and text. One store serves every index and composer of the process
    (`shared`), so a reindex, or a second bot in the same process, embeds only sentences it has not seen;
    `retain` (the last warm-up step) drops those no current passage holds."""

    _shared: ClassVar[SentenceVectors | None] = None
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        self._vectors: dict[tuple[str, str], Vectors] = {}
        self._lock = threading.Lock()

    @classmethod
    def shared(cls) -> SentenceVectors:
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def get(self, embedder: Embedder, sentences: Sequence[str]) -> Vectors:
        model = embedder.model_id
        unique = list(dict.fromkeys(sentences))
        with self._lock:
            found = {s: self._vectors[(model, s)] for s in unique if (model, s) in self._vectors}
        missing = [s for s in unique if s not in found]
        if missing:
            # Embedded outside the lock: two threads may embed the same new sentence, never block each other.
            fresh = {s: np.asarray(v, dtype=np.float32) for s, v in zip(missing, embedder.encode(missing), strict=True)}
            found.update(fresh)
            with self._lock:
                self._vectors.update(((model, s), v) for s, v in fresh.items())
        return np.stack([found[s] for s in sentences])

    def warm_steps(self, index: SearchIndex, batch: int = 256) -> Iterator[Callable[[], object]]:
        """Steps that embed every sentence the index could quote, a batch each, then forget the rest: run one
        after another, they can be stopped between any two."""
        sentences = list(dict.fromkeys(library_sentences(index)))
        for start in range(0, len(sentences), batch):
            yield partial(self.get, index.embedder, sentences[start:start + batch])
        yield partial(self.retain, index.embedder.model_id, sentences)

    def retain(self, model_id: str, sentences: Sequence[str]) -> None:
        keep = {(model_id, s) for s in sentences}
        with self._lock:
            self._vectors = {k: v for k, v in self._vectors.items() if k in keep}


def library_sentences(index: SearchIndex) -> Iterable[str]:
    for chunk in index.chunks:
        yield from whole_sentences(chunk.text)


def choose_lead(vector: Vectors, citations: Sequence[Citation], documents: Sequence[DocumentLead | None],
                sentence_vectors: SentenceVectors, embedder: Embedder, policy: LeadPolicy | None = None) -> str:
    """The candidate nearest the question (`vector`): a cited document's summary (`documents`, one per
    citation, None for a document without one) or a sentence of the quoted excerpts."""
    policy = policy or LeadPolicy()
    best, lead = -np.inf, ""
    for n, document in enumerate(documents):
        if document is not None:
            score = (float(document.heading @ vector) + float(document.vector @ vector)) / 2 + policy.summary_bonus
            score += policy.top_bonus if n == 0 else 0.0
            if score > best:
                best, lead = score, document.summary
    quoted = [(n, s) for n, c in enumerate(citations) for s in whole_sentences(c.excerpt)]
    if quoted:
        scores = sentence_vectors.get(embedder, [s for _, s in quoted]) @ vector
        for (n, sentence), score in zip(quoted, scores, strict=True):
            score = float(score) + (policy.top_bonus if n == 0 else 0.0)
            if score > best:
                best, lead = score, sentence
    return lead or citations[0].excerpt
