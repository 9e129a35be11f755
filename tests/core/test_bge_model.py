"""bge-small int8 (ONNX), half of the bundled pair: pinned files, unit vectors, questions near their passages.

`compartment`, the package that carries its files, is located, never imported.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from index.errors import ModelLoadError
from index.retrieval.bge_model import MODEL_FILE, TOKENIZER_FILE, BgeEmbedder, package_model_folder


@pytest.fixture(scope="module")
def embedder() -> BgeEmbedder:
    return BgeEmbedder()


def test_the_package_is_located_not_imported(embedder: BgeEmbedder) -> None:
    embedder.encode(["hip hinge"])
    assert (package_model_folder() / MODEL_FILE).is_file()
    assert "compartment" not in sys.modules


def test_a_tampered_file_is_refused(tmp_path: Path) -> None:
    for name in (MODEL_FILE, TOKENIZER_FILE):
        folder = tmp_path / name.replace(".", "_")
        shutil.copytree(package_model_folder(), folder)
        data = bytearray((folder / name).read_bytes())
        data[len(data) // 2] ^= 0x01  # one flipped bit
        (folder / name).write_bytes(bytes(data))
        with pytest.raises(ModelLoadError, match="sha256"):
            BgeEmbedder(folder).encode(["hip hinge"])


def test_vectors_are_unit_length(embedder: BgeEmbedder) -> None:
    texts = ["hinge at the hips", "", "a much longer passage " * 300]  # the last one is cut at 512 tokens
    vectors = embedder.encode(texts, batch_size=2)
    assert vectors.shape == (3, embedder.dimension) == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Each text is embedded alone (its int8 scales would otherwise come from its batch mates), so a text's
    # vector is the same beside others as on its own.
    for text, vector in zip(texts, vectors, strict=True):
        np.testing.assert_array_equal(embedder.encode([text])[0], vector)
    assert embedder.encode([]).shape == (0, 384)


def test_a_query_is_closer_to_a_relevant_passage(embedder: BgeEmbedder) -> None:
    passages = embedder.encode([
        "To hip hinge on the bike, push your hips back and keep your back flat while your chest comes forward.",
        "Preheat the oven to 200 degrees and bake the bread for thirty minutes until golden.",
    ])
    relevant, unrelated = passages @ embedder.encode(["how do I keep my back flat when hinging?"])[0]
    assert relevant > unrelated + 0.1
