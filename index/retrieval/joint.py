"""The bundled model pair read as one embedder: all-MiniLM-L6-v2 and bge-small-en-v1.5 (int8) side by side.

Why two: each is wrong in different places. On the tune part of the rider question set the pair ranks better
than either alone (hit@3 0.973 against 0.955 for MiniLM and 0.918 for bge, hybrid with BM25), and on BEIR it
reaches what MiniLM alone does not (figures in docs/benchmarks.md).

Each member's unit vector is scaled by 1/sqrt(n) and the scaled vectors are put side by side. The result is
a unit vector whose inner product with another is the mean of the members' cosines, so faiss, the fusion,
the decline policy and every similarity threshold read the pair as one model.

The members run at the same time, each on its own share of the cores: one question embeds in p50 6.3 ms
that way on the 2-core machine, against 10.2 ms one member after the other with two threads each (each
member alone: 3.9 ms MiniLM, 3.4 ms bge). Taking turns on the same cores costs more than the sum of its parts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from index.retrieval.embedding import Embedder, Vectors


class JointEmbedder:
    """Several embedders as one: the concatenation of their vectors, each scaled by 1/sqrt(n).

    Thread-safe when its members are: the calling thread runs the first member while pool threads run the
    others, and nothing else is shared.
    """

    def __init__(self, members: Sequence[Embedder]) -> None:
        if not members:
            raise ValueError("a joint embedder needs at least one member")
        self.members = tuple(members)
        self._scale = 1.0 / math.sqrt(len(self.members))
        # Several callers may embed at once (a build and a burst of questions); each needs its other members run.
        self._pool = ThreadPoolExecutor(max_workers=4 * (len(self.members) - 1) or 1, thread_name_prefix="embed")

    @property
    def model_id(self) -> str:
        return " + ".join(m.model_id for m in self.members)

    @property
    def dimension(self) -> int:
        return sum(m.dimension for m in self.members)

    def encode(self, texts: Sequence[str], batch_size: int = 16) -> Vectors:
        others = [self._pool.submit(m.encode, texts, batch_size) for m in self.members[1:]]
        parts = [self.members[0].encode(texts, batch_size=batch_size), *(f.result() for f in others)]
        return np.ascontiguousarray(np.hstack(parts) * self._scale, dtype=np.float32)
