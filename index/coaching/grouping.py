"""Grouping rider questions by meaning, so the coach queue shows one card with "3 riders asked this"
instead of three cards for one need.

Two questions are the same when the cosine of their L2-normalised embeddings (the bundled pair,
all-MiniLM-L6-v2 and bge-small: the mean of the two models' cosines) reaches SAME_QUESTION. The
threshold was measured on our own labelled pairs (tests/data/question_pairs.jsonl, riders' Discord
wording with many hard negatives: same topic words, different need); bench/grouping.py prints the
whole precision/recall curve.

Precision matters more than recall here: a missed merge only costs the coach one extra card,
while a wrong merge sends a rider the answer to somebody else's question.
"""

from __future__ import annotations

import numpy as np

from index.retrieval.embedding import Vectors

# Rule: the lowest threshold on the 0.50..0.95 grid (step 0.025) whose precision on the tune split
# is >= 0.95 and stays >= 0.95 at every higher grid threshold, so a lucky isolated point cannot be
# chosen. Measured by bench/grouping.py on 99 pairs (65 tune, 34 holdout) with the pair: at 0.80 tune
# precision 1.000 recall 0.250, holdout precision 0.857 (6 of 7 merges right) recall 0.429; at 0.775 tune
# precision falls to 0.909. The pair's cosines run higher than MiniLM's alone, whose rule gave 0.70 (tune
# 1.000 / 0.357, holdout 0.900 / 0.643): the pair groups a little less, as precisely. The typical wrong
# merge is the same sentence about another body part ("knee hurts when i do rdls" / "lower back hurts when
# i do rdls"), which no threshold that still merges separates.
SAME_QUESTION: float = 0.80


def same_question(a: Vectors, b: Vectors, threshold: float = SAME_QUESTION) -> bool:
    """Whether two L2-normalised question vectors ask the same thing."""
    return float(np.dot(a, b)) >= threshold


def closest(vector: Vectors, candidates: Vectors, threshold: float = SAME_QUESTION) -> tuple[int, float] | None:
    """(row, similarity) of the candidate most like `vector`, or None when none reaches `threshold`.

    `candidates` is an (n, d) matrix of L2-normalised rows; an empty matrix gives None.
    """
    if candidates.ndim != 2:
        raise ValueError(f"candidates must be an (n, d) matrix, got shape {candidates.shape}")
    if len(candidates) == 0:
        return None
    scores = candidates @ vector
    best = int(np.argmax(scores))
    score = float(scores[best])
    return (best, score) if score >= threshold else None


def group(vectors: Vectors, threshold: float = SAME_QUESTION) -> list[list[int]]:
    """Row numbers of `vectors` grouped greedily, largest group first.

    Each row joins the first group whose lead (its first row) it matches, else leads a new group.
    Comparing with the lead only, not every member, stops chains of near neighbours drifting from
    one question to a different one. Groups of equal size keep the order of their leads.
    """
    if vectors.ndim != 2:
        raise ValueError(f"vectors must be an (n, d) matrix, got shape {vectors.shape}")
    leads: list[int] = []
    groups: list[list[int]] = []
    for row in range(len(vectors)):
        if leads:
            matches = np.flatnonzero(vectors[leads] @ vectors[row] >= threshold)
            if len(matches):
                groups[int(matches[0])].append(row)
                continue
        leads.append(row)
        groups.append([row])
    return sorted(groups, key=len, reverse=True)
