"""The loaded index and its search: dense + lexical candidates, fused, with dense feedback."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from index.chunking import Chunk
from index.documents import Document
from index.embedding import Embedder, Vectors
from index.errors import IndexLoadError
from index.fusion import Floats, FusionSettings, Ids, candidate_features, fuse, learned_scores, ranks, top_ids, zscore
from index.manifest import Manifest
from index.windows import group_rows, max_per_chunk, window_starts

if TYPE_CHECKING:
    from index.dense import DenseIndex
    from index.lexical import LexicalIndex


class Hit(BaseModel):
    model_config = ConfigDict(frozen=True)

    chunk: Chunk
    score: float
    dense_score: float
    lexical_score: float
    dense_rank: int | None
    lexical_rank: int | None


@dataclass(frozen=True)
class _Scored:
    ids: Ids
    fused: Floats
    dense: Floats
    lexical: Floats
    dense_rank: dict[int, int]
    lexical_rank: dict[int, int]


class SentenceVectors:
    """The embedded sentences of every passage, in passage order: the learned combiner's sentence
    feature and the reranking step score passages by their closest sentence."""

    def __init__(self, vectors: Vectors, counts: npt.NDArray[np.int32]) -> None:
        self.vectors = vectors
        self.counts = counts.astype(np.int64)
        self.starts = window_starts(self.counts)

    def best_match(self, ids: Ids, query: Vectors) -> Floats:
        """For each passage in `ids`, the similarity of its sentence closest to the query."""
        rows, lengths = group_rows(self.starts, self.counts, ids)
        # einsum, not a BLAS product: a threaded BLAS call here leaves spinning threads that slow the
        # next query embedding (torch) about twofold on 2 cores.
        return max_per_chunk(np.einsum("ij,j->i", self.vectors[rows], query), lengths)


class SearchIndex:
    """One immutable, loaded index. Safe to search from several threads at once."""

    def __init__(self, manifest: Manifest, documents: Sequence[Document], chunks: Sequence[Chunk],
                 dense: DenseIndex, lexical: LexicalIndex, embedder: Embedder,
                 fusion: FusionSettings | None = None, sentences: SentenceVectors | None = None) -> None:
        self.manifest = manifest
        self.documents = {d.id: d for d in documents}
        self.chunks = list(chunks)
        self.dense = dense
        self.lexical = lexical
        self.embedder = embedder
        self.fusion = fusion or manifest.fusion
        self.sentences = sentences
        doc_numbers: dict[str, int] = {}
        self.chunk_docs = np.array([doc_numbers.setdefault(c.doc_id, len(doc_numbers)) for c in self.chunks],
                                   dtype=np.int64)
        # Chunks are stored in document order, so a document's first passage is where its number starts.
        self.first_chunks = np.r_[True, self.chunk_docs[1:] != self.chunk_docs[:-1]] if self.chunks else \
            np.zeros(0, dtype=bool)
        # 0: a passage every server may see; otherwise the one server whose team wrote it.
        self.chunk_guilds = np.array([self.documents[c.doc_id].guild_id or 0 if c.doc_id in self.documents else 0
                                      for c in self.chunks], dtype=np.int64)
        self.scoped = bool(self.chunk_guilds.any())

    def visible(self, doc_id: str, guild_id: int | None) -> bool:
        """Whether a question asked in `guild_id` (None: a DM or the terminal) may cite this document."""
        doc = self.documents.get(doc_id)
        return doc is not None and (doc.guild_id is None or doc.guild_id == guild_id)

    def __len__(self) -> int:
        return len(self.chunks)

    def embed_query(self, text: str) -> Vectors:
        return np.asarray(self.embedder.encode([text])[0], dtype=np.float32)

    def search(self, text: str, k: int = 5, fusion: FusionSettings | None = None,
               guild_id: int | None = None) -> list[Hit]:
        settings = fusion or self.fusion
        vector = self.embed_query(text) if settings.mode != "lexical" else None
        return self.search_with_vector(text, vector, k, settings, guild_id)

    def search_with_vector(self, text: str, vector: Vectors | None, k: int,
                           fusion: FusionSettings | None = None, guild_id: int | None = None) -> list[Hit]:
        """The best `k` passages; a team's own documents only for a question asked in that team's server."""
        settings = fusion or self.fusion
        if not self.chunks:
            return []
        scored = self._score(text, vector, settings)
        if self.scoped:
            owners = self.chunk_guilds[scored.ids]
            keep = np.flatnonzero((owners == 0) | (owners == (guild_id or -1)))
            scored = _Scored(scored.ids[keep], scored.fused[keep], scored.dense[keep], scored.lexical[keep],
                             scored.dense_rank, scored.lexical_rank)
        if vector is not None and self.sentences is not None and settings.sentence_weight > 0:
            scored = self._rerank(scored, vector, settings)
        order = np.argsort(-scored.fused, kind="stable")[:k]
        return [
            Hit(
                chunk=self.chunks[int(scored.ids[i])],
                score=float(scored.fused[i]),
                dense_score=float(scored.dense[i]),
                lexical_score=float(scored.lexical[i]),
                dense_rank=scored.dense_rank.get(int(scored.ids[i])),
                lexical_rank=scored.lexical_rank.get(int(scored.ids[i])),
            )
            for i in order
        ]

    def candidates(self, text: str, vector: Vectors, settings: FusionSettings) -> tuple[Ids, npt.NDArray[np.float32],
                                                                                        Floats]:
        """(pool ids, LEARNED_FEATURES rows, blended scores) of one query: what the combiner sees.

        bench/retrieval.py --refit-fusion fits the combiner's weights on exactly these rows.
        """
        scored, features = self._pool(text, vector, settings.model_copy(update={"combiner": "learned"}))
        assert features is not None
        return scored.ids, features, scored.fused

    def _score(self, text: str, vector: Vectors | None, settings: FusionSettings) -> _Scored:
        scored, features = self._pool(text, vector, settings)
        if features is None:
            return scored
        return _Scored(scored.ids, learned_scores(features), scored.dense, scored.lexical, scored.dense_rank,
                       scored.lexical_rank)

    def _pool(self, text: str, vector: Vectors | None,
              settings: FusionSettings) -> tuple[_Scored, npt.NDArray[np.float32] | None]:
        n = settings.candidates
        lexical_all = self.lexical.scores(text) if settings.mode != "dense" else None
        lexical_ids = top_ids(lexical_all, n) if lexical_all is not None else np.zeros(0, np.int64)
        if vector is None or settings.mode == "lexical":
            assert lexical_all is not None
            scores = lexical_all[lexical_ids]
            return _Scored(lexical_ids, scores, np.zeros_like(scores), scores, {}, ranks(lexical_ids)), None

        query = vector
        rounds = 2 if settings.feedback_docs and settings.feedback_weight > 0 else 1
        scored: _Scored | None = None
        dense_ids = np.zeros(0, np.int64)
        for round_no in range(rounds):
            if round_no:
                assert scored is not None
                # Pseudo-relevance feedback: move the query towards its best fused passages, which
                # pulls in passages that share their meaning but not the query's words.
                best = scored.ids[np.argsort(-scored.fused, kind="stable")[:settings.feedback_docs]]
                centroid = self.dense.chunk_vectors(best, vector, settings.window_feedback).mean(axis=0)
                query = vector + settings.feedback_weight * centroid
                query = (query / max(float(np.linalg.norm(query)), 1e-9)).astype(np.float32)
            dense_ids, dense_top = self.dense.top(query, n)
            if lexical_all is None:
                scored = _Scored(dense_ids, dense_top, dense_top, np.zeros_like(dense_top), ranks(dense_ids), {})
                continue
            union = np.unique(np.concatenate([dense_ids, lexical_ids]))
            dense = self.dense.scores_for(query, union)
            lexical = lexical_all[union]
            fused = fuse(dense, dense_top, lexical, lexical_all[lexical_ids], settings.dense_weight,
                         settings.reference)
            scored = _Scored(union, fused, dense, lexical, ranks(dense_ids), ranks(lexical_ids))
        assert scored is not None
        # Report the plain query's similarity: it is what calibrated decisions downstream use.
        plain = self.dense.scores_for(vector, scored.ids) if rounds == 2 else scored.dense
        if lexical_all is None or settings.combiner != "learned":
            return _Scored(scored.ids, scored.fused, plain, scored.lexical, scored.dense_rank,
                           scored.lexical_rank), None
        sentence = self.sentences.best_match(scored.ids, vector) if self.sentences is not None else \
            np.zeros(len(scored.ids), dtype=np.float32)
        features = candidate_features(scored.ids, scored.dense, scored.lexical, plain, dense_ids, lexical_ids,
                                      self.lexical.coverage(text, scored.ids), self.first_chunks[scored.ids],
                                      self.chunk_docs[scored.ids], scored.fused, sentence,
                                      self.lexical.pair_coverage(text, scored.ids))
        return _Scored(scored.ids, scored.fused, plain, scored.lexical, scored.dense_rank,
                       scored.lexical_rank), features

    def _rerank(self, scored: _Scored, vector: Vectors, settings: FusionSettings) -> _Scored:
        """Second scoring of the top passages: how well their best single sentence matches.

        A claim or a rider's question is usually answered by one sentence; a passage-level
        vector blurs it with its neighbours. Only the top `rerank_depth` are reordered, and
        they stay above the rest.
        """
        assert self.sentences is not None
        top = np.argsort(-scored.fused, kind="stable")[: settings.rerank_depth]
        if top.size < 2:
            return scored
        best = self.sentences.best_match(scored.ids[top], vector)
        w = settings.sentence_weight
        reranked = (1 - w) * zscore(scored.fused[top], scored.fused[top]) + w * zscore(best, best)
        fused = scored.fused.copy()
        rest = np.ones(len(fused), dtype=bool)
        rest[top] = False
        floor = float(fused[rest].max()) if rest.any() else 0.0
        # Keep the reranked block above everything else, preserving its new internal order.
        fused[top] = reranked - float(reranked.min()) + floor + 1e-3
        return _Scored(scored.ids, fused, scored.dense, scored.lexical, scored.dense_rank, scored.lexical_rank)


class IndexOwner:
    """Holds the index in use and swaps in a new one while searches continue.

    Readers take `current` once per question and keep that reference, so a swap never
    changes an index under a search in progress.
    """

    def __init__(self, index: SearchIndex | None = None) -> None:
        self._index = index
        self._lock = threading.Lock()

    @property
    def current(self) -> SearchIndex:
        index = self._index
        if index is None:
            raise IndexLoadError("no index is loaded yet")
        return index

    @property
    def loaded(self) -> bool:
        return self._index is not None

    def swap(self, index: SearchIndex) -> SearchIndex | None:
        with self._lock:
            previous, self._index = self._index, index
        return previous
