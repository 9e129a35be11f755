"""Retrieval benchmark: BM25 only, dense only and the shipped hybrid, on BEIR folders.

    python bench/retrieval.py [BEIR_DIR ...] [--split test] [--data-dir .hinge/bench]

The hybrid is exactly the engine the bot ships (index.engine.EngineSettings: nothing here is configured
differently). Prints per dataset: nDCG@10, Recall@100, MRR@10, query latency; build throughput against raw
`model.encode` on the same texts; search latency over a 10,000-chunk index; peak memory. Embeddings are
cached in the data dir (one cache per index), so only the first run pays for embedding the corpora.
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

from index.engine import EngineSettings, make_embedder
from index.evaluation.beir import evaluate, load_beir
from index.library.chunking import Chunk, chunk_documents
from index.retrieval.embedding import Embedder, EmbeddingCache, embed_with_cache
from index.retrieval.store import IndexStore

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "benchmarks"
SHIPPED = EngineSettings()


def modes() -> dict[str, object]:
    fusion = SHIPPED.fusion
    return {"BM25 (bm25s)": fusion.model_copy(update={"mode": "lexical"}),
            "dense (the pair, faiss)": fusion.model_copy(update={"mode": "dense"}),
            "hybrid (shipped)": fusion}


def throughput(embedder: Embedder, chunks: list[Chunk]) -> None:
    """Passages per second: raw model.encode against the build's cached embedding path, same texts."""
    texts = [c.embedding_text() for c in chunks]
    started = time.perf_counter()
    embedder.encode(texts)
    raw = len(texts) / (time.perf_counter() - started)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        embed_with_cache(embedder, texts, EmbeddingCache(Path(tmp) / "cache.sqlite"))
        ours = len(texts) / (time.perf_counter() - started)
    print(f"build throughput on {len(texts)} passages: raw model.encode {raw:.1f}/s, index build path {ours:.1f}/s "
          f"({ours / raw:.0%})")


def latency(samples: list[float]) -> str:
    arr = np.array(samples)
    return f"p50 {np.percentile(arr, 50):.2f} ms, p95 {np.percentile(arr, 95):.2f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folders", nargs="*", type=Path, default=[SHARED / "scifact", SHARED / "nfcorpus"])
    parser.add_argument("--split", default="test")
    parser.add_argument("--data-dir", type=Path, default=Path(".hinge/bench"))
    parser.add_argument("--throughput-chunks", type=int, default=384)
    args = parser.parse_args()

    embedder = make_embedder(SHIPPED.embed_model, args.data_dir)
    # One cache per index: a build keeps only its own passages in the cache it uses, so a shared one would
    # drop one corpus's vectors while building the next, and every run would embed them again.
    def cache_for(name: str) -> Path:
        return args.data_dir / "cache" / f"{name}.sqlite"

    all_chunks: list[Chunk] = []
    for folder in args.folders:
        beir = load_beir(folder, args.split)
        store = IndexStore(args.data_dir / beir.name, cache_for(beir.name))
        build = store.build(beir.documents, embedder, SHIPPED.fusion, built_by="bench")
        index = store.load(embedder)
        vectors = embedder.encode(list(beir.queries.values()))
        print(f"\n{beir.name}: {len(beir.documents)} documents, {build.chunks} chunks, {len(beir.queries)} "
              f"{args.split} queries; build {build.seconds:.1f}s ({build.embedded} passages embedded)")
        print(f"{'system':24} {'nDCG@10':>8} {'R@100':>7} {'MRR@10':>7} {'p50 ms':>7} {'p95 ms':>7}")
        for name, settings in modes().items():
            report = evaluate(index, beir, args.split, settings, query_vectors=vectors)  # type: ignore[arg-type]
            print(f"{name:24} {report.ndcg_at_10:8.4f} {report.recall_at_100:7.4f} {report.mrr_at_10:7.4f} "
                  f"{report.p50_ms:7.2f} {report.p95_ms:7.2f}", flush=True)
        all_chunks += index.chunks

    # Search latency over a 10,000-chunk index made of the benchmark chunks (vectors cached).
    from index.library.documents import load_beir_corpus

    docs = [d for folder in args.folders for d in load_beir_corpus(folder / "corpus.jsonl")]
    chunks = chunk_documents(docs)[:10_000]
    store = IndexStore(args.data_dir / "10k", cache_for("10k"))
    chunk_doc_ids = {c.doc_id for c in chunks}
    store.build([d for d in docs if d.id in chunk_doc_ids], embedder, SHIPPED.fusion, built_by="bench")
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

    throughput(embedder, all_chunks[: args.throughput_chunks])
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS): {peak_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
