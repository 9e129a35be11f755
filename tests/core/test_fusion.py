from __future__ import annotations

import numpy as np

from index.retrieval.fusion import combine, fuse, ranks, top_ids, zscore


def test_zscore_uses_the_reference_spread_and_survives_flat_input() -> None:
    ref = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    out = zscore(np.array([2.0, 3.0], dtype=np.float32), ref)
    assert np.allclose(out, [0.0, 1.0 / ref.std()])
    assert np.all(zscore(np.array([5.0], dtype=np.float32), np.array([1.0, 1.0], dtype=np.float32)) == 0)
    assert np.all(zscore(np.array([5.0], dtype=np.float32), np.array([1.0], dtype=np.float32)) == 0)


def test_top_ids_keeps_only_matches_best_first() -> None:
    scores = np.array([0.0, 3.0, 1.0, 0.0, 2.0], dtype=np.float32)
    assert top_ids(scores, 10).tolist() == [1, 4, 2]
    assert top_ids(scores, 2).tolist() == [1, 4]
    assert ranks(top_ids(scores, 2)) == {1: 1, 4: 2}


def test_combine_weights_the_two_sides() -> None:
    dense = np.array([0.9, 0.1], dtype=np.float32)
    lexical = np.array([0.0, 10.0], dtype=np.float32)
    only_dense = combine(dense, dense, lexical, lexical, 1.0)
    only_lexical = combine(dense, dense, lexical, lexical, 0.0)
    assert only_dense.argmax() == 0 and only_lexical.argmax() == 1
    balanced = combine(dense, dense, lexical, lexical, 0.5)
    assert np.allclose(balanced, 0.5 * only_dense + 0.5 * only_lexical)


def test_fuse_normalises_over_the_pool_or_each_sides_top_list() -> None:
    dense = np.array([0.9, 0.5, 0.1], dtype=np.float32)
    lexical = np.array([0.0, 4.0, 8.0], dtype=np.float32)
    dense_top = np.array([0.9, 0.5], dtype=np.float32)
    lexical_top = np.array([8.0, 4.0], dtype=np.float32)
    pooled = fuse(dense, dense_top, lexical, lexical_top, 0.5)
    assert np.allclose(pooled, combine(dense, dense, lexical, lexical, 0.5))
    top = fuse(dense, dense_top, lexical, lexical_top, 0.5, reference="top")
    assert np.allclose(top, combine(dense, dense_top, lexical, lexical_top, 0.5))
    # The two references genuinely differ: the passage only one side ranks is treated differently.
    assert not np.allclose(pooled, top)
