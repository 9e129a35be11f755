"""Hybrid scoring: dense and BM25 scores fused after z-score normalisation, with an optional
pseudo-relevance feedback round on the dense side.

Why z-scores: raw cosine and BM25 scores live on unrelated scales, and rank fusion throws the
score gaps away. Normalising each retriever by the spread of its scores keeps the gaps and makes
one weight meaningful across queries. The weight, the feedback settings and the reference set of
the normalisation were chosen on the train/dev splits of the benchmarks (see bench/retrieval.py),
never on test.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

Floats = npt.NDArray[np.float32]
Ids = npt.NDArray[np.int64]


class FusionSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    mode: str = Field(default="hybrid", pattern="^(hybrid|dense|lexical)$")
    dense_weight: float = Field(default=0.5, ge=0.0, le=1.0)
    candidates: int = Field(default=100, ge=1)
    feedback_docs: int = Field(default=3, ge=0, description="top fused chunks fed back to the dense query")
    # 0.5 -> 0.7 once the combiner had its sentence and word-pair features, measured nDCG@10 (SciFact
    # train / NFCorpus train / NFCorpus dev): 0.5 0.7512/0.3690/0.3503, 0.6 0.7527/0.3698/0.3497,
    # 0.7 0.7537/0.3708/0.3504, 0.8 0.7533/0.3708/0.3494, 1.0 0.7514/0.3711/0.3502.
    feedback_weight: float = Field(default=0.7, ge=0.0, description="weight of the feedback centroid added to "
                                   "the query vector")
    # "pool": each side is normalised over the whole fused pool (the union of both sides' top
    # candidates), "top": over its own top candidates only. Measured on the tuning splits, "pool"
    # gives nDCG@10 0.7394 -> 0.7419 (SciFact train) and 0.3581 -> 0.3617 (NFCorpus train).
    reference: str = Field(default="pool", pattern="^(pool|top)$",
                           description="the scores each side's z-normalisation takes its mean and spread from")
    # Off by default: a reordering step by the best sentence alone, measured before the learned
    # combiner took the same similarity as one of its features (+0.004 nDCG@10 on SciFact train then).
    sentence_weight: float = Field(default=0.0, ge=0.0, le=1.0,
                                   description="share of the best single-sentence match in the final order")
    rerank_depth: int = Field(default=20, ge=1, description="top passages reordered by their best sentence")
    # Build-time: 0 embeds each chunk as one vector (the model reads only its first 256 word
    # pieces, and half the benchmark chunks are longer); above 0, chunks longer than this many word
    # pieces are embedded as windows covering their whole text and score as their best window
    # (index/windows.py). Measured nDCG@10 with the learned combiner, 0 -> 128: SciFact train
    # 0.7424 -> 0.7458, NFCorpus train 0.3680 -> 0.3692, NFCorpus dev 0.3474 -> 0.3517, for 2.8
    # vectors per chunk (builds embed that many more texts, each shorter).
    dense_window: int = Field(default=128, ge=0, description="word pieces per dense window (0: one vector per chunk)")
    # The windows' mean measured a little better than the best window with the learned combiner
    # (SciFact train 0.7454 -> 0.7458, NFCorpus train 0.3690 -> 0.3692, dev 0.3507 -> 0.3517) and is
    # precomputed at load, so it costs nothing per query.
    window_feedback: str = Field(default="mean", pattern="^(best|mean)$",
                                 description="a windowed chunk's vector in the feedback round: its window "
                                 "closest to the query, or its windows' mean")
    # "learned": the final order is LEARNED_WEIGHTS over candidate_features(); "linear": the
    # dense_weight blend alone. Measured nDCG@10 (linear -> learned): SciFact train 0.7419 -> 0.7424
    # (0.7423 5-fold cross-validated), NFCorpus train 0.3617 -> 0.3680, NFCorpus dev 0.3400 -> 0.3474.
    combiner: str = Field(default="learned", pattern="^(linear|learned)$",
                          description="how the final pool is ordered: learned feature weights or the plain blend")

    @property
    def needs_sentences(self) -> bool:
        """Whether an index searched with these settings must hold every passage's sentence vectors."""
        return (self.mode == "hybrid" and self.combiner == "learned") or self.sentence_weight > 0


def zscore(values: Floats, reference: Floats) -> Floats:
    if reference.size < 2:
        return np.zeros_like(values)
    std = float(reference.std())
    if std < 1e-9:
        return np.zeros_like(values)
    return ((values - float(reference.mean())) / std).astype(np.float32)


def top_ids(scores: Floats, k: int) -> Ids:
    """Ids of the k highest scores, best first (positive scores only: zero means no match)."""
    positive = np.flatnonzero(scores > 0)
    if positive.size > k:
        part = np.argpartition(-scores[positive], k - 1)[:k]
        positive = positive[part]
    return positive[np.argsort(-scores[positive], kind="stable")].astype(np.int64)


def combine(dense: Floats, dense_reference: Floats, lexical: Floats, lexical_reference: Floats,
            weight: float) -> Floats:
    """Fused scores of one candidate pool: each side z-normalised by its own top candidates."""
    dense_z = zscore(dense, dense_reference)
    lexical_z = zscore(lexical, lexical_reference)
    return (weight * dense_z + (1.0 - weight) * lexical_z).astype(np.float32)


def fuse(dense: Floats, dense_top: Floats, lexical: Floats, lexical_top: Floats, weight: float,
         reference: str = "pool") -> Floats:
    """Fused scores of one candidate pool, normalised over the pool or over each side's top list.

    Why the pool by default: a side's own top list is, by construction, where that side scores
    highest, so its mean sits high and its spread is narrow; the other side's candidates, scored
    far below it, then get large negative z-scores that one weak side alone can sink. Over the
    pool both sides are measured against the same passages, so a z-score means the same thing
    on both sides.
    """
    if reference == "pool":
        return combine(dense, dense, lexical, lexical, weight)
    return combine(dense, dense_top, lexical, lexical_top, weight)


def ranks(ids: Ids) -> dict[int, int]:
    return {int(i): n + 1 for n, i in enumerate(ids)}


# The per-candidate features of the learned combiner, in the order of LEARNED_WEIGHTS.
LEARNED_FEATURES = (
    "dense_z",        # feedback-query cosine, z-normalised over the pool
    "lexical_z",      # BM25, z-normalised over the pool
    "dense_rank",     # 60 / (60 + rank) in the dense top list, 0 when absent
    "lexical_rank",   # 60 / (60 + rank) in the BM25 top list, 0 when absent
    "plain_dense_z",  # the query's own cosine (before feedback), z-normalised over the pool
    "coverage",       # idf-weighted share of the query's terms the passage contains
    "first_chunk",    # 1 for a document's first passage (title and opening)
    "sibling",        # best blended score of another passage of the same document in the pool
    "both_lists",     # 1 when both top lists hold the passage
    "sentence_z",     # the query's cosine with the passage's closest sentence, z-normalised over the pool
    "word_pairs",     # idf-weighted share of the query's adjacent word pairs the passage holds
)
# Fitted by `python bench/retrieval.py --refit-fusion`: pairwise logistic regression (light L2) on
# (relevant, less relevant) pairs among each query's top 50 blended candidates, SciFact train and
# NFCorpus train pooled with each dataset given equal total weight, every query equal within its
# dataset; scaled so the two z-score weights sum to 1, which keeps scores on the blend's scale.
# Test splits were never used. Fitted with the shipped defaults (dense windows of 128 pieces).
# The two last features, measured on the same candidate pools (SciFact train 5-fold cross-validated
# / NFCorpus train / NFCorpus dev, nDCG@10): nine features 0.7464 / 0.3674 / 0.3482, with
# sentence_z 0.7490 / 0.3687 / 0.3511, with word_pairs 0.7483 / 0.3677 / 0.3498, with both
# 0.7507 / 0.3683 / 0.3518.
LEARNED_WEIGHTS = np.array([0.5819, 0.4181, 1.1000, -0.0354, -0.2185, 0.3420, -0.1277, 0.0065, -0.3409, 0.1802,
                            0.3830], dtype=np.float32)
NO_SIBLING = -3.0


def sibling_best(blended: Floats, docs: npt.NDArray[np.int64]) -> Floats:
    """For each candidate, the best blended score of another candidate from the same document.

    A document with several strong passages is more likely on topic than one lucky passage;
    NO_SIBLING (well below any z-blend) stands for "no other passage in the pool".
    """
    out = np.full(len(blended), NO_SIBLING, dtype=np.float32)
    order = np.argsort(-blended, kind="stable")
    best: dict[int, int] = {}
    second: dict[int, int] = {}
    for i in order:
        d = int(docs[i])
        if d not in best:
            best[d] = int(i)
        elif d not in second:
            second[d] = int(i)
    for i in range(len(blended)):
        d = int(docs[i])
        other = second.get(d) if best[d] == i else best[d]
        if other is not None:
            out[i] = blended[other]
    return out


def rank_feature(ids: Ids, top: Ids) -> Floats:
    """60 / (60 + rank) of each id in the `top` list, 0 for ids outside it (the RRF shape)."""
    position = ranks(top)
    return np.array([60.0 / (60.0 + position[int(i)]) if int(i) in position else 0.0 for i in ids],
                    dtype=np.float32)


def candidate_features(ids: Ids, dense: Floats, lexical: Floats, plain_dense: Floats, dense_ids: Ids,
                       lexical_ids: Ids, coverage: Floats, first_chunk: npt.NDArray[np.bool_],
                       docs: npt.NDArray[np.int64], blended: Floats, sentence: Floats,
                       word_pairs: Floats) -> npt.NDArray[np.float32]:
    """The LEARNED_FEATURES matrix (one row per candidate in `ids`)."""
    in_dense = np.isin(ids, dense_ids)
    in_lexical = np.isin(ids, lexical_ids)
    return np.column_stack([
        zscore(dense, dense), zscore(lexical, lexical),
        rank_feature(ids, dense_ids), rank_feature(ids, lexical_ids),
        zscore(plain_dense, plain_dense), coverage, first_chunk.astype(np.float32),
        sibling_best(blended, docs), (in_dense & in_lexical).astype(np.float32),
        zscore(sentence, sentence), word_pairs,
    ]).astype(np.float32)


def learned_scores(features: npt.NDArray[np.float32], weights: Floats = LEARNED_WEIGHTS) -> Floats:
    return (features @ weights).astype(np.float32)
