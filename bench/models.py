"""Model benchmark: the shipped pair (MiniLM + bge-small int8) against each of its halves in the full pipeline.

    python bench/models.py [--models pair,minilm,bge] [--out /tmp/models.json]

For each model, in a fresh data dir under /tmp and with the bot's shipped fusion settings (the
`EngineSettings` defaults, exactly as `build_engine` uses them): build throughput on
the shipped library; then, in a second process that loads the model and the built index, its RSS,
the rider question set (tune and holdout: hit@1, hit@3 ignoring declines, hit@3 of answered
questions, declines), warm answer latency, and BEIR test nDCG@10 on SciFact and NFCorpus.

bge alone is measured twice on the same index: with no query prefix (as the pair embeds) and with its
search instruction put before every text the search path embeds (the `QueryPrefixed` wrapper: queries,
and the off-topic guard's topic phrases, which it compares with queries). The decline policy was fitted
on the pair's scores, so each model is also measured with the policy refitted on its own tune part.

Each model runs in its own process so that one model's memory never counts against the other's RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.answers import fitted_policy
from index.answers.composer import AnswerComposer
from index.engine import Engine, EngineSettings
from index.engine import make_embedder as shipped_embedder
from index.evaluation.beir import BeirSet, evaluate, load_beir
from index.evaluation.questions import evaluate_questions, load_questions, ranked_documents
from index.retrieval.bge_model import BgeEmbedder
from index.retrieval.embedding import BUNDLED_MODEL, Embedder, Vectors
from index.retrieval.fusion import FusionSettings
from index.retrieval.joint import JointEmbedder
from index.retrieval.store import IndexStore

PROJECT = Path(__file__).resolve().parent.parent
SHARED = PROJECT.parent / "shared" / "benchmarks"
QUESTIONS = PROJECT / "tests" / "data" / "questions.jsonl"
LATENCY_QUESTION = "how do I keep my back flat when I hinge on the bike"
LATENCY_ROUNDS = 60


QUERY_PREFIX = "Represent this sentence for searching relevant passages: "


class QueryPrefixed:
    """bge with its search instruction before every text the search path embeds (queries)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    @property
    def model_id(self) -> str:
        return str(self.inner.model_id)  # the passages are the same, so the index built without it loads

    @property
    def dimension(self) -> int:
        return int(self.inner.dimension)

    def encode(self, texts: Sequence[str], batch_size: int = 16) -> Vectors:
        vectors: Vectors = self.inner.encode([QUERY_PREFIX + t for t in texts], batch_size=batch_size)
        return vectors


SHIPPED = EngineSettings()  # exactly what the bot ships


def make_embedder(model: str) -> Embedder:
    """pair: what the bot ships; minilm and bge: its halves alone."""
    pair = shipped_embedder(BUNDLED_MODEL, Path(tempfile.gettempdir()))
    if model == "pair":
        return pair
    assert isinstance(pair, JointEmbedder)
    return pair.members[0] if model == "minilm" else BgeEmbedder()


def engine_for(model: str, data_dir: Path) -> tuple[Engine, Embedder]:
    embedder = make_embedder(model)
    engine = Engine(data_dir, PROJECT / "knowledge", embedder, fusion=SHIPPED.fusion)
    return engine, embedder


def rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MB."""
    current = 0.0
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1024
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_build(model: str, data_dir: Path) -> dict[str, Any]:
    engine, embedder = engine_for(model, data_dir)
    embedder.encode(["warm up the model"])  # model load is not build throughput
    report = engine.build(built_by="bench")
    return {"chunks": report.chunks, "embedded": report.embedded, "seconds": report.seconds,
            "passages_per_s": report.chunks / report.seconds}


def rider(index: Any, composer: AnswerComposer, cases: Sequence[Any]) -> dict[str, Any]:
    rows = []
    for case in cases:
        answer = composer.ask(index, case.question)
        ranked = ranked_documents(index, composer, case.question) if case.on_topic else []
        rows.append((case, answer, ranked))
    out: dict[str, Any] = {}
    for part in ("tune", "holdout"):
        on = [(c, a, r) for c, a, r in rows if c.split == part and c.on_topic]
        off = [(c, a, r) for c, a, r in rows if c.split == part and not c.on_topic]
        hit1 = [bool(r) and r[0] in c.expected for c, _, r in on]
        hit3 = [bool(set(r[:3]) & set(c.expected)) for c, _, r in on]
        out[part] = {
            "on_topic": len(on), "off_topic": len(off),
            "hit1": float(np.mean(hit1)) if on else 0.0,
            "hit3": float(np.mean(hit3)) if on else 0.0,
            # What a rider actually gets: the right document in the top 3 of an answer that was given.
            "hit3_answered": float(np.mean([h and a.answered for h, (_, a, _) in zip(hit3, on, strict=True)]))
            if on else 0.0,
            "on_declined": float(np.mean([not a.answered for _, a, _ in on])) if on else 0.0,
            "off_declined": float(np.mean([not a.answered for _, a, _ in off])) if off else 0.0,
        }
    return out


def sampled(beir: BeirSet, docs: int, seed: int = 0) -> BeirSet:
    """A smaller BEIR set for a busy machine: random test queries whose relevant documents fill at most
    half of `docs`, plus random other documents of the corpus up to `docs` (0: the whole set).

    Every model sees the same sample (fixed seed), so the comparison is fair; the figures are higher
    than full-corpus ones (fewer distractors) and are not comparable with published nDCG@10.
    """
    if not docs or docs >= len(beir.documents):
        return beir
    rng = np.random.default_rng(seed)
    qids = list(beir.queries)
    rng.shuffle(qids)
    keep: set[str] = set()
    chosen: list[str] = []
    for qid in qids:
        relevant = {d for d, grade in beir.qrels.get(qid, {}).items() if grade > 0}
        if chosen and len(keep | relevant) > docs // 2:
            continue
        keep |= relevant
        chosen.append(qid)
    others = [d.id for d in beir.documents if d.id not in keep]
    keep |= {others[i] for i in rng.choice(len(others), min(len(others), docs - len(keep)), replace=False)}
    return BeirSet(name=beir.name, documents=[d for d in beir.documents if d.id in keep],
                   queries={q: beir.queries[q] for q in chosen}, qrels={q: beir.qrels[q] for q in chosen})


def beir_figures(model_dir: Path, embedder: Embedder, query_embedder: Embedder,
                 fusion: FusionSettings, docs: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("nfcorpus", "scifact"):  # the smaller corpus first
        beir = sampled(load_beir(SHARED / name, "test"), docs)
        store = IndexStore(model_dir / "beir" / name)
        entry: dict[str, Any] = {}
        if store.current_folder() is None:  # built once per model, by the first variant
            build = store.build(beir.documents, embedder, fusion, built_by="bench")
            entry.update(build_chunks=build.chunks, build_seconds=build.seconds)
        index = store.load(query_embedder, fusion)
        vectors = query_embedder.encode(list(beir.queries.values()))
        report = evaluate(index, beir, "test", fusion, query_vectors=vectors)
        entry.update(ndcg10=report.ndcg_at_10, recall100=report.recall_at_100, queries=report.queries,
                     documents=len(beir.documents))
        out[name] = entry
        print(f"  beir {name}: {json.dumps(entry)}", file=sys.stderr, flush=True)
    return out


def child_run(model: str, data_dir: Path, skip_beir: bool, beir_docs: int) -> dict[str, Any]:
    engine, embedder = engine_for(model, data_dir)
    started = time.perf_counter()
    engine.load(build_if_missing=False)
    composer = AnswerComposer()
    composer.ask(engine.index, "warm up the model")
    load_seconds = time.perf_counter() - started
    current, peak = rss_mb()  # the bot's state: model and index loaded, one question answered
    result: dict[str, Any] = {"rss_mb": current, "peak_rss_mb": peak, "load_seconds": load_seconds, "variants": {}}
    variants: dict[str, Embedder] = {
        "pair": {"MiniLM + bge (shipped)": embedder}, "minilm": {"MiniLM": embedder},
        "bge": {"bge int8": embedder, "bge int8 + query prefix": QueryPrefixed(embedder)}}[model]
    cases = load_questions(QUESTIONS)
    fusion = SHIPPED.fusion
    for label, query_embedder in variants.items():
        index = engine.store.load(query_embedder, fusion)
        composer = AnswerComposer()  # its off-topic guard caches topic vectors by model id
        composer.ask(index, "warm up the model")
        figures: dict[str, Any] = {"rider": rider(index, composer, cases)}
        report = evaluate_questions(index, composer, cases)
        figures["set_p50_ms"], figures["set_p95_ms"] = report.p50_ms, report.p95_ms
        times = [composer.ask(index, LATENCY_QUESTION).elapsed_ms for _ in range(LATENCY_ROUNDS)]
        figures["one_p50_ms"] = float(np.percentile(times, 50))
        figures["one_p95_ms"] = float(np.percentile(times, 95))
        # The decline policy was fitted on MiniLM's scores; refitted on this model's tune part (as
        # `bench/answers.py --fit` does for MiniLM), the comparison of what riders get is a fair one.
        refit, *_ = fitted_policy(index, composer, cases)
        figures["refit_rider"] = rider(index, AnswerComposer(policy=refit), cases)
        figures["refit_policy"] = {"bias": refit.bias, "weights": list(refit.weights)}
        print(f"[{model}] {label} (rider, latency): {json.dumps(figures)}", file=sys.stderr, flush=True)
        if not skip_beir:
            figures["beir"] = beir_figures(data_dir, embedder, query_embedder, fusion, beir_docs)
        result["variants"][label] = figures
        print(f"[{model}] {label}: {json.dumps(figures)}", file=sys.stderr, flush=True)
    return result


def run_child(args: Sequence[str]) -> dict[str, Any]:
    # The child's stderr (its per-variant figures as they come) passes straight through.
    proc = subprocess.run([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"child {args} failed with {proc.returncode}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def rider_columns(rider: dict[str, Any]) -> str:
    """The table's rider columns, tune then holdout."""
    return " ".join(f"{p['hit1']:8.3f} {p['hit3']:6.3f} {p['hit3_answered']:6.3f} "
                    f"{p['on_declined']:5.3f}/{p['off_declined']:5.3f}" for p in (rider["tune"], rider["holdout"]))


def table(results: dict[str, dict[str, Any]]) -> str:
    head = (f"{'model':26} {'tune h@1':>8} {'h@3':>6} {'h@3ans':>6} {'decl on/off':>11} "
            f"{'hold h@1':>8} {'h@3':>6} {'h@3ans':>6} {'decl on/off':>11} {'SciFact':>7} {'NFCorp':>7} "
            f"{'set p50/p95 ms':>14} {'1q p50/p95 ms':>13} {'build p/s':>9} {'RSS MB':>6}")
    lines = [head, "-" * len(head)]
    for res in results.values():
        for label, fig in res["run"]["variants"].items():
            beir = fig.get("beir", {})
            lines.append(
                f"{label:26} {rider_columns(fig['rider'])} "
                f"{beir.get('scifact', {}).get('ndcg10', float('nan')):7.4f} "
                f"{beir.get('nfcorpus', {}).get('ndcg10', float('nan')):7.4f} "
                f"{fig['set_p50_ms']:6.1f}/{fig['set_p95_ms']:6.1f} {fig['one_p50_ms']:6.1f}/{fig['one_p95_ms']:5.1f} "
                f"{res['build']['passages_per_s']:9.1f} {res['run']['rss_mb']:6.0f}")
            if "refit_rider" in fig:
                lines.append(f"{'  decline policy refitted':26} {rider_columns(fig['refit_rider'])}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="pair,minilm,bge")
    parser.add_argument("--out", type=Path, default=None, help="also write the raw figures as JSON here")
    parser.add_argument("--skip-beir", action="store_true")
    parser.add_argument("--beir-docs", type=int, default=0,
                        help="sample each BEIR corpus down to this many documents (0: the whole test set)")
    parser.add_argument("--reuse", action="append", default=[], metavar="MODEL=DIR",
                        help="a data dir where this model's library index is already built: its build "
                        "figures are read from the manifest instead of building again")
    parser.add_argument("--child", choices=("build", "run"), help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        figures = child_build(args.model, args.data_dir) if args.child == "build" else \
            child_run(args.model, args.data_dir, args.skip_beir, args.beir_docs)
        print(json.dumps(figures))
        return 0

    results: dict[str, dict[str, Any]] = {}
    reuse = dict(item.split("=", 1) for item in args.reuse)
    for model in args.models.split(","):
        if model in reuse:
            data_dir = Path(reuse[model])
            manifest = IndexStore(data_dir).read_manifest()
            assert manifest is not None, f"no index in {data_dir}"
            build = {"chunks": manifest.chunk_count, "embedded": manifest.embedded,
                     "seconds": manifest.build_seconds, "passages_per_s": manifest.chunk_count / manifest.build_seconds}
        else:
            data_dir = Path(tempfile.mkdtemp(prefix=f"hinge-models-{model}-", dir="/tmp"))
            build = run_child(["--child", "build", "--model", model, "--data-dir", str(data_dir)])
        print(f"{model}: data dir {data_dir}, build {json.dumps(build)}", file=sys.stderr, flush=True)
        run = run_child(["--child", "run", "--model", model, "--data-dir", str(data_dir),
                         "--beir-docs", str(args.beir_docs), *(["--skip-beir"] if args.skip_beir else [])])
        results[model] = {"build": build, "run": run, "data_dir": str(data_dir)}
        if args.out:
            args.out.write_text(json.dumps(results, indent=1))
    print(table(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
