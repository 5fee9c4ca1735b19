"""Recall + rerank fusion S = alpha * S_recall + (1 - alpha) * S_rerank and choosing alpha on validation queries."""
import numpy as np
import pytest

from uniembed.rerank.fusion import choose_alpha, fuse, rerank_order


def test_fusion_is_the_convex_combination():
    recall, rerank = np.array([0.9, 0.5, 0.1]), np.array([0.1, 0.8, 0.3])
    for alpha in (0.0, 0.3, 1.0):
        expected = [alpha * r + (1 - alpha) * s for r, s in zip(recall, rerank)]
        assert fuse(recall, rerank, alpha).tolist() == pytest.approx(expected)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        fuse(recall, rerank, 1.5)
    with pytest.raises(ValueError, match="differ in shape"):
        fuse(recall, rerank[:2], 0.5)


def test_the_released_codes_additive_form_is_the_same_ranking_as_alpha():
    """cos + w * P(Yes) ranks like alpha = 1 / (1 + w) (U-MARVEL's released code, w = 1)."""
    rng = np.random.default_rng(0)
    recall, rerank = rng.random(20), rng.random(20)
    ids = [f"c{i}" for i in range(20)]
    for w in (1.0, 0.5, 0.1):
        additive = [ids[i] for i in np.argsort(-(recall + w * rerank), kind="stable")]
        assert rerank_order(ids, recall, rerank, 1 / (1 + w)) == additive


def test_order_by_fused_score_ties_keep_the_recall_order():
    ids = ["a", "b", "c"]
    assert rerank_order(ids, np.array([0.9, 0.5, 0.1]), np.array([0.0, 0.0, 1.0]), 0.5) == ["c", "a", "b"]
    assert rerank_order(ids, np.array([0.5, 0.5, 0.5]), np.array([0.2, 0.2, 0.2]), 0.5) == ids


def test_choose_alpha_picks_the_best_validation_recall_ties_to_recall():
    # q1: recall ranks the positive last, rerank first; q2: both rank it first.
    queries = {"q1": (["x", "y", "p"], np.array([0.9, 0.8, 0.7]), np.array([0.1, 0.2, 0.9]), {"p"}),
               "q2": (["p", "z"], np.array([0.9, 0.1]), np.array([0.9, 0.1]), {"p"})}
    alpha, scores = choose_alpha(queries, k=1)
    assert scores[1.0] == 0.5 and scores[0.0] == 1.0
    assert alpha == max(a for a, s in scores.items() if s == 1.0)      # the largest alpha that reaches the best
    assert 0.0 < alpha < 1.0
    with pytest.raises(ValueError):
        choose_alpha({}, k=1)
