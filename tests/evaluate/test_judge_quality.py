"""Judge quality: ROC-AUC against a brute-force pair count, and a hand-computed report."""
from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from uniembed.evaluate.judge_quality import judge_quality, judge_quality_markdown, read_truth, roc_auc
from uniembed.mine.schemas import JUDGE_SCORES


def brute_force_auc(scores, labels):
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(5))
def test_roc_auc_matches_the_pair_count_with_ties(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(60) < 0.3
    scores = np.round(rng.random(60) + 0.4 * labels, 1)          # coarse rounding: many ties
    assert roc_auc(scores, labels) == pytest.approx(brute_force_auc(scores.tolist(), labels.tolist()), abs=1e-12)


def test_roc_auc_edge_cases():
    assert roc_auc([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0]) == 1.0
    assert roc_auc([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]) == 0.0
    assert roc_auc([0.5] * 6, [1, 0, 1, 0, 0, 1]) == 0.5
    assert roc_auc([0.3, 0.4], [1, 1]) is None and roc_auc([], []) is None
    with pytest.raises(ValueError):
        roc_auc([0.1, 0.2], [1])


def judge_rows(rows):
    return pa.Table.from_pylist([
        {"query_id": q, "candidate_id": cid, "is_positive": pos, "rank": None if pos else 1, "score": s,
         "yes_logit": None, "no_logit": None, "status": "ok" if s is not None else "failed", "error": None,
         "judge_model": "j", "prompt_hash": "h"} for q, cid, pos, s in rows], JUDGE_SCORES)


TRUTH = {"q1": {"p1", "m1"}, "q2": {"p2"}}
JUDGED = judge_rows([
    ("q1", "p1", True, 0.9), ("q1", "m1", False, 0.8), ("q1", "n1", False, 0.3), ("q1", "n2", False, None),
    ("q2", "p2", True, 0.7), ("q2", "n3", False, 0.8), ("q2", "n4", False, 0.1),
    ("q9", "x", False, 0.5),
])


def test_report_by_hand():
    report = judge_quality(JUDGED, TRUTH, removed={"q1": {"m1"}, "q2": {"n3"}})
    # matches 0.9, 0.8, 0.7 vs non-matches 0.3, 0.8, 0.1: wins 3 + 2.5 + 2 of 9 pairs
    assert report["roc_auc"] == pytest.approx(7.5 / 9)
    assert report["roc_auc_mined"] == pytest.approx(2.5 / 3)   # m1 0.8 vs n1 0.3, n3 0.8 (tie), n4 0.1
    assert report["mean_score_matches"] == pytest.approx(0.8)
    assert report["mean_score_non_matches"] == pytest.approx(0.4)
    assert {k: report[k] for k in ("queries", "queries_without_truth", "pairs_scored", "pairs_failed", "matches",
                                   "non_matches", "mined_genuine_matches", "positives_not_in_truth")} == \
        {"queries": 2, "queries_without_truth": 1, "pairs_scored": 6, "pairs_failed": 1, "matches": 3,
         "non_matches": 3, "mined_genuine_matches": 1, "positives_not_in_truth": 0}
    assert (report["queries_with_genuine_match"], report["queries_with_genuine_match_fraction"]) == (1, 0.5)
    assert (report["removed_pairs"], report["removed_genuine_matches"]) == (2, 1)
    assert report["removal_precision"] == 0.5 and report["removal_recall"] == 1.0


def test_genuine_matches_are_counted_per_query_and_recall_over_them():
    truth = {"q1": {"p1", "m1", "m2"}, "q2": {"p2", "m3"}, "q3": {"p3"}, "q4": {"p4"}}
    judged = judge_rows([
        ("q1", "p1", True, 0.9), ("q1", "m1", False, 0.8), ("q1", "m2", False, None), ("q1", "n1", False, 0.2),
        ("q2", "p2", True, 0.7), ("q2", "m3", False, 0.6), ("q2", "n2", False, 0.5),
        ("q3", "p3", True, 0.9), ("q3", "n3", False, 0.1), ("q4", "p4", True, 0.8), ("q4", "n4", False, 0.9),
    ])
    # q1 and q2 have genuine matches among their mined candidates (a failed pair still counts as mined)
    report = judge_quality(judged, truth, removed={"q1": {"m1", "n1"}, "q2": {"m3"}, "q4": {"n4"}})
    assert report["mined_genuine_matches"] == 3 and report["queries_with_genuine_match"] == 2
    assert report["queries_with_genuine_match_fraction"] == 0.5
    assert report["removal_precision"] == pytest.approx(2 / 4) and report["removal_recall"] == pytest.approx(2 / 3)
    none_found = judge_quality(judged, {"q3": {"p3"}, "q4": {"p4"}}, removed={"q4": {"n4"}})
    assert none_found["queries_with_genuine_match_fraction"] == 0.0 and none_found["removal_recall"] is None
    empty = judge_quality(judged, {}, removed={})
    assert empty["queries"] == 0 and empty["queries_with_genuine_match_fraction"] is None


def test_perfect_and_constant_judges():
    rows = [("q1", "p1", True, 0.9), ("q1", "m1", False, 0.8), ("q1", "n1", False, 0.3), ("q2", "p2", True, 0.7),
            ("q2", "n3", False, 0.2)]
    assert judge_quality(judge_rows(rows), TRUTH)["roc_auc"] == 1.0
    constant = judge_quality(judge_rows([(q, c, p, 0.6) for q, c, p, _ in rows]), TRUTH)
    assert constant["roc_auc"] == 0.5 and constant["roc_auc_mined"] == 0.5
    assert "removal_precision" not in constant


def test_nothing_removed_gives_undefined_precision():
    report = judge_quality(JUDGED, TRUTH, removed={"q1": set()})
    assert report["removed_pairs"] == 0 and report["removal_precision"] is None and report["removal_recall"] == 0.0


def test_missing_column_is_named():
    with pytest.raises(ValueError, match="'status'"):
        judge_quality(JUDGED.drop(["status"]), TRUTH)


def test_markdown_and_truth_file(tmp_path):
    text = judge_quality_markdown(judge_quality(JUDGED, TRUTH, removed={"q1": set()}))
    assert text.startswith("## Judge quality\n") and "| ROC-AUC, all scored pairs | 0.8333 |" in text
    assert "| removal precision (removed that truly match / removed) | n/a |" in text
    assert "| fraction of queries with a genuine match among mined candidates | 0.5000 |" in text
    assert "| removal recall (removed that truly match / mined that truly match) | 0.0000 |" in text
    path = tmp_path / "mbeir_truth.parquet"
    pq.write_table(pa.table({"qid": ["q1", "q2"], "split": ["train"] * 2, "task_id": pa.array([0, 1], pa.int32()),
                             "true_match_dids": [["p1", "m1"], ["p2"]]}), path)
    assert read_truth(path) == TRUTH


def test_labelled_scores_keep_usable_pairs_with_truth_and_agree_with_the_report():
    from uniembed.evaluate.judge_quality import labelled_scores

    judged = judge_rows([("q1", "c1", True, 0.9), ("q1", "c2", False, 0.7), ("q1", "c3", False, None),
                         ("q2", "c4", False, 0.2), ("q9", "c5", True, 0.5)])
    truth = {"q1": {"c1", "c2"}, "q2": {"c7"}}
    scores, labels = labelled_scores(judged, truth)
    assert scores.tolist() == [0.9, 0.7, 0.2] and labels.tolist() == [True, True, False]
    report = judge_quality(judged, truth)
    assert report["roc_auc"] == roc_auc(scores, labels) and report["pairs_scored"] == len(scores)
