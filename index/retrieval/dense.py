"""Dense search: normalised embeddings in faiss, exact inner product (a team's library is a few thousand
passages at most, where exact search takes well under a millisecond)."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]
Ids = npt.NDArray[np.int64]


class DenseIndex:
    def __init__(self, index: faiss.Index, vectors: Vectors) -> None:
        # One query at a time is the workload: OpenMP's thread start-up costs more than it
        # saves (single-query search measured 2-3x faster with one thread).
        faiss.omp_set_num_threads(1)
        self._index = index
        # The vectors are kept beside faiss so any chunk can be scored, not only the ones it returns.
        self.vectors = vectors

    @classmethod
    def build(cls, vectors: Vectors) -> DenseIndex:
        index = faiss.IndexFlatIP(vectors.shape[1])
        if len(vectors):
            index.add(vectors)
        return cls(index, vectors)

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    def top(self, query: Vectors, k: int) -> tuple[Ids, Vectors]:
        """Ids and scores of the k chunks nearest to one query vector, best first."""
        k = min(k, self.size)
        if k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        scores, found = self._index.search(query.reshape(1, -1), k)
        keep = found[0] >= 0
        return found[0][keep].astype(np.int64), scores[0][keep].astype(np.float32)

    def scores_for(self, query: Vectors, ids: Ids) -> Vectors:
        """The cosine of each chunk in `ids`."""
        return np.asarray(self.vectors[ids] @ query.reshape(-1), dtype=np.float32)

    def save(self, folder: Path) -> None:
        faiss.write_index(self._index, str(folder / "dense.faiss"))
        np.save(folder / "vectors.npy", self.vectors)

    @classmethod
    def load(cls, folder: Path) -> DenseIndex:
        return cls(faiss.read_index(str(folder / "dense.faiss")), np.load(folder / "vectors.npy"))
