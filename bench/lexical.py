"""Experiment: bm25s's BM25 variants for the lexical side, chosen riders first, then on BEIR's train/dev splits.

    python bench/lexical.py [--methods lucene robertson atire bm25l bm25+] [--split train] [--data-dir .hinge]

Each variant's lexical index is built in memory over the same passages the shipped index holds (k1 and b as
shipped) and swapped into the loaded index; the vectors are the shipped ones. The rider set is answered in full
(hit@1, hit@3, declines and leads, tune and held-out); then SciFact and NFCorpus are scored on the split asked for,
from the benchmark indexes bench/retrieval.py builds (`.hinge/bench`). Read the test split only after choosing.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bm25s

from index.answers.composer import AnswerComposer
from index.engine import EngineSettings, build_engine, make_embedder
from index.evaluation.beir import evaluate, load_beir
from index.evaluation.questions import evaluate_questions, lead_share, load_leads, load_questions
from index.retrieval.lexical import LexicalIndex, Tokenizer
from index.retrieval.search import SearchIndex
from index.retrieval.store import IndexStore

PROJECT = Path(__file__).resolve().parent.parent
SHARED = PROJECT.parent / "shared" / "benchmarks"
SHIPPED = EngineSettings()


def with_method(index: SearchIndex, method: str) -> None:
    """Swap in a lexical index of `method` over the same texts the store indexes (title first)."""
    tokenize = Tokenizer()
    texts = [c.text if c.text.startswith(c.title) else f"{c.title}\n{c.text}" for c in index.chunks]
    model = bm25s.BM25(k1=LexicalIndex.K1, b=LexicalIndex.B, method=method)
    model.index([tokenize(t) or ["__empty__"] for t in texts], show_progress=False)
    index.lexical = LexicalIndex(model)


def riders(data_dir: Path, methods: list[str]) -> None:
    engine = build_engine(data_dir, PROJECT / "knowledge")
    index = engine.load()
    cases = load_questions(PROJECT / "tests" / "data" / "questions.jsonl")
    leads = load_leads(PROJECT / "tests" / "data" / "leads.jsonl")
    for method in methods:
        with_method(index, method)
        composer = AnswerComposer()
        composer.warm(index)
        report = evaluate_questions(index, composer, cases)
        parts = "  ".join(f"{p.name} hit@1 {p.hit_at_1:.3f} hit@3 {p.hit_at_3:.3f} declined {p.off_topic_declined:.3f} "
                          f"wrongly {p.on_topic_declined:.3f}" for p in report.parts if p.name != "all")
        shares = []
        for split in ("tune", "holdout"):
            part = [c for c in leads if c.split == split]
            _, wrong = lead_share(index, composer, part)
            shares.append(f"{len(part) - len(wrong)}/{len(part)}")
        print(f"riders {method:9}: {parts}  leads {' '.join(shares)}", flush=True)


def benchmarks(data_dir: Path, methods: list[str], split: str) -> None:
    bench = data_dir / "bench"
    embedder = make_embedder(SHIPPED.embed_model, bench)
    for name in ("scifact", "nfcorpus"):
        splits = [s for s in ([split] if split != "train" or name == "scifact" else ["train", "dev"])
                  if (SHARED / name / "qrels" / f"{s}.tsv").is_file()]
        if not splits:
            continue
        index = IndexStore(bench / name, bench / "cache" / f"{name}.sqlite").load(embedder)
        sets = {s: load_beir(SHARED / name, s) for s in splits}
        vectors = {s: embedder.encode(list(b.queries.values())) for s, b in sets.items()}
        for method in methods:
            with_method(index, method)
            results = {s: evaluate(index, sets[s], s, SHIPPED.fusion, query_vectors=vectors[s]) for s in splits}
            scores = [f"{s} nDCG@10 {r.ndcg_at_10:.4f}" for s, r in results.items()]
            print(f"{name} {method:9}: {', '.join(scores)}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["lucene", "robertson", "atire", "bm25l", "bm25+"])
    parser.add_argument("--split", default="train", help="train (SciFact train, NFCorpus train and dev) or test")
    parser.add_argument("--data-dir", type=Path, default=PROJECT / ".hinge")
    args = parser.parse_args()
    riders(args.data_dir, args.methods)
    benchmarks(args.data_dir, args.methods, args.split)
    return 0


if __name__ == "__main__":
    sys.exit(main())
