"""Metric definitions: hand-computed cases, tie rules, and agreement with pytrec_eval on random runs."""
from __future__ import annotations

import math

import numpy as np
import pytest

from uniembed.evaluate.metrics import (
    ids_from_faiss, macro_average, map_at_k, mbeir_k, mbeir_recall_at_k, mean_by, mrr_at_k,
    ndcg_at_k, precision_at_1_mmeb, rank_by_score, rank_rows_by_score, recall_at_k,
)

# Two queries: q0 has positives {a, c} (ranks 1 and 3), q1 has {z} (not retrieved).
RANKED = [["a", "b", "c", "d"], ["b", "a", "c"]]
POSITIVES = [{"a", "c"}, {"z"}]


# --- ranking and ties ---------------------------------------------------------------------------

def test_rank_by_score_breaks_ties_by_descending_id():
    # b and c tie at 0.5 -> "c" before "b" (trec_eval: strcmp(p2, p1)); "d10" < "d9" as strings.
    assert rank_by_score(np.array([0.9, 0.5, 0.5, 0.1]), ["a", "b", "c", "d"]) == ["a", "c", "b", "d"]
    assert rank_by_score(np.zeros(3), ["d9", "d10", "d1"]) == ["d9", "d10", "d1"]


def test_rank_by_score_top_k_keeps_boundary_ties():
    scores = np.array([0.2, 0.7, 0.7, 0.7, 0.9])
    ids = ["e", "a", "c", "b", "d"]
    # 0.9 first, then the three 0.7 ties in descending id order: c, b, a; k=2 cuts after "c".
    assert rank_by_score(scores, ids) == ["d", "c", "b", "a", "e"]
    assert rank_by_score(scores, ids, k=2) == ["d", "c"]
    rows = rank_rows_by_score(np.stack([scores, -scores]), ids, k=3)
    assert rows == [["d", "c", "b"], ["e", "c", "b"]]


def test_tie_rule_matches_pytrec_eval():
    import pytrec_eval  # test-only dependency (dev extra): never skipped
    ids = ["a", "b", "c"]
    # All scores tie; trec_eval ranks c, b, a, so the positive "a" is at rank 3 (not 1).
    ev = pytrec_eval.RelevanceEvaluator({"q": {"a": 1}}, {"recip_rank"})
    assert ev.evaluate({"q": {d: 1.0 for d in ids}})["q"]["recip_rank"] == pytest.approx(1 / 3)
    assert mrr_at_k([rank_by_score(np.ones(3), ids)], [{"a"}]) == pytest.approx([1 / 3])


def test_already_ranked_runs_are_used_as_given():
    # A FAISS run with a -1 pad; its order is kept even though "a" < "b" would flip a tie.
    ranked = ids_from_faiss(np.array([[1, 0, -1]]), ["a", "b"])
    assert ranked == [["b", "a"]]
    assert mrr_at_k(ranked, [{"a"}]).tolist() == [0.5]


def test_precision_at_1_ties():
    scores = [np.array([0.5, 0.5, 0.1]), np.array([0.4, 0.6]), np.array([0.9, 0.1]), np.array([0.3])]
    # argmax returns the first maximum, so the tie in query 0 counts; pessimistic counts it wrong.
    assert precision_at_1_mmeb(scores).tolist() == [1.0, 0.0, 1.0, 1.0]
    assert precision_at_1_mmeb(scores, ties="pessimistic").tolist() == [0.0, 0.0, 1.0, 1.0]


# --- hand-computed cases ----------------------------------------------------------------------

def test_mbeir_recall():
    # q0: "a" at rank 1 -> 1 for any k; q1: "z" never retrieved -> 0.
    assert mbeir_recall_at_k(RANKED, POSITIVES, 1).tolist() == [1.0, 0.0]
    # A positive at rank 3 counts for k=3, not k=2.
    assert mbeir_recall_at_k([["x", "y", "p"]], [{"p", "q"}], 2).tolist() == [0.0]
    assert mbeir_recall_at_k([["x", "y", "p"]], [{"p", "q"}], 3).tolist() == [1.0]


def test_mbeir_k():
    assert mbeir_k("Fashion200K", 0) == mbeir_k("fashion200k", 3) == mbeir_k("FashionIQ", 7) == 10
    assert mbeir_k("MSCOCO", 0) == mbeir_k("CIRR", 7) == mbeir_k("shapecaption", 3) == 5
    with pytest.raises(ValueError, match="0..8"):
        mbeir_k("CIRR", 9)


def test_recall_at_k():
    # q0: top 2 holds "a" of {a, c} -> 1/2; top 3 holds both -> 1.
    assert recall_at_k(RANKED, POSITIVES, 2).tolist() == [0.5, 0.0]
    assert recall_at_k(RANKED, POSITIVES, 3).tolist() == [1.0, 0.0]


def test_ndcg_at_k():
    relevance = [{"a": 1, "c": 2, "d": 0, "e": 3}]
    # DCG@3 = 1/log2(2) + 0/log2(3) + 2/log2(4) = 1 + 1 = 2 ("e" is judged but not retrieved).
    # Ideal over all judged docs: 3/log2(2) + 2/log2(3) + 1/log2(4) = 3 + 1.26186 + 0.5.
    ideal = 3 + 2 / math.log2(3) + 0.5
    assert ndcg_at_k([RANKED[0]], relevance, k=3) == pytest.approx([2 / ideal])
    # Perfect order scores 1 even with fewer retrieved than k.
    assert ndcg_at_k([["e", "c", "a"]], relevance, k=10) == pytest.approx([1.0])


def test_map_at_k_denominators():
    # Positives {a, c} at ranks 1, 3: precisions 1/1 and 2/3; R = 2.
    assert map_at_k([RANKED[0]], [POSITIVES[0]], k=3) == pytest.approx([(1 + 2 / 3) / 2])
    # k = 1: only rank 1 counts -> 1/R = 0.5 ("R") vs 1/min(2, 1) = 1.0 (VLM2Vec).
    assert map_at_k([RANKED[0]], [POSITIVES[0]], k=1).tolist() == [0.5]
    assert map_at_k([RANKED[0]], [POSITIVES[0]], k=1, denominator="min(R,k)").tolist() == [1.0]


def test_mrr_at_k():
    # First positive of {c} at rank 3: 1/3, or 0 with k=2.
    assert mrr_at_k([RANKED[0]], [{"c"}]) == pytest.approx([1 / 3])
    assert mrr_at_k([RANKED[0]], [{"c"}], k=2).tolist() == [0.0]


def test_mean_by_and_macro_average():
    values = [1.0, 0.0, 1.0, 1.0]
    groups = [("cirr", 7), ("cirr", 7), ("nights", 4), ("cirr", 7)]
    by_group = mean_by(values, groups)
    assert by_group == {("cirr", 7): pytest.approx(2 / 3), ("nights", 4): 1.0}
    # Unweighted: (2/3 + 1) / 2, not the per-query mean 3/4.
    assert macro_average(by_group) == pytest.approx(5 / 6)


# --- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("call, message", [
    (lambda: recall_at_k([["a"], ["b"]], [{"a"}, set()], 1), "query 1 has no positives"),
    (lambda: mbeir_recall_at_k([["a"]], [{"a"}], 0), "k must be"),
    (lambda: map_at_k([], [], 5), "no queries"),
    (lambda: mrr_at_k([["a", "a"]], [{"a"}]), "query 0: the ranked list repeats"),
    (lambda: ndcg_at_k([["a"], ["a"]], [{"a": 1}, {"a": 0}], 5), "query 1 has no positives"),
    (lambda: recall_at_k([["a"]], [{"a"}, {"b"}], 1), "1 ranked lists but 2"),
    (lambda: precision_at_1_mmeb([np.array([0.1]), np.array([])]), "query 1"),
    (lambda: precision_at_1_mmeb([]), "no queries"),
    (lambda: rank_by_score(np.array([np.nan, 0.0]), ["a", "b"]), "finite"),
    (lambda: rank_by_score(np.array([1.0, 0.0]), ["a", "a"]), "unique"),
    (lambda: mean_by([], []), "non-empty"),
    (lambda: macro_average({}), "no scores"),
])
def test_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- agreement with pytrec_eval on random runs with ties ------------------------------------

@pytest.fixture(scope="module")
def random_run():
    """50 queries x 30 docs, scores on a coarse grid (many ties), graded relevance 0..3.

    Every query also judges two documents that are never retrieved, so nDCG's ideal and
    recall's denominator must count unretrieved positives.
    """
    rng = np.random.default_rng(0)
    ids = [f"d{j}" for j in rng.permutation(30)]
    scores = rng.integers(0, 6, size=(50, 30)) / 5.0
    relevance = []
    for _ in range(50):
        judged = rng.choice(30, size=8, replace=False)
        rel = {ids[j]: int(rng.integers(0, 4)) for j in judged}
        rel.update({"unretrieved0": int(rng.integers(0, 3)), "unretrieved1": 1})
        relevance.append(rel)
    return ids, scores, relevance


def test_agrees_with_pytrec_eval(random_run):
    import pytrec_eval  # test-only dependency (dev extra): never skipped
    ids, scores, relevance = random_run
    qids = [f"q{i}" for i in range(len(scores))]
    run = {q: {d: float(s) for d, s in zip(ids, row)} for q, row in zip(qids, scores)}
    qrels = dict(zip(qids, relevance))
    measures = {"success.1,5,10", "recall.5,10", "map_cut.5,10", "ndcg_cut.5,10", "recip_rank"}
    expected = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    ranked = rank_rows_by_score(scores, ids)
    positives = [{d for d, r in rel.items() if r > 0} for rel in relevance]

    def column(name):
        return np.array([expected[q][name] for q in qids])

    for k in (1, 5, 10):
        np.testing.assert_allclose(mbeir_recall_at_k(ranked, positives, k), column(f"success_{k}"))
    for k in (5, 10):
        np.testing.assert_allclose(recall_at_k(ranked, positives, k), column(f"recall_{k}"))
        np.testing.assert_allclose(map_at_k(ranked, positives, k), column(f"map_cut_{k}"))
        np.testing.assert_allclose(ndcg_at_k(ranked, relevance, k), column(f"ndcg_cut_{k}"))
    np.testing.assert_allclose(mrr_at_k(ranked, positives), column("recip_rank"))
    assert rank_rows_by_score(scores, ids, k=10) == [row[:10] for row in ranked]


def test_agrees_with_plain_loops(random_run):
    """mrr@k, VLM2Vec's MAP@k and MMEB Precision@1 have no pytrec_eval counterpart: loops instead."""
    ids, scores, relevance = random_run
    ranked = rank_rows_by_score(scores, ids)
    positives = [{d for d, r in rel.items() if r > 0} for rel in relevance]
    for k in (3, 10):
        rr, ap = [], []
        for run, pos in zip(ranked, positives):
            hit_ranks = [i + 1 for i, d in enumerate(run[:k]) if d in pos]
            rr.append(1 / hit_ranks[0] if hit_ranks else 0.0)
            ap.append(sum((n + 1) / r for n, r in enumerate(hit_ranks)) / min(len(pos), k))
        np.testing.assert_allclose(mrr_at_k(ranked, positives, k), rr)
        np.testing.assert_allclose(map_at_k(ranked, positives, k, denominator="min(R,k)"), ap)
    rows = list(scores)
    argmax_rule = [float(all(row[0] >= s for s in row[1:])) for row in rows]
    strict_rule = [float(all(row[0] > s for s in row[1:])) for row in rows]
    assert 0 < sum(argmax_rule) and sum(strict_rule) < sum(argmax_rule)  # the grid makes ties
    np.testing.assert_array_equal(precision_at_1_mmeb(rows), argmax_rule)
    np.testing.assert_array_equal(precision_at_1_mmeb(rows, ties="pessimistic"), strict_rule)
