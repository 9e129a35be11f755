"""Retrieval benchmark: BM25 only, dense only and the shipped hybrid, on BEIR folders.

    python bench/retrieval.py [BEIR_DIR ...] [--split test] [--data-dir .hinge/bench]
    python bench/retrieval.py --refit-fusion     # refit index.fusion.LEARNED_WEIGHTS on train splits
    python bench/retrieval.py --dense-window 0   # one vector per chunk instead of the default windows

Prints per dataset: nDCG@10, Recall@100, MRR@10, query latency; build throughput against raw
`model.encode` on the same texts (the dense windows), and chunks per second with and without
windows; search latency over a 10,000-chunk index; peak memory.
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

from index.chunking import Chunk, chunk_documents
from index.embedding import EmbeddingCache, SentenceEmbedder, embed_with_cache
from index.evaluation import BeirSet, evaluate, load_beir
from index.fusion import LEARNED_FEATURES, FusionSettings
from index.search import SearchIndex
from index.store import IndexStore
from index.windows import chunk_windows, piece_fn

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "benchmarks"
COMPARED_WINDOW = 128  # the window the throughput line compares against when the build uses none


def modes(window: int) -> dict[str, FusionSettings]:
    return {
        "BM25 (bm25s)": FusionSettings(mode="lexical", dense_window=window),
        "dense (MiniLM, faiss)": FusionSettings(mode="dense", feedback_docs=0, dense_window=window),
        "hybrid (shipped)": FusionSettings(dense_window=window),
    }


def build_path_seconds(embedder: SentenceEmbedder, texts: list[str]) -> float:
    """Seconds the build's cached embedding path takes on `texts`, starting from an empty cache."""
    with tempfile.TemporaryDirectory() as tmp:
        cache = EmbeddingCache(Path(tmp) / "cache.sqlite")
        started = time.perf_counter()
        embed_with_cache(embedder, texts, cache)
        return time.perf_counter() - started


def throughput(embedder: SentenceEmbedder, chunks: list[Chunk], settings: FusionSettings) -> None:
    """Print texts per second (raw model.encode vs the build path, on the texts the build embeds)
    and chunks per second for one vector per chunk, for windows, and for windows plus sentences,
    so the cost of each is visible."""
    window = settings.dense_window
    windowed = window or COMPARED_WINDOW
    windows = [t for c in chunks for t in chunk_windows(c, windowed, piece_fn(embedder))]
    sentences = [t for c in chunks for t in c.sentence_texts()]
    plain = [c.embedding_text() for c in chunks]
    built = (windows if window else plain) + (sentences if settings.needs_sentences else [])
    variants = {"one vector per chunk": plain, f"dense_window={windowed}": windows,
                f"dense_window={windowed} + sentences": windows + sentences}
    embedder.encode(plain[:16])  # warm up the model outside every timing
    started = time.perf_counter()
    embedder.model.encode(built, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
    raw = len(built) / (time.perf_counter() - started)
    seconds = {name: build_path_seconds(embedder, texts) for name, texts in variants.items()}
    built_seconds = next((seconds[name] for name, texts in variants.items() if texts == built), None)
    ours = len(built) / (built_seconds or build_path_seconds(embedder, built))
    print(f"build throughput on {len(built)} texts ({len(chunks)} chunks, dense_window={window}, "
          f"sentences={settings.needs_sentences}): raw model.encode {raw:.1f}/s, index build path {ours:.1f}/s "
          f"({100 * ours / raw:.0f}% of raw)")
    print(f"build path in chunks per second ({len(windows) / len(chunks):.2f} windows and "
          f"{len(sentences) / len(chunks):.2f} sentences per chunk): " +
          ", ".join(f"{name} {len(chunks) / sec:.1f}/s" for name, sec in seconds.items()))


def latency(samples: list[float]) -> str:
    arr = np.array(samples)
    return f"p50 {np.percentile(arr, 50):.2f} ms, p95 {np.percentile(arr, 95):.2f} ms"


def pairwise_rows(index: SearchIndex, beir: BeirSet, vectors: np.ndarray, rng: np.random.Generator,
                  depth: int = 50, most: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Feature differences (more relevant - less relevant) among each query's top blended candidates.

    Every query gets the same total weight, however many pairs it has; at most `most` pairs are
    sampled per query.
    """
    rows: list[np.ndarray] = []
    weights: list[float] = []
    for n, (qid, text) in enumerate(beir.queries.items()):
        ids, features, blended = index.candidates(text, vectors[n], index.manifest.fusion)
        order = np.argsort(-blended, kind="stable")[:depth]
        rel = beir.qrels.get(qid, {})
        labels = np.array([rel.get(index.chunks[int(ids[i])].doc_id, 0) for i in order])
        pairs = [(a, b) for a in np.flatnonzero(labels > 0) for b in range(len(order)) if labels[a] > labels[b]]
        if not pairs:
            continue
        if len(pairs) > most:
            pairs = [pairs[k] for k in rng.choice(len(pairs), most, replace=False)]
        x = features[order].astype(np.float64)
        rows += [x[a] - x[b] for a, b in pairs]
        weights += [1.0 / len(pairs)] * len(pairs)
    return np.array(rows), np.array(weights)


def refit_fusion(embedder: SentenceEmbedder, data_dir: Path, cache_path: Path, window: int) -> None:
    """Fit the learned combiner's weights on SciFact train + NFCorpus train and print them."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(0)
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    for name in ("scifact", "nfcorpus"):
        beir = load_beir(SHARED / name, "train")
        store = IndexStore(data_dir / name, cache_path)
        store.build(beir.documents, embedder, FusionSettings(dense_window=window), built_by="bench")
        index = store.load(embedder)
        diffs, weights = pairwise_rows(index, beir, embedder.encode(list(beir.queries.values())), rng)
        parts.append((diffs, weights / weights.sum()))  # each dataset weighs the same in total
        print(f"{name} train: {len(beir.queries)} queries, {len(diffs)} pairs")
    diffs = np.vstack([d for d, _ in parts])
    weights = np.concatenate([w for _, w in parts])
    # A light ridge keeps correlated features (the z-scores and their ranks) from trading off wildly;
    # the fit barely moves between 1e-6 and 1e-4 on these splits.
    l2 = 1e-4

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        margin = diffs @ w
        grad = -(diffs * (weights / (1 + np.exp(np.clip(margin, -50, 50))))[:, None]).sum(0) + 2 * l2 * w
        return float((weights * np.logaddexp(0, -margin)).sum() + l2 * (w @ w)), grad

    start = np.zeros(len(LEARNED_FEATURES))
    start[:2] = 0.5
    fitted = minimize(loss, start, jac=True, method="L-BFGS-B").x
    fitted = fitted / (fitted[0] + fitted[1])  # the two z-score weights sum to 1: the blend's scale
    print("LEARNED_WEIGHTS = np.array([" + ", ".join(f"{w:.4f}" for w in fitted) + "], dtype=np.float32)")
    for name, w in zip(LEARNED_FEATURES, fitted, strict=True):
        print(f"  {name:14} {w:8.4f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path,
                        default=[SHARED / "scifact", SHARED / "nfcorpus"])
    parser.add_argument("--split", default="test")
    parser.add_argument("--data-dir", type=Path, default=Path(".hinge/bench"))
    parser.add_argument("--throughput-chunks", type=int, default=384)
    parser.add_argument("--dense-window", type=int, default=FusionSettings().dense_window,
                        help="word pieces per dense window (0: one vector per chunk)")
    parser.add_argument("--refit-fusion", action="store_true",
                        help="refit the learned combiner's weights on the train splits and print them")
    args = parser.parse_args()

    embedder = SentenceEmbedder()
    cache_path = args.data_dir / "cache" / "embeddings.sqlite"
    if args.refit_fusion:
        refit_fusion(embedder, args.data_dir, cache_path, args.dense_window)
        return 0
    rows: list[str] = []
    all_chunks: list[Chunk] = []
    build_settings = FusionSettings(dense_window=args.dense_window)
    for folder in args.folders:
        beir = load_beir(folder, args.split)
        store = IndexStore(args.data_dir / beir.name, cache_path)
        build = store.build(beir.documents, embedder, build_settings, built_by="bench")
        index = store.load(embedder)
        vectors = embedder.encode(list(beir.queries.values()))
        print(f"\n{beir.name}: {len(beir.documents)} documents, {build.chunks} chunks, {len(beir.queries)} "
              f"{args.split} queries; {index.dense.window_count} dense vectors (dense_window={args.dense_window}); "
              f"build {build.seconds:.1f}s ({build.embedded} texts embedded)")
        print(f"{'system':24} {'nDCG@10':>8} {'R@100':>7} {'MRR@10':>7} {'p50 ms':>7} {'p95 ms':>7}")
        for name, settings in modes(args.dense_window).items():
            report = evaluate(index, beir, args.split, settings, query_vectors=vectors)
            print(f"{name:24} {report.ndcg_at_10:8.4f} {report.recall_at_100:7.4f} {report.mrr_at_10:7.4f} "
                  f"{report.p50_ms:7.2f} {report.p95_ms:7.2f}")
            rows.append(f"{beir.name}\t{name}\t{report.ndcg_at_10}")
        all_chunks += index.chunks

    # Search latency over a 10,000-chunk index made of the benchmark chunks (vectors cached).
    from index.documents import load_beir_corpus

    docs = [d for folder in args.folders for d in load_beir_corpus(folder / "corpus.jsonl")]
    chunks = chunk_documents(docs)[:10_000]
    store = IndexStore(args.data_dir / "10k", cache_path)
    chunk_doc_ids = {c.doc_id for c in chunks}
    store.build([d for d in docs if d.id in chunk_doc_ids], embedder, build_settings, built_by="bench")
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

    throughput(embedder, all_chunks[: args.throughput_chunks], build_settings)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS): {peak_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
