"""Experiment: the longest passage (chunking's `max_words`), chosen riders first, then on BEIR's train/dev splits.

    python bench/chunking.py [--sizes 220 300 400 600] [--split train] [--data-dir .hinge/bench-chunking]

For each size it first checks whether the rider library chunks differently (if every passage text is the same,
the rider question set cannot tell the sizes apart and the benchmarks decide), then builds SciFact and NFCorpus
with that size and prints the shipped hybrid's nDCG@10 on the split asked for. Each size gets its own index and
embedding cache, seeded from the shipped benchmark cache (`.hinge/bench/cache`, made by bench/retrieval.py), so
only passages whose text changed are embedded. Read the test split only after choosing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from functools import partial
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import index.retrieval.store as store_module
from index.engine import EngineSettings, make_embedder
from index.evaluation.beir import evaluate, load_beir
from index.library.chunking import MAX_WORDS, chunk_documents
from index.library.documents import load_library
from index.retrieval.store import IndexStore

PROJECT = Path(__file__).resolve().parent.parent
SHARED = PROJECT.parent / "shared" / "benchmarks"
SHIPPED = EngineSettings()


def library_texts(max_words: int) -> list[str]:
    documents = load_library([PROJECT / "knowledge"]).documents
    return [c.embedding_text() for c in chunk_documents(documents, max_words=max_words)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[220, 300, 400, 600])
    parser.add_argument("--split", default="train", help="train (both), dev (NFCorpus only) or test, read last")
    parser.add_argument("--data-dir", type=Path, default=PROJECT / ".hinge" / "bench-chunking")
    parser.add_argument("--seed-cache", type=Path, default=PROJECT / ".hinge" / "bench" / "cache")
    args = parser.parse_args()

    shipped = library_texts(MAX_WORDS)
    embedder = make_embedder(SHIPPED.embed_model, args.data_dir)
    for size in args.sizes:
        same = library_texts(size) == shipped
        print(f"max_words {size}: rider library passages {'identical to' if same else 'DIFFERENT from'} the "
              f"shipped {MAX_WORDS}", flush=True)
        store_module.chunk_documents = partial(chunk_documents, max_words=size)  # type: ignore[assignment]
        for name in ("scifact", "nfcorpus"):
            folder = SHARED / name
            if not (folder / "qrels" / f"{args.split}.tsv").is_file():
                continue
            beir = load_beir(folder, args.split)
            cache = args.data_dir / f"{size}" / "cache" / f"{name}.sqlite"
            if not cache.exists() and (args.seed_cache / f"{name}.sqlite").exists():
                cache.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(args.seed_cache / f"{name}.sqlite", cache)
            store = IndexStore(args.data_dir / f"{size}" / name, cache)
            build = store.build(beir.documents, embedder, SHIPPED.fusion, built_by="bench")
            index = store.load(embedder)
            vectors = embedder.encode(list(beir.queries.values()))
            report = evaluate(index, beir, args.split, SHIPPED.fusion, query_vectors=vectors)
            print(f"  {name} {args.split}: {build.chunks} passages ({build.embedded} embedded), {report.queries} "
                  f"queries, nDCG@10 {report.ndcg_at_10:.4f}, R@100 {report.recall_at_100:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
