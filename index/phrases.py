"""Word pairs: which chunks hold each adjacent pair of the query's (stemmed, stopword-free) terms.

BM25 and the coverage feature score terms one by one, so "insulin resistance" and a passage
that says "resistance to change ... insulin" look alike to them. A passage that holds the
query's terms next to each other, as written, is more likely about the same thing.

Each pair is stored as the CRC-32 of its two terms, so the index keeps no strings; two pairs
share a key about once in four billion per pair, which at worst credits a chunk with a pair it lacks.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

FILE_NAME = "pairs.npz"

Scores = npt.NDArray[np.float32]


def idf_share(ids: npt.NDArray[np.int64], holders: Iterable[npt.NDArray[np.integer]], size: int) -> Scores:
    """For each chunk in `ids`, the idf-weighted share of the query's units (terms or word pairs)
    it holds, given for each unit the chunks that hold it, out of `size` chunks."""
    out = np.zeros(len(ids), dtype=np.float32)
    total = 0.0
    for chunks in holders:
        df = len(chunks)
        idf = float(np.log(1.0 + (size - df + 0.5) / (df + 0.5)))
        out += idf * np.isin(ids, chunks)
        total += idf
    return (out / total).astype(np.float32) if total > 0 else out


def pair_keys(terms: Sequence[str]) -> list[int]:
    """The distinct keys of the adjacent term pairs of `terms`, in first-seen order."""
    return list(dict.fromkeys(zlib.crc32(f"{a} {b}".encode()) for a, b in itertools.pairwise(terms)))


class PhraseIndex:
    """For each pair key (sorted), the chunks that hold that pair: one binary search per query pair."""

    def __init__(self, keys: npt.NDArray[np.uint32], starts: npt.NDArray[np.int64],
                 chunks: npt.NDArray[np.int32], size: int) -> None:
        self._keys = keys
        self._starts = starts  # chunks[starts[i]:starts[i + 1]] hold keys[i]
        self._chunks = chunks
        self._size = size

    @classmethod
    def build(cls, token_lists: Sequence[Sequence[str]]) -> PhraseIndex:
        found = [(key, row) for row, terms in enumerate(token_lists) for key in pair_keys(terms)]
        pairs = np.array(found, dtype=np.int64).reshape(-1, 2)
        pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
        keys, starts = np.unique(pairs[:, 0], return_index=True)
        return cls(keys.astype(np.uint32), np.append(starts, len(pairs)).astype(np.int64),
                   pairs[:, 1].astype(np.int32), len(token_lists))

    @property
    def size(self) -> int:
        return self._size

    def coverage(self, terms: Sequence[str], ids: npt.NDArray[np.int64]) -> Scores:
        """For each chunk in `ids`, the idf-weighted share of the query's adjacent term pairs it holds.

        Pairs no chunk holds are left out, so a query is measured against the pairs the library
        could match at all; a query with none scores 0 everywhere.
        """
        if not len(self._keys):
            return np.zeros(len(ids), dtype=np.float32)
        keys = np.array(pair_keys(terms), dtype=np.uint32)
        at = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
        found = at[self._keys[at] == keys]
        return idf_share(ids, (self._chunks[self._starts[k]:self._starts[k + 1]] for k in found), self._size)

    def save(self, folder: Path) -> None:
        np.savez(folder / FILE_NAME, keys=self._keys, starts=self._starts, chunks=self._chunks,
                 size=np.array([self._size]))

    @classmethod
    def load(cls, folder: Path) -> PhraseIndex:
        with np.load(folder / FILE_NAME) as stored:
            return cls(stored["keys"], stored["starts"], stored["chunks"], int(stored["size"][0]))
