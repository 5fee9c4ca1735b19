"""Recall + rerank fusion (U-MARVEL §3.3 / App. C: S = alpha * S_recall + (1 - alpha) * S_rerank).

The paper writes the convex combination with alpha tuned; the released code adds ``cos + w * P(Yes)``
with w = 1.0 (0.5 / 0.1 for two MSCOCO tasks), which is the same ranking as alpha = 1 / (1 + w).
This module follows the paper's form (alpha in [0, 1], so alpha = 1 is recall alone and alpha = 0
rerank alone) and can choose alpha on a validation split: the grid value with the best mean
M-BEIR Recall@k over the validation queries, ties to the larger alpha (the cheaper, recall-heavier side).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..evaluate.metrics import mbeir_recall_at_k
from ..evaluate.rerank import RecallList, order_rows


def fuse(recall: np.ndarray, rerank: np.ndarray, alpha: float) -> np.ndarray:
    """alpha * recall + (1 - alpha) * rerank, elementwise; alpha in [0, 1]."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"the fusion weight alpha must be in [0, 1], got {alpha}")
    recall, rerank = np.asarray(recall, dtype=np.float64), np.asarray(rerank, dtype=np.float64)
    if recall.shape != rerank.shape:
        raise ValueError(f"recall scores {recall.shape} and rerank scores {rerank.shape} differ in shape")
    return alpha * recall + (1.0 - alpha) * rerank


def rerank_order(candidate_ids: Sequence[str], recall: np.ndarray, rerank: np.ndarray, alpha: float) -> list[str]:
    """``candidate_ids`` by fused score, best first (stable: ties keep the recall order)."""
    fused = fuse(recall, rerank, alpha)
    return [candidate_ids[i] for i in np.argsort(-fused, kind="stable")]


def choose_alpha(queries: Mapping[str, tuple[Sequence[str], np.ndarray, np.ndarray, set[str]]], k: int,
                 grid: Sequence[float] = tuple(np.round(np.linspace(0.0, 1.0, 11), 2))) -> tuple[float, dict[float, float]]:
    """The alpha of ``grid`` with the best mean Recall@k over the validation ``queries``
    (``{query_id: (candidate_ids, recall, rerank, positive_ids)}``), and the score of every alpha."""
    if not queries:
        raise ValueError("choosing alpha needs at least one validation query")
    scores = {}
    for alpha in grid:
        runs = [rerank_order(ids, rec, rr, alpha) for ids, rec, rr, _ in queries.values()]
        scores[float(alpha)] = float(mbeir_recall_at_k(runs, [positives for *_, positives in queries.values()], k).mean())
    best = max(scores.items(), key=lambda item: (item[1], item[0]))[0]
    return best, scores


def reranked(lst: RecallList, rerank_scores: dict[tuple[str, str], float], depth: int, alpha: float) -> list[str]:
    """The list's top ``depth`` by fused score, then the rest in recall order."""
    top = list(lst.candidate_ids[:depth])
    fused = rerank_order(top, np.array(lst.scores[:depth]), np.array([rerank_scores[(lst.query_id, c)] for c in top]), alpha)
    return fused + list(lst.candidate_ids[depth:])


def rerank_rows(lists: list[RecallList], rerank_scores: dict[tuple[str, str], float], depth: int, alpha: float) -> list[dict]:
    """Score rows (evaluate/results.py SCORES, without the tag) of the lists reranked by fused score."""
    return order_rows(lists, [reranked(lst, rerank_scores, depth, alpha) for lst in lists])
