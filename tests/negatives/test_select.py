"""select_hard_negatives on small hand-built tables: rows, summary counts, and refused input."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from uniembed.mine.schemas import HARD_NEGATIVES, JUDGE_SCORES, MINED
from uniembed.negatives.select import removed_false_negatives, select_hard_negatives
from uniembed.negatives.unime_v2 import query_seed, select_unime_v2


def c(q, i):
    return f"{q}c{i:02d}"


def build():
    """q1: padded after filter/failed/missing; q2: 3 left + a judged non-mined row; q3: failed
    positive; q4: judged only; q5: all above alpha -> fallback; q6: 20 plain candidates."""
    mined, judged = [], []

    def mine(q, n):
        mined.extend({"query_id": q, "rank": r, "candidate_id": c(q, r), "similarity": 1.0 - 0.04 * r}
                     for r in range(1, n + 1))

    def judge(q, cid, score, positive=False, rank=None):
        judged.append({"query_id": q, "candidate_id": cid, "is_positive": positive, "rank": rank, "score": score,
                       "yes_logit": None, "no_logit": None, "status": "ok" if score is not None else "failed",
                       "error": None if score is not None else "timeout", "judge_model": "j", "prompt_hash": "h"})

    mine("q1", 12)
    judge("q1", "q1pos", 0.9, positive=True)
    scores = {1: 0.95, 2: 0.7, 3: None}                     # alpha = 0.9 - 0.2 = 0.7; c04: no judge row
    for r in [1, 2, 3] + list(range(5, 13)):
        judge("q1", c("q1", r), scores.get(r, 0.5), rank=r)
    mine("q2", 3)
    judge("q2", "q2pos", 0.8, positive=True)
    for r, s in zip((1, 2, 3), (0.3, 0.2, 0.1)):
        judge("q2", c("q2", r), s, rank=r)
    judge("q2", "q2x", 0.1, rank=9)                          # judged but never mined
    mine("q3", 5)
    judge("q3", "q3pos", None, positive=True)
    for r in range(1, 6):
        judge("q3", c("q3", r), 0.1, rank=r)
    judge("q4", "q4pos", 0.9, positive=True)                 # no mined rows
    mine("q5", 12)
    judge("q5", "q5pos", 0.9, positive=True)
    for r in range(1, 13):
        judge("q5", c("q5", r), 0.9, rank=r)
    mine("q6", 20)
    judge("q6", "q6pos", 0.9, positive=True)
    for r in range(1, 21):
        judge("q6", c("q6", r), 0.1, rank=r)
    return pa.Table.from_pylist(mined, MINED), pa.Table.from_pylist(judged, JUDGE_SCORES)


TASKS = {"q1": 0, "q2": 0, "q3": 1, "q4": 1, "q5": 2, "q6": 2}


def test_unime_v2_rows_and_summary():
    mined, judged = build()
    table, summary = select_hard_negatives(mined, judged, "unime_v2", {"beta": 0.2}, task_of=TASKS)
    assert table.schema == HARD_NEGATIVES
    rows = {r["query_id"]: r for r in table.to_pylist()}
    assert list(rows) == ["q1", "q2", "q3", "q4", "q5", "q6"]
    remaining_q1 = [c("q1", r) for r in [2] + list(range(5, 13))]          # 9 left
    assert rows["q1"]["negative_ids"] == [remaining_q1[i] for i in [0, 5, 1, 6, 2, 7, 3, 8, 4, 0]]
    assert rows["q1"]["negative_scores"][0] == 0.7                          # the boundary score stays
    assert (rows["q1"]["outcome"], rows["q1"]["false_negatives_removed"]) == ("padded", 1)
    assert rows["q2"]["negative_ids"] == [c("q2", r) for r in (1, 2, 3, 1, 2, 3, 1, 2, 3, 1)]
    assert (rows["q3"]["outcome"], rows["q3"]["negative_ids"], rows["q3"]["positive_score"]) == \
        ("no_positive_score", [], None)
    assert (rows["q4"]["outcome"], rows["q4"]["negative_ids"]) == ("no_candidates", [])
    q5 = select_unime_v2([c("q5", r) for r in range(1, 13)], [0.9] * 12, 0.9, beta=0.2, seed=query_seed(0, "q5"))
    assert rows["q5"]["negative_ids"] == list(q5.negative_ids) and rows["q5"]["outcome"] == "fallback_random"
    assert rows["q5"]["negative_scores"] == [1.0] * 10 and rows["q5"]["false_negatives_removed"] == 12
    assert rows["q6"]["negative_ids"] == [c("q6", i + 1) for i in [0, 5, 10, 15, 1, 6, 11, 16, 2, 7]]
    assert rows["q6"]["outcome"] == "selected" and rows["q6"]["positive_score"] == 0.9
    assert json.loads(rows["q1"]["params"]) == {"beta": 0.2, "k": 8, "interval": 5, "minimum": 10, "seed": 0}
    assert set(table["strategy"].to_pylist()) == {"unime_v2"}
    assert summary == {
        "strategy": "unime_v2", "params": {"beta": 0.2, "k": 8, "interval": 5, "minimum": 10, "seed": 0},
        "queries_in": 6, "queries_with_selections": 4, "false_negatives_removed": 13,
        "queries_padded": 2, "queries_fallback": 1, "fallback_fraction": 1 / 6,
        "queries_without_positive_score": 1, "queries_without_candidates": 1, "queries_with_fewer_than_k": 0,
        "candidates_without_score_excluded": 2,
        "outcomes": {"fallback_random": 1, "no_candidates": 1, "no_positive_score": 1, "padded": 2, "selected": 1},
        "failed_judge_rows_excluded": 2, "queries_without_mined_rows": 1,
        "mined_candidates_without_judge_row": 1, "judged_candidates_not_mined": 1,
        "false_negatives_removed_per_task": {"0": 1, "1": 0, "2": 12},
    }
    again, _ = select_hard_negatives(mined, judged, "unime_v2", {"beta": 0.2}, task_of=TASKS)
    assert again.equals(table)


def test_removed_false_negatives_lists_the_dropped_candidates():
    mined, judged = build()
    removed = removed_false_negatives(mined, judged, "unime_v2", {"beta": 0.2})
    assert removed["q1"] == {c("q1", 1)} and removed["q5"] == {c("q5", r) for r in range(1, 13)}
    assert removed["q2"] == removed["q3"] == removed["q6"] == set()


def test_lowest_positive_score_sets_alpha():
    mined, judged = build()
    extra = pa.Table.from_pylist([{**judged.slice(0, 1).to_pylist()[0], "candidate_id": "q1pos2", "score": 0.8}],
                                 JUDGE_SCORES)
    table, _ = select_hard_negatives(mined, pa.concat_tables([judged, extra]), "unime_v2", {"beta": 0.2})
    q1 = table.filter(pc.equal(table["query_id"], "q1")).to_pylist()[0]
    assert q1["positive_score"] == 0.8 and q1["false_negatives_removed"] == 2   # alpha 0.6: 0.95, 0.7 go


def test_umarvel_on_similarity_without_judge_table():
    mined, _ = build()
    table, summary = select_hard_negatives(mined, None, "umarvel", {"threshold": 0.9, "k": 3})
    rows = {r["query_id"]: r for r in table.to_pylist()}
    # similarity = 1 - 0.04 * rank: ranks 1, 2 exceed 0.9; rank 3 (0.88) onwards stay
    assert rows["q6"]["negative_ids"] == [c("q6", r) for r in (3, 4, 5)]
    assert rows["q6"]["false_negatives_removed"] == 2 and rows["q6"]["positive_score"] is None
    assert rows["q2"]["negative_ids"] == [c("q2", 3)]
    assert summary["queries_in"] == 5 and summary["queries_with_fewer_than_k"] == 1
    assert json.loads(rows["q1"]["params"]) == {"k": 3, "score_column": "similarity", "threshold": 0.9}


def test_umarvel_on_judge_scores():
    mined, judged = build()
    table, summary = select_hard_negatives(mined, judged, "umarvel", {"threshold": 0.6, "k": 2,
                                                                      "score_column": "score"})
    rows = {r["query_id"]: r for r in table.to_pylist()}
    assert rows["q1"]["negative_ids"] == [c("q1", 5), c("q1", 6)] and rows["q1"]["false_negatives_removed"] == 2
    assert rows["q5"]["outcome"] == "no_candidates" and summary["queries_without_candidates"] == 2


@pytest.mark.parametrize("change, message", [
    (lambda m, j: (m.drop(["rank"]), j), "'rank'"),
    (lambda m, j: (m, j.drop(["status"])), "'status'"),
    (lambda m, j: (pa.concat_tables([m, m.slice(0, 1)]), j), "repeats a candidate"),
    (lambda m, j: (m, pa.concat_tables([j, j.slice(0, 1)])), "repeats the pair"),
    (lambda m, j: (m, None), "needs the judge scores"),
])
def test_structural_problems_raise(change, message):
    mined, judged = change(*build())
    with pytest.raises(ValueError, match=message):
        select_hard_negatives(mined, judged, "unime_v2", {"beta": 0.2})


@pytest.mark.parametrize("strategy, params, kwargs, message", [
    ("nope", {}, {}, "unknown strategy"),
    ("unime_v2", {}, {}, "missing required parameters \\['beta'\\]"),
    ("unime_v2", {"beta": 0.2, "gamma": 1}, {}, "unknown parameters \\['gamma'\\]"),
    ("umarvel", {"threshold": 0.5, "k": 2, "score_column": "x"}, {}, "score_column"),
    ("unime_v2", {"beta": 0.2}, {"task_of": {"q1": 0}}, "task_of lacks 5 queries"),
])
def test_bad_parameters_raise(strategy, params, kwargs, message):
    mined, judged = build()
    with pytest.raises(ValueError, match=message):
        select_hard_negatives(mined, judged, strategy, params, **kwargs)


def test_each_positive_keeps_its_own_score_beside_the_lowest():
    mined, judged = build()
    extra = pa.Table.from_pylist([{"query_id": "q6", "candidate_id": "q6pos2", "is_positive": True, "rank": None,
                                   "score": 0.97, "yes_logit": None, "no_logit": None, "status": "ok", "error": None,
                                   "judge_model": "j", "prompt_hash": "h"}], JUDGE_SCORES)
    table, _ = select_hard_negatives(mined, pa.concat_tables([judged, extra]), "unime_v2", {"beta": 0.2})
    rows = {r["query_id"]: r for r in table.to_pylist()}
    assert dict(zip(rows["q6"]["positive_ids"], rows["q6"]["positive_scores"])) == {"q6pos": 0.9, "q6pos2": 0.97}
    assert rows["q6"]["positive_score"] == 0.9                       # alpha's sigma(q, c_t): the lowest
    assert rows["q3"]["positive_ids"] == ["q3pos"] and rows["q3"]["positive_scores"] == [None]   # failed: null


@pytest.mark.parametrize("bad", [float("nan"), 1.7, -0.1, None])
@pytest.mark.parametrize("positive", [False, True])
def test_an_ok_judge_row_with_a_bad_score_is_refused_naming_query_and_candidate(bad, positive):
    mined, judged = build()
    rows = judged.to_pylist()
    target = next(i for i, r in enumerate(rows) if r["query_id"] == "q6" and r["is_positive"] == positive)
    rows[target]["score"] = bad                                       # status stays "ok"
    with pytest.raises(ValueError, match=rf"query 'q6', candidate '{rows[target]['candidate_id']}'.*status 'ok' but "
                                         rf"score .*expected a finite P\(Yes\) in \[0, 1\]"):
        select_hard_negatives(mined, pa.Table.from_pylist(rows, JUDGE_SCORES), "unime_v2", {"beta": 0.2})
