"""The distillation teacher's table: fused recall + rerank scores (U-MARVEL §3.3, App. C eq. 4)."""
import pyarrow as pa
import pytest

from uniembed.mine.schemas import HARD_NEGATIVES, JUDGE_SCORES, MINED
from uniembed.rerank.teacher import sample_queries, teacher_table


def _judged(rows):
    return pa.Table.from_pylist([{"query_id": q, "candidate_id": c, "is_positive": pos, "rank": None, "score": s,
                                  "status": "ok" if s is not None else "failed", "error": None if s is not None else "boom",
                                  "judge_model": "m", "prompt_hash": "h"} for q, c, pos, s in rows], schema=JUDGE_SCORES)


def test_teacher_scores_are_the_fused_scores_in_fused_order():
    mined = pa.Table.from_pylist([{"query_id": "q", "rank": 1, "candidate_id": "a", "similarity": 0.9},
                                  {"query_id": "q", "rank": 2, "candidate_id": "b", "similarity": 0.8},
                                  {"query_id": "q", "rank": 3, "candidate_id": "c", "similarity": 0.1}], schema=MINED)
    rerank = _judged([("q", "p1", True, 0.9), ("q", "p2", True, 0.2), ("q", "a", False, 0.1), ("q", "b", False, 0.9),
                      ("q", "c", False, 0.95)])
    alpha = 0.3
    table = teacher_table(mined, {("q", "p1"): 0.7, ("q", "p2"): 0.95}, rerank, alpha, k=2)
    (row,) = table.to_pylist()
    fused = {"a": alpha * 0.9 + 0.7 * 0.1, "b": alpha * 0.8 + 0.7 * 0.9, "c": alpha * 0.1 + 0.7 * 0.95}
    best = sorted(fused, key=fused.get, reverse=True)[:2]
    assert row["negative_ids"] == best == ["b", "c"]
    assert row["negative_scores"] == pytest.approx([fused[c] for c in best])
    own = {"p1": alpha * 0.7 + 0.7 * 0.9, "p2": alpha * 0.95 + 0.7 * 0.2}   # each positive keeps its own
    assert dict(zip(row["positive_ids"], row["positive_scores"])) == pytest.approx(own)
    assert row["positive_score"] == pytest.approx(min(own.values()))
    assert row["strategy"] == "distill" and row["outcome"] == "selected" and table.schema.equals(HARD_NEGATIVES)


def test_a_failed_or_missing_reranker_score_is_an_error_naming_the_pair():
    mined = pa.Table.from_pylist([{"query_id": "q", "rank": 1, "candidate_id": "a", "similarity": 0.9}], schema=MINED)
    with pytest.raises(ValueError, match=r"\(q, a\) failed: boom"):
        teacher_table(mined, {("q", "p"): 0.5}, _judged([("q", "p", True, 0.5), ("q", "a", False, None)]), 0.5, 1)
    with pytest.raises(ValueError, match="no reranker score for query q, candidate a"):
        teacher_table(mined, {("q", "p"): 0.5}, _judged([("q", "p", True, 0.5)]), 0.5, 1)


def test_sampling_is_seeded_and_keeps_the_fraction():
    ids = [f"q{i}" for i in range(200)]
    a, b = sample_queries(ids, 0.1, 0), sample_queries(ids, 0.1, 0)
    assert a == b and len(a) == 20 and a == [q for q in ids if q in set(a)]
    assert sample_queries(ids, 0.1, 1) != a and len(sample_queries(ids[:3], 0.1, 0)) == 1
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        sample_queries(ids, 0.0, 0)
