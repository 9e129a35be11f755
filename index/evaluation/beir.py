"""Retrieval evaluation on BEIR-format folders: nDCG@10, Recall@100, MRR@10 and latency."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from index.errors import HingeError
from index.library.documents import Document, load_beir_corpus
from index.retrieval.fusion import FusionSettings
from index.retrieval.search import SearchIndex

Qrels = dict[str, dict[str, int]]


class BeirSet(BaseModel):
    name: str
    documents: list[Document]
    queries: dict[str, str]
    qrels: Qrels


class RetrievalReport(BaseModel):
    name: str
    split: str
    mode: str
    queries: int
    ndcg_at_10: float
    recall_at_100: float
    mrr_at_10: float
    p50_ms: float
    p95_ms: float
    build_seconds: float | None = None


def load_beir(folder: Path, split: str = "test") -> BeirSet:
    corpus = folder / "corpus.jsonl"
    qrels_path = folder / "qrels" / f"{split}.tsv"
    for needed in (corpus, folder / "queries.jsonl", qrels_path):
        if not needed.is_file():
            raise HingeError(f"{needed} is missing: not a BEIR folder with a {split!r} split")
    qrels: Qrels = {}
    with qrels_path.open(encoding="utf-8") as handle:
        for line in handle:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or parts[0] == "query-id":
                continue
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    queries: dict[str, str] = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if str(row["_id"]) in qrels:
                queries[str(row["_id"])] = str(row["text"])
    return BeirSet(name=folder.name, documents=load_beir_corpus(corpus), queries=queries, qrels=qrels)


def ndcg_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    dcg = sum((2 ** relevant.get(d, 0) - 1) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum((2 ** g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 100) -> float:
    wanted = {d for d, g in relevant.items() if g > 0}
    return len(wanted & set(ranked[:k])) / len(wanted) if wanted else 0.0


def mrr_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    for i, d in enumerate(ranked[:k]):
        if relevant.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def rank_documents(index: SearchIndex, text: str, vector: np.ndarray | None, depth: int,
                   fusion: FusionSettings | None = None) -> list[str]:
    """Documents ranked by their best chunk (a document may be split into several chunks)."""
    hits = index.search_with_vector(text, vector, depth * 3, fusion)
    seen: dict[str, None] = {}
    for hit in hits:
        seen.setdefault(hit.chunk.doc_id, None)
    return list(seen)[:depth]


def evaluate(index: SearchIndex, beir: BeirSet, split: str = "test", fusion: FusionSettings | None = None,
             query_vectors: np.ndarray | None = None) -> RetrievalReport:
    settings = fusion or index.fusion
    ids = list(beir.queries)
    texts = [beir.queries[q] for q in ids]
    depth = 100
    scores: list[tuple[float, float, float]] = []
    latencies: list[float] = []
    for n, qid in enumerate(ids):
        started = time.perf_counter()
        if query_vectors is not None:
            vector = query_vectors[n]
        else:
            vector = index.embed_query(texts[n]) if settings.mode != "lexical" else None
        ranked = rank_documents(index, texts[n], vector, depth, settings)
        latencies.append((time.perf_counter() - started) * 1000)
        rel = beir.qrels.get(qid, {})
        scores.append((ndcg_at(ranked, rel), recall_at(ranked, rel), mrr_at(ranked, rel)))
    arr = np.array(scores) if scores else np.zeros((1, 3))
    lat = np.array(latencies) if latencies else np.zeros(1)
    return RetrievalReport(
        name=beir.name, split=split, mode=settings.mode, queries=len(ids),
        ndcg_at_10=round(float(arr[:, 0].mean()), 4), recall_at_100=round(float(arr[:, 1].mean()), 4),
        mrr_at_10=round(float(arr[:, 2].mean()), 4),
        p50_ms=round(float(np.percentile(lat, 50)), 2), p95_ms=round(float(np.percentile(lat, 95)), 2),
    )
