"""The loaded index and its search: dense + lexical candidates, fused, over the scope one server may cite.

A team's own documents (uploads, coach answers) belong to one server. A question asked there is searched in that
server's scope: an index of its own over the shipped documents plus that team's, with its own dense matrix, BM25
statistics (IDF, average length) and score pool. Masking one shared index after ranking would not do: another
team's passages would still move the pool's z-scores, the IDF, the speller and the declines.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict

from index.errors import IndexLoadError
from index.library.chunking import Chunk
from index.library.documents import Document
from index.retrieval.embedding import Embedder, Vectors
from index.retrieval.fusion import Floats, FusionSettings, Ids, fuse, ranks, top_ids
from index.retrieval.manifest import Manifest

if TYPE_CHECKING:
    from index.retrieval.dense import DenseIndex
    from index.retrieval.lexical import LexicalIndex


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


class SearchIndex:
    """One immutable, loaded index. Safe to search from several threads at once."""

    def __init__(self, manifest: Manifest, documents: Sequence[Document], chunks: Sequence[Chunk],
                 dense: DenseIndex, lexical: LexicalIndex, embedder: Embedder,
                 fusion: FusionSettings | None = None) -> None:
        self.manifest = manifest
        self.documents = {d.id: d for d in documents}
        self.chunks = list(chunks)
        self.dense = dense
        self.lexical = lexical
        self.embedder = embedder
        self.fusion = fusion or manifest.fusion
        # 0: a passage every server may see; otherwise the one server whose team wrote it.
        self.chunk_guilds = np.array([self.documents[c.doc_id].guild_id or 0 if c.doc_id in self.documents else 0
                                      for c in self.chunks], dtype=np.int64)
        self.guilds = frozenset(int(g) for g in np.unique(self.chunk_guilds) if g)
        # The index this one is a scope of (itself for a loaded index): scopes are always cut from the whole.
        self.whole: SearchIndex = self
        self._scopes: dict[int | None, SearchIndex] = {}
        self._scopes_lock = threading.Lock()

    def scoped(self, guild_id: int | None) -> SearchIndex:
        """The index a question asked in server `guild_id` is searched in (None: a DM or the terminal, the shipped
        documents only): built on first use (BM25 and faiss over the scope's passages, a fraction of a second),
        then kept for the life of this index. Every server without documents of its own shares one scope."""
        key = guild_id if guild_id in self.whole.guilds else None
        if self.whole is not self:
            return self.whole.scoped(key)
        with self._scopes_lock:
            scope = self._scopes.get(key)
            if scope is None:
                scope = self._scopes[key] = self._cut(key)
            return scope

    def _cut(self, guild_id: int | None) -> SearchIndex:
        from index.retrieval.dense import DenseIndex
        from index.retrieval.lexical import LexicalIndex

        rows = np.flatnonzero((self.chunk_guilds == 0) | (self.chunk_guilds == (guild_id or -1)))
        if len(rows) == len(self.chunks):
            return self
        chunks = [self.chunks[int(r)] for r in rows]
        documents = [d for d in self.documents.values() if d.guild_id in (None, guild_id)]
        kinds: dict[str, int] = {}
        for doc in documents:
            kinds[doc.kind.value] = kinds.get(doc.kind.value, 0) + 1
        manifest = self.manifest.model_copy(update={
            "chunk_count": len(chunks), "document_count": len(documents), "kinds": kinds,
            "documents": {d.id: self.manifest.documents.get(d.id, "") for d in documents}})
        # The same passages in the same order, and the same texts and vectors as the whole index's: a scope's
        # rankings depend on its own documents only.
        dense = DenseIndex.build(np.ascontiguousarray(self.dense.vectors[rows], dtype=np.float32))
        lexical = LexicalIndex.build([c.lexical_text() for c in chunks])
        scope = SearchIndex(manifest, documents, chunks, dense, lexical, self.embedder, self.fusion)
        scope.whole = self
        return scope

    def scopes(self) -> list[SearchIndex]:
        """Every distinct scope of this index: the shipped documents alone, and each team's."""
        return list(dict.fromkeys(self.whole.scoped(g) for g in [None, *sorted(self.whole.guilds)]))

    def __len__(self) -> int:
        return len(self.chunks)

    def embed_query(self, text: str) -> Vectors:
        return np.asarray(self.embedder.encode([text])[0], dtype=np.float32)

    def search(self, text: str, k: int = 5, fusion: FusionSettings | None = None) -> list[Hit]:
        settings = fusion or self.fusion
        vector = self.embed_query(text) if settings.mode != "lexical" else None
        return self.search_with_vector(text, vector, k, settings)

    def search_with_vector(self, text: str, vector: Vectors | None, k: int,
                           fusion: FusionSettings | None = None) -> list[Hit]:
        """The best `k` passages of this index (for a server's question: of `scoped(guild_id)`)."""
        settings = fusion or self.fusion
        if not self.chunks:
            return []
        scored = self._pool(text, vector, settings)
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

    def _pool(self, text: str, vector: Vectors | None, settings: FusionSettings) -> _Scored:
        n = settings.candidates
        lexical_all = self.lexical.scores(text) if settings.mode != "dense" else None
        lexical_ids = top_ids(lexical_all, n) if lexical_all is not None else np.zeros(0, np.int64)
        if vector is None or settings.mode == "lexical":
            assert lexical_all is not None
            scores = lexical_all[lexical_ids]
            return _Scored(lexical_ids, scores, np.zeros_like(scores), scores, {}, ranks(lexical_ids))
        dense_ids, dense_top = self.dense.top(vector, n)
        if lexical_all is None:
            return _Scored(dense_ids, dense_top, dense_top, np.zeros_like(dense_top), ranks(dense_ids), {})
        union = np.unique(np.concatenate([dense_ids, lexical_ids]))
        dense = self.dense.scores_for(vector, union)
        lexical = lexical_all[union]
        fused = fuse(dense, dense_top, lexical, lexical_all[lexical_ids], settings.dense_weight, settings.reference)
        return _Scored(union, fused, dense, lexical, ranks(dense_ids), ranks(lexical_ids))


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
