"""Retrieval benchmark: BM25 only, dense only and the shipped hybrid, on BEIR folders.

    python bench/retrieval.py [BEIR_DIR ...] [--split test] [--data-dir .hinge/bench]

Prints per dataset: nDCG@10, Recall@100, MRR@10, query latency; build throughput against raw
`model.encode` on the same texts; search latency over a 10,000-chunk index; peak memory.
Embeddings are cached in the data dir, so only the first run pays for embedding the corpora.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from index.chunking import chunk_documents
from index.embedding import EmbeddingCache, SentenceEmbedder, embed_with_cache
from index.evaluation import evaluate, load_beir
from index.fusion import FusionSettings
from index.store import IndexStore

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "benchmarks"
MODES = {
    "BM25 (bm25s)": FusionSettings(mode="lexical"),
    "dense (MiniLM, faiss)": FusionSettings(mode="dense", feedback_docs=0),
    "hybrid (shipped)": FusionSettings(),
}


def throughput(embedder: SentenceEmbedder, texts: list[str]) -> tuple[float, float]:
    """Texts per second: raw model.encode, then the build's cached path with an empty cache."""
    embedder.encode(texts[:16])  # warm up the model outside both timings
    started = time.perf_counter()
    embedder.model.encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
    raw = len(texts) / (time.perf_counter() - started)
    with tempfile.TemporaryDirectory() as tmp:
        cache = EmbeddingCache(Path(tmp) / "cache.sqlite")
        started = time.perf_counter()
        embed_with_cache(embedder, texts, cache)
        ours = len(texts) / (time.perf_counter() - started)
    return raw, ours


def latency(samples: list[float]) -> str:
    arr = np.array(samples)
    return f"p50 {np.percentile(arr, 50):.2f} ms, p95 {np.percentile(arr, 95):.2f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path,
                        default=[SHARED / "scifact", SHARED / "nfcorpus"])
    parser.add_argument("--split", default="test")
    parser.add_argument("--data-dir", type=Path, default=Path(".hinge/bench"))
    parser.add_argument("--throughput-texts", type=int, default=384)
    args = parser.parse_args()

    embedder = SentenceEmbedder()
    cache_path = args.data_dir / "cache" / "embeddings.sqlite"
    rows: list[str] = []
    all_chunks_texts: list[str] = []
    for folder in args.folders:
        beir = load_beir(folder, args.split)
        store = IndexStore(args.data_dir / beir.name, cache_path)
        build = store.build(beir.documents, embedder, built_by="bench")
        index = store.load(embedder)
        vectors = embedder.encode(list(beir.queries.values()))
        print(f"\n{beir.name}: {len(beir.documents)} documents, {build.chunks} chunks, {len(beir.queries)} "
              f"{args.split} queries; build {build.seconds:.1f}s ({build.embedded} chunks embedded)")
        print(f"{'system':24} {'nDCG@10':>8} {'R@100':>7} {'MRR@10':>7} {'p50 ms':>7} {'p95 ms':>7}")
        for name, settings in MODES.items():
            report = evaluate(index, beir, args.split, settings, query_vectors=vectors)
            print(f"{name:24} {report.ndcg_at_10:8.4f} {report.recall_at_100:7.4f} {report.mrr_at_10:7.4f} "
                  f"{report.p50_ms:7.2f} {report.p95_ms:7.2f}")
            rows.append(f"{beir.name}\t{name}\t{report.ndcg_at_10}")
        all_chunks_texts += [c.embedding_text() for c in index.chunks]

    # Search latency over a 10,000-chunk index made of the benchmark chunks (vectors cached).
    from index.documents import load_beir_corpus

    docs = [d for folder in args.folders for d in load_beir_corpus(folder / "corpus.jsonl")]
    chunks = chunk_documents(docs)[:10_000]
    store = IndexStore(args.data_dir / "10k", cache_path)
    chunk_doc_ids = {c.doc_id for c in chunks}
    store.build([d for d in docs if d.id in chunk_doc_ids], embedder, built_by="bench")
    index = store.load(embedder)
    queries = [q for folder in args.folders for q in load_beir(folder, args.split).queries.values()][:300]
    qvecs = embedder.encode(queries)
    for q, v in zip(queries[:20], qvecs[:20], strict=True):  # warm up
        index.search_with_vector(q, v, 10)
    search_only, with_embedding = [], []
    for q, v in zip(queries, qvecs, strict=True):
        t = time.perf_counter()
        index.search_with_vector(q, v, 10)
        search_only.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        index.search(q, 10)
        with_embedding.append((time.perf_counter() - t) * 1000)
    print(f"\nsearch over {len(index)} chunks, {len(queries)} queries, warm: search alone {latency(search_only)}; "
          f"with query embedding {latency(with_embedding)}")

    texts = all_chunks_texts[: args.throughput_texts]
    raw, ours = throughput(embedder, texts)
    print(f"build throughput on {len(texts)} chunk texts: raw model.encode {raw:.1f}/s, index build path "
          f"{ours:.1f}/s ({100 * ours / raw:.0f}% of raw)")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS): {peak_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
