"""The bundled pair read as one model: unit vectors whose inner products are the mean of the members' cosines."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from index.retrieval.embedding import Vectors
from index.retrieval.joint import JointEmbedder


class Fixed:
    """A member with a vector per text, chosen by the test."""

    def __init__(self, model_id: str, vectors: dict[str, list[float]]) -> None:
        self.model_id = model_id
        self.vectors = {t: np.asarray(v, dtype=np.float32) / np.linalg.norm(v) for t, v in vectors.items()}
        self.dimension = len(next(iter(vectors.values())))

    def encode(self, texts: Sequence[str], batch_size: int = 16) -> Vectors:
        return np.stack([self.vectors[t] for t in texts]) if texts else np.zeros((0, self.dimension), np.float32)


def test_the_inner_product_is_the_mean_of_the_members_cosines() -> None:
    a = Fixed("a", {"x": [1, 0], "y": [1, 1]})
    b = Fixed("b", {"x": [1, 0, 0], "y": [0, 0, 1]})
    joint = JointEmbedder([a, b])
    vectors = joint.encode(["x", "y"])
    assert vectors.shape == (2, 5) == (2, joint.dimension) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    cosine_a, cosine_b = float(a.encode(["x"])[0] @ a.encode(["y"])[0]), 0.0
    assert float(vectors[0] @ vectors[1]) == pytest.approx((cosine_a + cosine_b) / 2, abs=1e-6)
    assert joint.model_id == "a + b"
    assert joint.encode([]).shape == (0, 5)


def test_it_needs_a_member() -> None:
    with pytest.raises(ValueError):
        JointEmbedder([])


@pytest.mark.slow
def test_the_bundled_pair_is_shared_safely_by_threads(real_embedder: JointEmbedder) -> None:
    texts = ["why does my lower back get tired after two motos?", "how do I hold the attack position?",
             "kettlebell swing for riders", "what tire pressure in sand"]
    alone = np.concatenate([real_embedder.encode([t]) for t in texts])
    # Eight threads at once through both members, each text among others: every vector is the one it has
    # alone (MiniLM's vectors do not depend on the batch, and bge embeds each text alone).
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda n: real_embedder.encode(texts[n % 4:] + texts[:n % 4]), range(32)))
    for n, vectors in enumerate(results):
        expected = np.roll(alone, -(n % 4), axis=0)
        np.testing.assert_allclose(vectors, expected, atol=1e-5)
    relevant, unrelated = real_embedder.encode(["Hinge at the hips with a flat back.", "Bake the bread."]) @ \
        real_embedder.encode(["how do I keep my back flat when hinging?"])[0]
    assert relevant > unrelated + 0.1
