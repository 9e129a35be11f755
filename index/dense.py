"""Dense search: normalised embeddings in faiss (exact inner product, or HNSW for large libraries).

A chunk may own several vectors (its windows, see index/windows.py): faiss holds the windows,
`counts` says how many belong to each chunk, and a chunk scores as its best window.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt

from index.windows import group_rows, max_per_chunk, window_starts

Vectors = npt.NDArray[np.float32]
Ids = npt.NDArray[np.int64]

HNSW_NEIGHBOURS = 32
HNSW_EF_SEARCH = 128


class DenseIndex:
    def __init__(self, index: faiss.Index, vectors: Vectors, counts: Ids | None = None) -> None:
        # One query at a time is the workload: OpenMP's thread start-up costs more than it
        # saves (single-query search measured 2-3x faster with one thread).
        faiss.omp_set_num_threads(1)
        self._index = index
        # The vectors are kept beside faiss so any chunk can be scored exactly, not only the
        # ones the (possibly approximate) index returns.
        self.vectors = vectors
        self.counts = np.ones(len(vectors), np.int64) if counts is None else counts.astype(np.int64)
        self.starts = window_starts(self.counts)
        self.owners = np.repeat(np.arange(len(self.counts), dtype=np.int64), self.counts)
        self.windowed = len(self.counts) != len(vectors)
        if self.windowed:
            # The normalised mean of each chunk's windows: one vector per chunk for the feedback round.
            sums = np.add.reduceat(vectors, self.starts, axis=0) if len(vectors) else vectors
            self.means = (sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-9)).astype(np.float32)
        else:
            self.means = vectors

    @classmethod
    def build(cls, vectors: Vectors, kind: str = "flat", counts: Ids | None = None) -> DenseIndex:
        dim = vectors.shape[1]
        index: faiss.Index
        if kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efSearch = HNSW_EF_SEARCH
        else:
            index = faiss.IndexFlatIP(dim)
        if len(vectors):
            index.add(vectors)
        return cls(index, vectors, counts)

    @property
    def size(self) -> int:
        """Chunks (not windows) in the index."""
        return len(self.counts)

    @property
    def window_count(self) -> int:
        return int(self._index.ntotal)

    def top(self, query: Vectors, k: int) -> tuple[Ids, Vectors]:
        """Ids and scores of the k chunks whose best window is nearest to one query vector."""
        k = min(k, self.size)
        if k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        # Windows come back best first, so a chunk's first appearance is its best window. Ask for
        # enough windows to expect k chunks, and for more in the rare case they were too few.
        fetch = min(self.window_count, k if not self.windowed else 3 * k)
        while True:
            scores, found = self._index.search(query.reshape(1, -1), fetch)
            keep = found[0] >= 0
            windows, sims = found[0][keep], scores[0][keep]
            chunks = self.owners[windows]
            _, first = np.unique(chunks, return_index=True)
            if len(first) >= k or fetch >= self.window_count:
                break
            fetch = min(self.window_count, fetch * 2)
        first = np.sort(first)[:k]
        return chunks[first], sims[first]

    def _rows(self, ids: Ids) -> tuple[Ids, Ids]:
        """The window rows of the chunks in `ids` (chunk after chunk) and each chunk's window count."""
        return group_rows(self.starts, self.counts, ids)

    def scores_for(self, query: Vectors, ids: Ids) -> Vectors:
        """The cosine of each chunk in `ids`: its best window's."""
        if not self.windowed:
            return np.asarray(self.vectors[ids] @ query.reshape(-1), dtype=np.float32)
        if len(ids) == 0:
            return np.zeros(0, dtype=np.float32)
        rows, lengths = self._rows(ids)
        return max_per_chunk(np.asarray(self.vectors[rows] @ query.reshape(-1), dtype=np.float32), lengths)

    def chunk_vectors(self, ids: Ids, query: Vectors, how: str = "best") -> Vectors:
        """One vector per chunk in `ids`: its window closest to `query` ("best") or its windows' mean."""
        if not self.windowed:
            return np.asarray(self.vectors[ids], dtype=np.float32)
        if how == "mean":
            return np.asarray(self.means[ids], dtype=np.float32)
        rows, lengths = self._rows(ids)
        sims = self.vectors[rows] @ query.reshape(-1)
        starts = window_starts(lengths)
        best = [int(s + np.argmax(sims[s:s + n])) for s, n in zip(starts, lengths, strict=True)]
        return np.asarray(self.vectors[rows[best]], dtype=np.float32)

    def save(self, folder: Path) -> None:
        faiss.write_index(self._index, str(folder / "dense.faiss"))
        np.save(folder / "vectors.npy", self.vectors)
        np.save(folder / "window_chunks.npy", self.owners)

    @classmethod
    def load(cls, folder: Path) -> DenseIndex:
        owners = np.load(folder / "window_chunks.npy")
        counts = np.bincount(owners, minlength=int(owners[-1]) + 1 if len(owners) else 0)
        return cls(faiss.read_index(str(folder / "dense.faiss")), np.load(folder / "vectors.npy"), counts)
