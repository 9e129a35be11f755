from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.coaching.grouping import SAME_QUESTION, closest, group, same_question

PAIRS = Path(__file__).resolve().parent.parent / "data" / "question_pairs.jsonl"


def unit(*rows: list[float]) -> np.ndarray:
    matrix = np.array(rows, dtype=np.float32)
    return np.asarray(matrix / np.linalg.norm(matrix, axis=1, keepdims=True), dtype=np.float32)


def at_angle(cosine: float) -> np.ndarray:
    """A unit vector in 2-D whose cosine with (1, 0) is `cosine`."""
    return np.array([cosine, np.sqrt(1 - cosine**2)], dtype=np.float32)


def test_same_question_is_the_threshold_on_the_cosine() -> None:
    x = np.array([1.0, 0.0], dtype=np.float32)
    assert 0.5 < SAME_QUESTION < 0.95
    assert same_question(x, x)
    assert same_question(x, at_angle(SAME_QUESTION + 0.01))
    assert not same_question(x, at_angle(SAME_QUESTION - 0.01))
    assert same_question(x, at_angle(0.5), threshold=0.4)


def test_closest_returns_the_best_candidate_at_or_above_the_threshold() -> None:
    x = np.array([1.0, 0.0], dtype=np.float32)
    candidates = np.stack([at_angle(0.2), at_angle(0.96), at_angle(0.9)])
    found = closest(x, candidates)
    assert found is not None
    row, score = found
    assert row == 1 and score == pytest.approx(0.96, abs=1e-5)
    assert closest(x, np.stack([at_angle(0.2), at_angle(SAME_QUESTION - 0.05)])) is None
    assert closest(x, np.zeros((0, 2), dtype=np.float32)) is None
    with pytest.raises(ValueError):
        closest(x, x)


def test_group_joins_the_first_matching_lead_and_sorts_largest_first() -> None:
    vectors = unit([1, 0, 0], [0, 1, 0], [0, 0.99, 0.1], [1, 0.05, 0], [0, 1, 0.05], [0, 0, 1])
    assert group(vectors) == [[1, 2, 4], [0, 3], [5]]
    assert group(np.zeros((0, 3), dtype=np.float32)) == []


def test_group_compares_with_the_lead_not_with_the_last_member() -> None:
    # b is near a and c is near b, but c is not near a: a chain must not pull c into a's group.
    a, b, c = at_angle(1.0), at_angle(0.85), at_angle(0.45)
    assert float(b @ c) >= SAME_QUESTION and float(a @ c) < SAME_QUESTION
    assert group(np.stack([a, b, c])) == [[0, 1], [2]]


def test_group_keeps_lead_order_for_equal_sizes_and_honours_the_threshold() -> None:
    assert group(unit([1, 0, 0], [0, 1, 0], [0, 0, 1])) == [[0], [1], [2]]
    assert group(unit([0, 1, 0], [1, 0, 0], [1, 0.05, 0])) == [[1, 2], [0]]
    diagonal = unit([1, 0], [1, 1])  # cosine 0.707
    assert group(diagonal, threshold=0.6) == [[0, 1]]
    assert group(diagonal, threshold=0.8) == [[0], [1]]


def load_pairs() -> list[dict[str, Any]]:
    return [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_the_labelled_pairs_are_well_formed() -> None:
    pairs = load_pairs()
    assert len(pairs) >= 60
    for pair in pairs:
        assert set(pair) == {"a", "b", "same", "split"}
        assert isinstance(pair["same"], bool) and pair["split"] in ("tune", "holdout")
        assert pair["a"].strip() and pair["b"].strip() and pair["a"] != pair["b"]
    assert 0.3 <= sum(p["same"] for p in pairs) / len(pairs) <= 0.5
    assert 0.25 <= sum(p["split"] == "holdout" for p in pairs) / len(pairs) <= 0.4


@pytest.mark.slow
def test_real_model_merges_precisely_at_the_shipped_threshold(real_embedder) -> None:  # type: ignore[no-untyped-def]
    pairs = load_pairs()
    assert len(pairs) >= 40
    texts = sorted({p["a"] for p in pairs} | {p["b"] for p in pairs})
    vectors = dict(zip(texts, real_embedder.encode(texts), strict=True))
    merged = [p for p in pairs if same_question(vectors[p["a"]], vectors[p["b"]])]
    assert merged, "the shipped threshold merges nothing"
    precision = sum(p["same"] for p in merged) / len(merged)
    assert precision >= 0.9, [(p["a"], p["b"]) for p in merged if not p["same"]]
