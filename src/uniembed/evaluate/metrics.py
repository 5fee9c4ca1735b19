"""The benchmarks' metric definitions (docs/evaluation.md), one small function each.

Per-query metrics take ``ranked`` (per query, candidate ids best first) and return a float64 array
with one value per query; aggregate with :func:`mean_by` and :func:`macro_average`. A ranked list
is used exactly as given, so a FAISS top-k run (see :func:`ids_from_faiss`) is accepted as-is;
:func:`rank_by_score` turns raw scores into a ranking with trec_eval's tie rule.

Errors (``ValueError``): no queries, ``len(ranked) != len(positives)``, ``k < 1``, a query with no
positives (named by its index, never scored 0), a ranked list that repeats an id, and scores that
are empty or not finite.
"""
from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping, Sequence
from typing import Literal

import numpy as np

# M-BEIR (dataset, task) pairs scored at Recall@10 instead of Recall@5.
_MBEIR_RECALL_AT_10 = {("fashion200k", 0), ("fashion200k", 3), ("fashioniq", 7)}

Ranked = Sequence[Sequence[str]]  # per query, candidate ids best first
Positives = Sequence[Collection[str]]  # per query, the relevant candidate ids


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")


def _tie_keys(ids: Sequence[str]) -> np.ndarray:
    """Each id's position in descending id order: ascending key = trec_eval's tie order."""
    if len(set(ids)) != len(ids):
        raise ValueError("candidate ids must be unique")
    order = sorted(range(len(ids)), key=lambda j: ids[j], reverse=True)
    keys = np.empty(len(ids), dtype=np.int64)
    keys[order] = np.arange(len(ids))
    return keys


def _order(scores: np.ndarray, tie_keys: np.ndarray, k: int | None) -> np.ndarray:
    n = scores.shape[0]
    candidates = np.arange(n)
    if k is not None and k < n:  # keep every score >= the k-th largest so boundary ties survive
        kth_largest = np.partition(scores, n - k)[n - k]
        candidates = np.flatnonzero(scores >= kth_largest)
    order = candidates[np.lexsort((tie_keys[candidates], -scores[candidates]))]
    return order if k is None else order[:k]


def _as_scores(scores: np.ndarray, n_ids: int, ndim: int) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != ndim or scores.shape[-1] != n_ids or scores.size == 0:
        raise ValueError(f"scores of shape {scores.shape} do not match {n_ids} ids (ndim {ndim})")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite")
    return scores


def rank_by_score(scores: np.ndarray, ids: Sequence[str], k: int | None = None) -> list[str]:
    """Ids by descending score, ties broken by descending id (byte order); the top ``k`` if given.

    This is trec_eval's order, hence pytrec_eval's: ``form_res_rels.c`` sorts results with
    ``comp_sim_docno``, which compares ``sim`` descending and then ``strcmp(p2->docno,
    p1->docno)``, i.e. docno descending. Python's ``str`` order equals ``strcmp`` on UTF-8 bytes.
    """
    if k is not None:
        _check_k(k)
    order = _order(_as_scores(scores, len(ids), 1), _tie_keys(ids), k)
    return [ids[j] for j in order]


def rank_rows_by_score(
    scores: np.ndarray, ids: Sequence[str], k: int | None = None
) -> list[list[str]]:
    """:func:`rank_by_score` for each row of a (queries, candidates) score matrix."""
    if k is not None:
        _check_k(k)
    scores, keys = _as_scores(scores, len(ids), 2), _tie_keys(ids)
    return [[ids[j] for j in _order(row, keys, k)] for row in scores]


def ids_from_faiss(indices: np.ndarray, ids: Sequence[str]) -> list[list[str]]:
    """FAISS ``search`` indices (queries, k) as id lists in FAISS's order; -1 (no hit) dropped."""
    return [[ids[j] for j in row if j >= 0] for row in np.asarray(indices, dtype=np.int64)]


def _runs(ranked: Ranked, judgements: Sequence) -> list[list[str]]:
    if len(ranked) == 0:
        raise ValueError("no queries to evaluate")
    if len(ranked) != len(judgements):
        raise ValueError(f"{len(ranked)} ranked lists but {len(judgements)} judgement sets")
    runs = [list(run) for run in ranked]
    for i, run in enumerate(runs):
        if len(set(run)) != len(run):
            raise ValueError(f"query {i}: the ranked list repeats an id")
    return runs


def _positive_sets(positives: Positives) -> list[set[str]]:
    sets = [set(pos) for pos in positives]
    for i, pos in enumerate(sets):
        if not pos:
            raise ValueError(f"query {i} has no positives")
    return sets


def mbeir_recall_at_k(ranked: Ranked, positives: Positives, k: int) -> np.ndarray:
    """M-BEIR "Recall@k": 1 if any positive is in the top ``k``, else 0 (per query).

    UniIR ``src/common/mbeir_retriever.py::compute_recall_at_k`` ("recall used by CLIP and BLIP");
    equals pytrec_eval ``success.k``, and classic recall only when a query has one positive.
    """
    _check_k(k)
    runs, sets = _runs(ranked, positives), _positive_sets(positives)
    return np.array([float(any(d in pos for d in run[:k])) for run, pos in zip(runs, sets)])


def mbeir_k(dataset_name: str, task_id: int) -> int:
    """The k M-BEIR reports: 10 for Fashion200K (tasks 0, 3) and FashionIQ (task 7), else 5.

    As in the UniIR paper's M-BEIR tables, followed by U-MARVEL; the dataset name is case-insensitive.
    """
    valid = isinstance(task_id, (int, np.integer)) and not isinstance(task_id, bool)
    if not valid or not 0 <= task_id <= 8:
        raise ValueError(f"M-BEIR task ids are integers 0..8, got {task_id!r}")
    return 10 if (dataset_name.strip().lower(), int(task_id)) in _MBEIR_RECALL_AT_10 else 5


def recall_at_k(ranked: Ranked, positives: Positives, k: int) -> np.ndarray:
    """Classic recall: |positives in the top ``k``| / |positives| (pytrec_eval ``recall.k``)."""
    _check_k(k)
    runs, sets = _runs(ranked, positives), _positive_sets(positives)
    return np.array([sum(d in pos for d in run[:k]) / len(pos) for run, pos in zip(runs, sets)])


def precision_at_1_mmeb(
    scores: Sequence[np.ndarray], ties: Literal["argmax", "pessimistic"] = "argmax"
) -> np.ndarray:
    """MMEB Precision@1 per query: scores over the query's own candidates, the positive at index 0.

    ``ties="argmax"`` is VLM2Vec's rule (``evaluation/eval_utils.py::get_pred`` takes
    ``np.argmax``, ``eval.py`` counts ``pred == 0``): argmax returns the first maximum, so a tie
    with the positive counts as correct. ``ties="pessimistic"`` counts any tie with the positive
    as wrong (correct iff ``scores[0] > max(scores[1:])``).
    """
    if ties not in ("argmax", "pessimistic"):
        raise ValueError(f"ties must be 'argmax' or 'pessimistic', got {ties!r}")
    if len(scores) == 0:
        raise ValueError("no queries to evaluate")
    correct = np.empty(len(scores))
    for i, row in enumerate(scores):
        row = np.asarray(row, dtype=np.float64)
        if row.ndim != 1 or row.size == 0 or not np.isfinite(row).all():
            raise ValueError(f"query {i}: scores must be a non-empty 1-D array of finite values")
        if ties == "argmax":
            correct[i] = float(np.argmax(row) == 0)
        else:
            correct[i] = float(row.size == 1 or row[0] > row[1:].max())
    return correct


def ndcg_at_k(
    ranked: Ranked, relevance: Sequence[Mapping[str, int]], k: int = 10
) -> np.ndarray:
    """nDCG@k with linear gain: sum over the top ``k`` of rel / log2(rank + 1), over the ideal DCG.

    The ideal DCG takes the ``k`` largest relevance values among ALL judged documents, retrieved
    or not; unjudged documents have relevance 0. Equals pytrec_eval ``ndcg_cut.k`` (trec_eval
    ``m_ndcg_cut.c``), the nDCG@10 of MTEB/BEIR.
    """
    _check_k(k)
    runs = _runs(ranked, relevance)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    values = np.empty(len(runs))
    for i, (run, rel) in enumerate(zip(runs, relevance)):
        if any(r < 0 for r in rel.values()):
            raise ValueError(f"query {i}: relevance values must be >= 0")
        ideal = sorted((r for r in rel.values() if r > 0), reverse=True)[:k]
        if not ideal:
            raise ValueError(f"query {i} has no positives")
        gains = [rel.get(d, 0) for d in run[:k]]
        values[i] = np.dot(gains, discounts[: len(gains)]) / np.dot(ideal, discounts[: len(ideal)])
    return values


def map_at_k(
    ranked: Ranked,
    positives: Positives,
    k: int,
    denominator: Literal["R", "min(R,k)"] = "R",
) -> np.ndarray:
    """AP@k per query: the sum of precision@i at each positive rank i <= ``k``, over a denominator.

    ``"R"`` (the number of positives) is pytrec_eval ``map_cut.k`` and ranx ``map@k``;
    ``"min(R,k)"`` is VLM2Vec's ``src/eval_utils/metrics.py::average_precision_at_k``, which gives
    1.0 to a top k made only of positives even when R > k. Report which one is used. CIRCO's mAP@k
    (Baldrati et al. 2023; miccunifi/CIRCO ``src/evaluation.py::compute_metrics``, k = 5, 10, 25,
    50, R = the query's ``gt_img_ids``) is ``"min(R,k)"``.
    """
    _check_k(k)
    if denominator not in ("R", "min(R,k)"):
        raise ValueError(f"denominator must be 'R' or 'min(R,k)', got {denominator!r}")
    runs, sets = _runs(ranked, positives), _positive_sets(positives)
    values = np.empty(len(runs))
    for i, (run, pos) in enumerate(zip(runs, sets)):
        hits, total = 0, 0.0
        for rank, d in enumerate(run[:k], start=1):
            if d in pos:
                hits += 1
                total += hits / rank
        values[i] = total / (len(pos) if denominator == "R" else min(len(pos), k))
    return values


def mrr_at_k(ranked: Ranked, positives: Positives, k: int | None = None) -> np.ndarray:
    """Reciprocal rank of the first positive within the top ``k`` (whole list if None), else 0.

    With ``k=None`` this is pytrec_eval ``recip_rank``.
    """
    if k is not None:
        _check_k(k)
    runs, sets = _runs(ranked, positives), _positive_sets(positives)
    values = np.zeros(len(runs))
    for i, (run, pos) in enumerate(zip(runs, sets)):
        for rank, d in enumerate(run if k is None else run[:k], start=1):
            if d in pos:
                values[i] = 1.0 / rank
                break
    return values


def mean_by(
    values: Sequence[float] | np.ndarray, groups: Sequence[Hashable]
) -> dict[Hashable, float]:
    """Mean of per-query ``values`` per group (e.g. ``(dataset, task_id)``), in first-seen order.

    This is how UniIR averages Recall@k per (dataset, task) and VLM2Vec accuracy per dataset.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError("values must be a non-empty 1-D sequence")
    if len(groups) != values.size:
        raise ValueError(f"{values.size} values but {len(groups)} groups")
    members: dict[Hashable, list[int]] = {}
    for i, group in enumerate(groups):
        members.setdefault(group, []).append(i)
    return {group: float(values[idx].mean()) for group, idx in members.items()}


def macro_average(scores: Mapping[Hashable, float]) -> float:
    """Unweighted mean of per-dataset scores, whatever each dataset's size.

    MMEB's meta-task, IND, OOD and overall scores and M-BEIR's average are computed this way.
    """
    if not scores:
        raise ValueError("no scores to average")
    values = np.array(list(scores.values()), dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError(f"scores must be finite: {dict(scores)}")
    return float(values.mean())
