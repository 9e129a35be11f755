"""The lead: the first line a rider reads, chosen to answer the question asked.

The top document's summary leads only when that document's own question (or title) is near the
rider's; otherwise the quoted sentence nearest the question leads. Sentence vectors come from
`SentenceVectors`, computed once per sentence of the library, so choosing a lead costs no model call.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import numpy as np

from index.answers.excerpts import whole_sentences
from index.answers.models import Citation
from index.retrieval.embedding import Embedder, Vectors
from index.retrieval.search import SearchIndex

# The top document's summary leads only when its own question (or title) is this near the rider's
# (cosine); otherwise the quoted sentence nearest the question leads. Chosen on tests/data/leads.jsonl.
LEAD_SIMILARITY = 0.6


class SentenceVectors:
    """Vectors of quoted sentences, by model and text. Shared by the indexes a composer serves, so a
    reindex embeds only the sentences it adds; `retain` drops those no current passage holds."""

    def __init__(self) -> None:
        self._vectors: dict[tuple[str, str], Vectors] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._vectors)

    def get(self, embedder: Embedder, sentences: Sequence[str]) -> Vectors:
        model = embedder.model_id
        with self._lock:
            missing = [s for s in dict.fromkeys(sentences) if (model, s) not in self._vectors]
        if missing:
            # Embedded outside the lock: two threads may embed the same new sentence, never block each other.
            vectors = embedder.encode(missing)
            with self._lock:
                self._vectors.update(((model, s), np.asarray(v, dtype=np.float32))
                                     for s, v in zip(missing, vectors, strict=True))
        with self._lock:
            return np.stack([self._vectors[(model, s)] for s in sentences])

    def warm(self, index: SearchIndex) -> None:
        """Embed every sentence the index could quote, in one batch, and forget the rest."""
        sentences = list(dict.fromkeys(library_sentences(index)))
        if sentences:
            self.get(index.embedder, sentences)
        keep = {(index.embedder.model_id, s) for s in sentences}
        with self._lock:
            self._vectors = {k: v for k, v in self._vectors.items() if k in keep}


def library_sentences(index: SearchIndex) -> Iterable[str]:
    for chunk in index.chunks:
        yield from whole_sentences(chunk.text)


def choose_lead(vector: Vectors, citations: Sequence[Citation], summary: str | None, heading: Vectors | None,
                sentence_vectors: SentenceVectors, embedder: Embedder,
                lead_similarity: float | None = LEAD_SIMILARITY) -> str:
    """The top document's `summary` when its own question (`heading`) is the rider's, otherwise the sentence
    of the quoted excerpts nearest the question."""
    if summary:
        if lead_similarity is None:
            return summary
        if heading is not None and float(heading @ vector) >= lead_similarity:
            return summary
    sentences = [s for c in citations for s in whole_sentences(c.excerpt)]
    if not sentences:
        return citations[0].excerpt
    vectors = sentence_vectors.get(embedder, sentences)
    return sentences[int(np.argmax(vectors @ vector))]
