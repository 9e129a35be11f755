from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index.chunking import Chunk
from index.dense import DenseIndex
from index.documents import load_library
from index.errors import IndexLoadError
from index.fusion import FusionSettings
from index.store import IndexStore
from index.windows import chunk_windows, context_line, max_per_chunk, word_pieces
from tests.helpers import HashingEmbedder, small_library, write_doc


def make_chunk(text: str, title: str = "The Hip Hinge") -> Chunk:
    return Chunk(id="doc#0", doc_id="doc", kind="article", title=title, heading_path=("Drills",), text=text,
                 start=0, end=len(text))


def words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(n))


def window_words(window: str, chunk: Chunk) -> list[str]:
    """The chunk-text words of one window (without its context line)."""
    context = context_line(chunk)
    body = window[len(context) + 1:] if window.startswith(context + "\n") else window
    return body.split()


@pytest.mark.parametrize("length", [30, 31, 57, 200, 333])
def test_windows_cover_the_whole_text_and_stay_within_the_limit(length: int) -> None:
    chunk = make_chunk(words(length))
    windows = chunk_windows(chunk, 32, word_pieces)
    assert len(windows) >= 2
    covered: set[str] = set()
    for window in windows:
        assert window.startswith(context_line(chunk) + "\n")  # every window keeps the context
        assert len(word_pieces(window)[0]) + 2 <= 32
        covered.update(window_words(window, chunk))
    assert covered == set(chunk.text.split())
    assert windows[0].endswith("\nw0 " + " ".join(window_words(windows[0], chunk)[1:]))
    assert windows[-1].endswith(f"w{length - 1}")


def test_a_short_text_stays_one_window_and_zero_means_no_windows() -> None:
    chunk = make_chunk(words(10))
    assert chunk_windows(chunk, 32, word_pieces) == [chunk.embedding_text()]
    long = make_chunk(words(500))
    assert chunk_windows(long, 0, word_pieces) == [long.embedding_text()]


def test_windows_never_split_a_word_into_two_windows() -> None:
    # Two pieces per word, as a tokenizer splits rare words: windows start and end between words.
    def two_pieces(text: str) -> tuple[list[tuple[int, int]], list[int | None]]:
        spans, numbers = word_pieces(text)
        halves = [half for s, e in spans for half in ((s, (s + e) // 2), ((s + e) // 2, e))]
        return halves, [n for n in numbers for _ in (0, 1)]

    chunk = make_chunk(words(100))
    windows = chunk_windows(chunk, 40, two_pieces)
    expected = set(chunk.text.split())
    for window in windows:
        assert set(window_words(window, chunk)) <= expected and len(two_pieces(window)[0]) + 2 <= 40
    assert set().union(*(window_words(w, chunk) for w in windows)) == expected


def test_the_real_tokenizer_keeps_each_window_within_the_limit(real_embedder) -> None:  # type: ignore[no-untyped-def]
    chunk = make_chunk(" ".join(["Hinging at the hips keeps the spine neutral under load."] * 40))
    windows = chunk_windows(chunk, 128, real_embedder.pieces)
    assert len(windows) > 2
    assert all(len(real_embedder.pieces(w)[0]) + 2 <= 128 for w in windows)
    assert chunk_windows(make_chunk("Short text."), 128, real_embedder.pieces) == [make_chunk("Short text.")
                                                                                   .embedding_text()]


def test_a_chunk_scores_as_its_best_window() -> None:
    sims = np.array([0.1, 0.7, 0.3, 0.2, 0.9, 0.4], dtype=np.float32)
    counts = np.array([3, 1, 2], dtype=np.int64)
    assert max_per_chunk(sims, counts).tolist() == pytest.approx([0.7, 0.2, 0.9])

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(6, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    dense = DenseIndex.build(vectors, counts=counts)
    query = vectors[4]
    expected = np.array([max(vectors[:3] @ query), vectors[3] @ query, max(vectors[4:] @ query)])
    assert dense.size == 3 and dense.window_count == 6
    assert dense.scores_for(query, np.array([2, 0], dtype=np.int64)) == pytest.approx(expected[[2, 0]], abs=1e-6)
    ids, scores = dense.top(query, 3)
    assert ids.tolist() == np.argsort(-expected).tolist() and scores == pytest.approx(np.sort(expected)[::-1],
                                                                                         abs=1e-6)
    assert dense.top(query, 1)[0].tolist() == [2]
    assert np.allclose(dense.chunk_vectors(np.array([2]), query, "best"), vectors[4])
    mean = vectors[:3].mean(axis=0)
    assert np.allclose(dense.chunk_vectors(np.array([0]), query, "mean")[0], mean / np.linalg.norm(mean), atol=1e-6)


def test_a_windowed_index_builds_loads_and_asks_for_a_rebuild_when_the_window_changes(tmp_path: Path) -> None:
    library = small_library(tmp_path / "knowledge")
    write_doc(library, "article", "long-climb", " ".join(["Seated climbing keeps traction on loose rock."] * 60))
    documents = load_library(library).documents
    store = IndexStore(tmp_path / "data")
    windowed = FusionSettings(dense_window=32)
    report = store.build(documents, HashingEmbedder(), windowed)
    index = store.load(HashingEmbedder(), windowed)
    assert index.manifest.dense_window == 32 and index.manifest.window_count == index.dense.window_count
    assert index.dense.window_count > len(index) == report.chunks
    assert index.search("seated climbing traction", k=1)[0].chunk.doc_id == "long-climb"
    with pytest.raises(IndexLoadError, match="dense windows of 32"):
        store.load(HashingEmbedder(), FusionSettings())
    # Unchanged windows come from the cache: a rebuild embeds nothing.
    assert store.build(documents, HashingEmbedder(), windowed).embedded == 0
