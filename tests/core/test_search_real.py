"""The real model over a small corpus: a paraphrased question still finds its passage."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from index.library.documents import load_library
from index.retrieval.fusion import FusionSettings
from index.retrieval.store import IndexStore
from tests.conftest import PROJECT
from tests.helpers import small_library

pytestmark = pytest.mark.slow


def test_a_paraphrased_question_finds_its_passage(tmp_path: Path, real_embedder) -> None:  # type: ignore[no-untyped-def]
    library = small_library(tmp_path / "knowledge")
    store = IndexStore(tmp_path / "data")
    store.build(load_library(library).documents, real_embedder)
    index = store.load(real_embedder)
    assert index.manifest.model.id == ("sentence-transformers/all-MiniLM-L6-v2 + "
                                       "BAAI/bge-small-en-v1.5-int8-onnx (one text a call)")
    assert index.manifest.fusion == FusionSettings()  # the one engine: built and searched as it ships
    # The passage says "get tired early ... round the upper back": the question words it otherwise.
    hits = index.search("how come I get worn out so early when hunched over?", k=3)
    assert hits[0].chunk.doc_id == "hinge-basics"
    assert hits[0].chunk.heading_path == ("Why riders care",)
    assert 0.0 < hits[0].dense_score <= 1.0


def test_hinge_eval_beir_on_a_tiny_fixture(tmp_path: Path) -> None:
    beir = tmp_path / "tiny"
    (beir / "qrels").mkdir(parents=True)
    docs = {
        "d1": ("Hip hinge", "Keep the spine long while pushing the hips back."),
        "d2": ("Tire pressure", "Run lower pressure in sand and higher on hard pack."),
        "d3": ("Plank", "A plank holds a neutral spine against gravity."),
        "d4": ("Chain care", "Clean and lube the chain after every muddy ride."),
    }
    (beir / "corpus.jsonl").write_text("\n".join(json.dumps({"_id": k, "title": t, "text": x})
                                                 for k, (t, x) in docs.items()))
    queries = {"q1": "how do I keep my back straight when bending at the hips", "q2": "sand tire psi",
               "q3": "how should I maintain my chain"}
    (beir / "queries.jsonl").write_text("\n".join(json.dumps({"_id": k, "text": v}) for k, v in queries.items()))
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td4\t1\n")
    result = subprocess.run([sys.executable, "-m", "bot.cli", "eval", "beir", str(beir), "--json",
                             "--data-dir", str(tmp_path / "data")], capture_output=True, text=True,
                            cwd=PROJECT, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["queries"] == 3
    assert report["ndcg_at_10"] == 1.0 and report["recall_at_100"] == 1.0 and report["mrr_at_10"] == 1.0
    assert report["build_seconds"] > 0
