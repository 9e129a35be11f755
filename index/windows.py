"""Dense windows: a long chunk embedded as several overlapping pieces that together cover it.

all-MiniLM-L6-v2 reads at most 256 word pieces and about half of the benchmark chunks are longer,
so one vector per chunk never sees their tails. Windows of at most `max_pieces` pieces, each with
the chunk's title/context line, cover the whole text; a chunk then scores as its best window.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from index.chunking import Chunk

# (start, end) character offsets of each word piece of a text, and the number of the word each
# piece belongs to: windows start and end on word boundaries only.
Pieces = tuple[Sequence[tuple[int, int]], Sequence[int | None]]
PieceFn = Callable[[str], Pieces]
SPECIAL_PIECES = 2  # [CLS] and [SEP], which the model adds to every input
_WORD = re.compile(r"\S+")


@runtime_checkable
class PieceSource(Protocol):
    """An embedder that can say how its model's tokenizer splits a text."""

    def pieces(self, text: str) -> Pieces: ...


def piece_fn(embedder: object) -> PieceFn:
    """The embedder's own tokenizer when it has one, else one piece per word."""
    return embedder.pieces if isinstance(embedder, PieceSource) else word_pieces


def word_pieces(text: str) -> Pieces:
    """One piece per whitespace-separated word: the fallback for embedders without a tokenizer."""
    spans = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    return spans, list(range(len(spans)))


def context_line(chunk: Chunk) -> str:
    """The part of the embedding text before the chunk's own text (the title when there is none)."""
    full = chunk.embedding_text()
    return full[: len(full) - len(chunk.text) - 1] if full != chunk.text else chunk.title


def chunk_windows(chunk: Chunk, max_pieces: int, pieces: PieceFn) -> list[str]:
    """The texts to embed for one chunk: its embedding text when it fits, else windows covering it.

    Windows are spread evenly from the first piece to the last, so together they cover the whole
    text and overlap as little as the count allows.
    """
    full = chunk.embedding_text()
    if max_pieces <= 0 or len(pieces(full)[0]) + SPECIAL_PIECES <= max_pieces:
        return [full]
    context = context_line(chunk)
    offsets, words = pieces(chunk.text)
    total = len(offsets)
    # A context line that alone fills the window would leave no room for text: then the window
    # keeps a quarter of its pieces for text and the model truncates the rest of it.
    width = max(max_pieces - SPECIAL_PIECES - len(pieces(context)[0]), max(max_pieces // 4, 1))
    count = math.ceil(total / width)
    out: list[str] = []
    for k in range(count):
        start = round(k * (total - width) / (count - 1)) if count > 1 else 0
        while 0 < start < total and words[start] == words[start - 1]:
            start += 1  # never begin inside a word: move to the next word's first piece
        end = min(start + width, total)
        while start + 1 < end < total and words[end] == words[end - 1]:
            end -= 1  # never end inside a word: drop its leading pieces
        if start == 0 and full == chunk.text:
            out.append(chunk.text[: offsets[end - 1][1]])
        else:
            out.append(f"{context}\n{chunk.text[offsets[start][0]:offsets[end - 1][1]]}")
    return out


def window_starts(counts: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Index of each chunk's first window (windows are stored chunk after chunk)."""
    return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)


def group_rows(starts: npt.NDArray[np.int64], counts: npt.NDArray[np.int64],
               ids: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The rows of the chunks in `ids` (chunk after chunk) and each one's row count, for vectors laid
    out chunk after chunk, chunk i owning rows starts[i] to starts[i] + counts[i]."""
    lengths = counts[ids].astype(np.int64)
    offsets = np.repeat(starts[ids] - window_starts(lengths), lengths)
    return offsets + np.arange(int(lengths.sum()), dtype=np.int64), lengths


def max_per_chunk(sims: npt.NDArray[np.float32], counts: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
    """Each chunk's best window score, from the scores of its windows laid out chunk after chunk."""
    return np.maximum.reduceat(sims, window_starts(counts)).astype(np.float32)
