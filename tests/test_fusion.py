from __future__ import annotations

from pathlib import Path

import numpy as np

from index.fusion import combine, fuse, ranks, top_ids, zscore


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


def test_sentence_best_match_takes_each_passages_closest_sentence() -> None:
    from index.search import SentenceVectors

    vectors = np.array([[1, 0], [0, 1], [0.6, 0.8], [1, 0], [0, 1], [0.8, 0.6]], dtype=np.float32)
    sentences = SentenceVectors(vectors, np.array([2, 1, 3], dtype=np.int32))  # passages 0, 1, 2
    query = np.array([1.0, 0.0], dtype=np.float32)
    best = sentences.best_match(np.array([2, 0, 1], dtype=np.int64), query)
    assert np.allclose(best, [1.0, 1.0, 0.6])


def test_sibling_best_gives_each_passage_its_documents_best_other_passage() -> None:
    from index.fusion import NO_SIBLING, sibling_best

    blended = np.array([3.0, 1.0, 2.0, 0.5], dtype=np.float32)
    docs = np.array([0, 0, 0, 1], dtype=np.int64)
    # The document's best passage sees its runner-up; the others see the best; a lone one sees none.
    assert np.allclose(sibling_best(blended, docs), [2.0, 3.0, 3.0, NO_SIBLING])


def test_rank_feature_is_reciprocal_rank_shaped_and_zero_outside_the_list() -> None:
    from index.fusion import rank_feature

    out = rank_feature(np.array([7, 3, 9], dtype=np.int64), np.array([3, 7], dtype=np.int64))
    assert np.allclose(out, [60 / 62, 60 / 61, 0.0])


def test_candidate_features_and_learned_scores() -> None:
    from index.fusion import LEARNED_FEATURES, LEARNED_WEIGHTS, candidate_features, learned_scores

    ids = np.array([0, 1, 2], dtype=np.int64)
    dense = np.array([0.9, 0.5, 0.1], dtype=np.float32)
    lexical = np.array([0.0, 4.0, 8.0], dtype=np.float32)
    blended = combine(dense, dense, lexical, lexical, 0.5)
    features = candidate_features(ids, dense, lexical, dense, np.array([0, 1], dtype=np.int64),
                                  np.array([2, 1], dtype=np.int64), np.array([0.0, 0.5, 1.0], dtype=np.float32),
                                  np.array([True, False, True]), np.array([0, 0, 1], dtype=np.int64), blended,
                                  np.array([0.2, 0.8, 0.5], dtype=np.float32),
                                  np.array([0.0, 1.0, 0.5], dtype=np.float32))
    assert features.shape == (3, len(LEARNED_FEATURES)) == (3, len(LEARNED_WEIGHTS))
    assert np.allclose(features[:, 0], zscore(dense, dense)) and np.allclose(features[:, 1], zscore(lexical, lexical))
    assert features[:, 8].tolist() == [0.0, 1.0, 0.0]  # only chunk 1 is in both top lists
    assert features[:, 6].tolist() == [1.0, 0.0, 1.0]
    assert np.argmax(features[:, 9]) == 1 and features[:, 10].tolist() == [0.0, 1.0, 0.5]
    # With only the two z-score weights the learned combiner is the plain blend.
    weights = np.zeros(len(LEARNED_FEATURES), dtype=np.float32)
    weights[:2] = 0.5
    assert np.allclose(learned_scores(features, weights), blended)
    assert learned_scores(features).shape == (3,)


def test_lexical_coverage_weights_the_query_terms_a_chunk_contains_by_idf() -> None:
    from index.lexical import LexicalIndex

    lexical = LexicalIndex.build(["saddle height knee pain", "saddle tilt", "knee strength drills", "bar reach"])
    cover = lexical.coverage("saddle knee", np.array([0, 1, 2, 3], dtype=np.int64))
    assert np.isclose(cover[0], 1.0) and cover[3] == 0.0
    assert np.isclose(cover[1] + cover[2], 1.0)  # each holds one of the two (equally rare) terms
    assert np.all(lexical.coverage("unrelated words", np.array([0, 1], dtype=np.int64)) == 0)


def test_word_pairs_credit_query_terms_that_stand_next_to_each_other() -> None:
    from index.lexical import LexicalIndex

    lexical = LexicalIndex.build(["hip hinge under load", "hinge the hip under load",
                                  "hinge at the waist, not the hip", "tire pressure"])
    pairs = lexical.pair_coverage("Hip hinge drills", np.array([0, 1, 2, 3], dtype=np.int64))
    # Only the first passage says "hip hinge" (the stopword-free, stemmed pair) as the query does.
    assert pairs.tolist() == [1.0, 0.0, 0.0, 0.0]
    both = lexical.pair_coverage("hip hinge under load", np.array([0, 1], dtype=np.int64))
    assert both[0] == 1.0 and 0.0 < both[1] < 1.0  # "under load" only, of three pairs
    assert lexical.pair_coverage("pressure tire", np.array([3], dtype=np.int64)).tolist() == [0.0]
    assert lexical.pair_coverage("single", np.array([0], dtype=np.int64)).tolist() == [0.0]


def test_word_pairs_survive_save_and_load(tmp_path: Path) -> None:
    from index.lexical import LexicalIndex

    built = LexicalIndex.build(["attack position elbows up", "elbows up in the attack position", ""])
    built.save(tmp_path)
    loaded = LexicalIndex.load(tmp_path)
    ids = np.array([0, 1, 2], dtype=np.int64)
    assert loaded.pair_coverage("attack position", ids).tolist() == built.pair_coverage("attack position", ids).tolist()
    assert loaded.pair_coverage("attack position", ids).tolist() == [1.0, 1.0, 0.0]
