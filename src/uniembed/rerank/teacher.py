"""The distillation teacher's table (U-MARVEL §3.3, Finding 6): fused recall + rerank scores.

For each sampled training query: the recall model's top candidates (a MINED table, positives
removed), the reranker's P(Yes) of every (query, candidate) and (query, positive) pair, and the
fused teacher score S_multi = alpha * cos + (1 - alpha) * P(Yes) (App. C eq. 4). The table has the
hard-negative schema (``mine/schemas.py`` HARD_NEGATIVES): ``negative_ids`` = the ``k`` highest-
fused candidates in fused order, ``negative_scores`` their fused scores, ``positive_ids`` /
``positive_scores`` each positive with its own fused score (the trainer pairs the positive it samples
with its own score), ``positive_score`` the lowest of them (the schema's meaning), so the one trainer
reads it as it reads hard negatives and the ``distill`` objective takes [positive, negatives] with
their teacher scores.
"""
from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pyarrow as pa

from ..mine.schemas import HARD_NEGATIVES, JUDGE_SCORES, MINED
from .fusion import fuse


def sample_queries(query_ids: list[str], fraction: float, seed: int) -> list[str]:
    """A seeded ``fraction`` of the query ids (at least one), in their given order."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"the distillation fraction must be in (0, 1], got {fraction}")
    if not query_ids:
        raise ValueError("no training queries to sample for distillation")
    n = max(1, int(round(fraction * len(query_ids))))
    keep = set(np.random.default_rng(seed).choice(len(query_ids), size=n, replace=False).tolist())
    return [q for i, q in enumerate(query_ids) if i in keep]


def teacher_table(mined: pa.Table, positive_similarity: dict[tuple[str, str], float], rerank: pa.Table,
                  alpha: float, k: int) -> pa.Table:
    """HARD_NEGATIVES rows (strategy ``distill``) from the recall retrieval, the positives' cosines and the
    reranker's scores (JUDGE_SCORES rows of every mined and positive pair; a failed pair is an error)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    mined, rerank = mined.cast(MINED), rerank.cast(JUDGE_SCORES)
    p_yes = {}
    for row in rerank.to_pylist():
        if row["status"] != "ok" or row["score"] is None:
            raise ValueError(f"reranker score of ({row['query_id']}, {row['candidate_id']}) failed: {row['error']}")
        p_yes[(row["query_id"], row["candidate_id"])] = row["score"]

    def score(qid: str, cid: str, cos: float) -> float:
        if (qid, cid) not in p_yes:
            raise ValueError(f"no reranker score for query {qid}, candidate {cid}")
        return float(fuse(np.array([cos]), np.array([p_yes[(qid, cid)]]), alpha)[0])

    retrieved = defaultdict(list)
    for row in mined.to_pylist():
        retrieved[row["query_id"]].append((row["candidate_id"], row["similarity"]))
    positives = defaultdict(list)
    for (qid, cid), cos in sorted(positive_similarity.items()):
        positives[qid].append((cid, score(qid, cid, cos)))
    rows, params = [], json.dumps({"alpha": alpha, "k": k}, sort_keys=True)
    for qid, candidates in retrieved.items():
        if not positives[qid]:
            raise ValueError(f"query {qid} has no positive with a cosine: the teacher needs its positive's score")
        fused = sorted(((score(qid, cid, cos), cid) for cid, cos in candidates), key=lambda t: (-t[0], t[1]))[:k]
        rows.append({"query_id": qid, "negative_ids": [c for _, c in fused], "negative_scores": [s for s, _ in fused],
                     "positive_score": min(s for _, s in positives[qid]),
                     "positive_ids": [p for p, _ in positives[qid]], "positive_scores": [s for _, s in positives[qid]],
                     "strategy": "distill", "params": params,
                     "outcome": "selected" if len(fused) == k else "padded", "false_negatives_removed": 0})
    return pa.Table.from_pylist(rows, schema=HARD_NEGATIVES)
