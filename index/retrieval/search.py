"""The loaded index and its search: dense + lexical candidates, fused, filtered to what a server may cite."""

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
        scored = self._pool(text, vector, settings)
        if self.scoped:
            owners = self.chunk_guilds[scored.ids]
            keep = np.flatnonzero((owners == 0) | (owners == (guild_id or -1)))
            scored = _Scored(scored.ids[keep], scored.fused[keep], scored.dense[keep], scored.lexical[keep],
                             scored.dense_rank, scored.lexical_rank)
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
