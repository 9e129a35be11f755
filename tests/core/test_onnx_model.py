"""The bundled MiniLM on onnxruntime: the same vectors as sentence-transformers, safe to share between threads."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from index.errors import ModelLoadError
from index.retrieval.joint import JointEmbedder
from index.retrieval.onnx_model import OnnxEmbedder, check_mean_pooled, fingerprint

TEXTS = ["why does my lower back get tired after two motos?", "how do I hold the attack position?",
         "kettlebell swing for riders", "Hinge at the hips and keep the spine long while the knees stay soft.",
         "what tire pressure in sand", "best drill for hamstrings", "a", "how do i hindge corectly"]


@pytest.fixture(scope="module")
def minilm(real_embedder: JointEmbedder) -> OnnxEmbedder:
    """The MiniLM half of the bundled pair."""
    member = real_embedder.members[0]
    assert isinstance(member, OnnxEmbedder)
    return member


def test_a_folder_that_is_not_mean_pooled_is_refused(tmp_path: Path) -> None:
    (tmp_path / "1_Pooling").mkdir()
    modules = [{"type": "sentence_transformers.models.Transformer"}, {"type": "sentence_transformers.models.Pooling"}]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    (tmp_path / "sentence_bert_config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="mean-pooled"):
        check_mean_pooled(tmp_path)
    with pytest.raises(ModelLoadError, match="not a sentence-transformers model folder"):
        check_mean_pooled(tmp_path / "missing")


@pytest.mark.slow
def test_the_runtime_gives_sentence_transformers_vectors_and_is_shared_safely_by_threads(
        minilm: OnnxEmbedder) -> None:
    from index.retrieval.embedding import SentenceEmbedder

    alone = minilm.encode(TEXTS)
    reference = SentenceEmbedder().encode(TEXTS)
    assert alone.shape == (len(TEXTS), 384) and alone.dtype == np.float32
    assert float((alone * reference).sum(axis=1).min()) > 0.99999
    # One session and one tokenizer serve every thread: 8 threads at once, mixed call sizes, each result equal
    # to the same texts encoded alone.
    calls = [TEXTS[i % len(TEXTS):] + TEXTS[:i % len(TEXTS)] for i in range(48)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(minilm.encode, calls))
    for call, vectors in zip(calls, results, strict=True):
        expected = np.stack([alone[TEXTS.index(t)] for t in call])
        assert np.allclose(vectors, expected, atol=1e-5)


@pytest.mark.slow
def test_the_exported_graph_is_reused_by_its_fingerprint(minilm: OnnxEmbedder, tmp_path: Path) -> None:
    graph = Path(minilm._cache_dir) / f"{minilm._folder.name}-{fingerprint(minilm._folder)}.onnx"
    assert graph.is_file()
    graphs = sorted(Path(minilm._cache_dir).glob("*.onnx"))
    again = OnnxEmbedder(minilm._folder, minilm.model_id, minilm._cache_dir)
    assert np.allclose(again.encode(TEXTS[:2]), minilm.encode(TEXTS[:2]), atol=1e-6)
    assert sorted(Path(minilm._cache_dir).glob("*.onnx")) == graphs  # nothing exported again


def test_long_passages_go_in_fewer_rows_and_every_text_once() -> None:
    from tokenizers import Tokenizer

    from index.retrieval.embedding import resolve_model_path
    from index.retrieval.onnx_model import MAX_BATCH_TOKENS, token_batches

    tokenizer = Tokenizer.from_file(str(resolve_model_path("bundled")[0] / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=256)
    tokenizer.no_padding()  # as OnnxEmbedder loads it: the file itself pads every text to 128
    texts = ["hinge " * n for n in (300, 5, 120, 1, 250, 40, 2, 200, 3, 90)] * 3
    batches = list(token_batches(tokenizer, texts, batch_size=16, pad_id=0))
    assert sorted(r for rows, _ in batches for r in rows) == list(range(len(texts)))
    for rows, feed in batches:
        ids, mask = feed["input_ids"], feed["attention_mask"]
        assert len(rows) == ids.shape[0] == mask.shape[0] <= 16
        assert len(rows) == 1 or ids.size <= MAX_BATCH_TOKENS
        for n, row in enumerate(rows):  # each row is its text's tokens, then padding the mask leaves out
            tokens = tokenizer.encode(texts[row]).ids
            assert ids[n, :len(tokens)].tolist() == tokens and mask[n].sum() == len(tokens)
            assert not ids[n, len(tokens):].any()
        assert mask[0].all()  # the longest text of a batch sets its width: no column is padding only
    assert len(batches[0][0]) == MAX_BATCH_TOKENS // 256  # the longest, cut at 256 tokens: 4 a call
    questions = ["how do I keep my back flat when I hinge at the hips?"] * 20
    assert [len(rows) for rows, _ in token_batches(tokenizer, questions, batch_size=16)] == [16, 4]  # still share


@pytest.mark.slow
def test_a_question_is_not_padded_to_the_tokenizer_files_length(minilm: OnnxEmbedder) -> None:
    from index.retrieval.onnx_model import token_batches

    _, tokenizer = minilm._load()
    [(rows, feed)] = list(token_batches(tokenizer, ["hinge at the hips"], 16))
    assert rows == [0] and feed["input_ids"].shape == (1, len(tokenizer.encode("hinge at the hips").ids)) < (1, 16)
