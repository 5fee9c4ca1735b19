"""How well the judge's scores separate true matches from non-matches (docs/hard-negatives.md).

Inputs: the ``JUDGE_SCORES`` table (:mod:`uniembed.mine.schemas`) and the synthetic world's truth,
query id -> every candidate that truly satisfies the query (``truth/mbeir_truth.parquet``:
``qid``, ``true_match_dids``; see :func:`read_truth`). A (query, candidate) pair is a *match*
when the candidate is in the query's truth set, whatever its ``is_positive`` flag says, so a
mined candidate that is a match is a genuine false negative of the mining step.

Reported: ROC-AUC over all usable (``status == "ok"``, finite score) pairs and over the mined
candidates alone (the pairs the filter acts on), the mean score of matches and non-matches, how
many judged queries have at least one genuine match among their mined candidates (count and
fraction: how much there is for the filter to find), and, given the filter's removed candidates
(:func:`uniembed.negatives.select.removed_false_negatives`), the precision of the removal (removed
pairs that are genuine matches) and its recall (genuine matches among the judged mined candidates
that were removed). Undefined values are None, never 0.

Errors (``ValueError``): a missing column (named), a null key.
"""
from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

_COLUMNS = ("query_id", "candidate_id", "is_positive", "score", "status")


def roc_auc(scores, labels) -> float | None:
    """ROC-AUC by the rank-sum (Mann-Whitney U) formula, ties counted 0.5; None if a class is empty.

    AUC = (R+ - n+(n+ + 1)/2) / (n+ n-), R+ = sum of the matches' average ranks (1 = lowest).
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    if scores.shape != labels.shape or scores.ndim != 1:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} must be equal-length vectors")
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)                    # rank of each tie group's last member
    average_rank = upper - (counts - 1) / 2.0    # mean of ranks upper - count + 1 .. upper
    rank_sum = average_rank[inverse][labels].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def read_truth(path: str | os.PathLike) -> dict[str, set[str]]:
    """``truth/mbeir_truth.parquet`` as query id -> set of truly matching candidate ids."""
    table = pq.read_table(path, columns=["qid", "true_match_dids"])
    return {q: set(d) for q, d in zip(table["qid"].to_pylist(), table["true_match_dids"].to_pylist())}


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _checked(judged: pa.Table) -> None:
    for column in _COLUMNS:
        if column not in judged.column_names:
            raise ValueError(f"judged table lacks column {column!r}; has {judged.column_names}")
    for column in ("query_id", "candidate_id", "is_positive", "status"):
        if judged[column].null_count:
            raise ValueError(f"judged table: column {column!r} has null values")


@dataclass
class ScoredPairs:
    """One pass over a judged table against the truth: the usable pairs' scores, whether each truly
    matches and is a mined candidate, and the counts the report needs."""
    scores: np.ndarray
    matches: np.ndarray
    mined: np.ndarray
    queries: set
    no_truth: set
    with_match: set
    failed: int
    mined_matches: int
    positives_not_in_truth: int


def score_against_truth(judged: pa.Table, truth: Mapping[str, Collection[str]]) -> ScoredPairs:
    """Every pair of ``judged`` labelled by ``truth`` (queries without truth counted, left out)."""
    _checked(judged)
    scores, labels, mined_flags = [], [], []
    no_truth, queries, with_match = set(), set(), set()
    failed = mined_matches = positives_not_in_truth = 0
    for qid, cid, is_pos, score, status in zip(*(judged[c].to_pylist() for c in _COLUMNS)):
        if qid not in truth:
            no_truth.add(qid)
            continue
        queries.add(qid)
        match = cid in truth[qid]
        positives_not_in_truth += bool(is_pos and not match)
        mined_matches += bool(not is_pos and match)
        if not is_pos and match:
            with_match.add(qid)
        if status != "ok" or score is None or not np.isfinite(score):
            failed += 1
            continue
        scores.append(float(score))
        labels.append(match)
        mined_flags.append(not is_pos)
    return ScoredPairs(np.array(scores, dtype=np.float64), np.array(labels, dtype=bool), np.array(mined_flags, dtype=bool),
                       queries, no_truth, with_match, failed, mined_matches, positives_not_in_truth)


def labelled_scores(judged: pa.Table, truth: Mapping[str, Collection[str]]) -> tuple[np.ndarray, np.ndarray]:
    """The usable pairs' scores and whether each pair truly matches (queries without truth left out)."""
    scored = score_against_truth(judged, truth)
    return scored.scores, scored.matches


def judge_quality(judged: pa.Table, truth: Mapping[str, Collection[str]],
                  removed: Mapping[str, Collection[str]] | None = None, scored: ScoredPairs | None = None) -> dict:
    """The judge quality report (a flat dict of counts and rates; see the module docstring); ``scored``:
    :func:`score_against_truth` of the same table, when the caller has it already."""
    p = scored or score_against_truth(judged, truth)
    scores_a, labels_a, mined_a = p.scores, p.matches, p.mined
    queries, no_truth, with_match = p.queries, p.no_truth, p.with_match
    report = {
        "queries": len(queries), "queries_without_truth": len(no_truth),
        "pairs_scored": len(scores_a), "pairs_failed": p.failed,
        "matches": int(labels_a.sum()), "non_matches": int((~labels_a).sum()),
        "roc_auc": roc_auc(scores_a, labels_a),
        "roc_auc_mined": roc_auc(scores_a[mined_a], labels_a[mined_a]) if mined_a.size else None,
        "mean_score_matches": _mean(scores_a[labels_a].tolist()),
        "mean_score_non_matches": _mean(scores_a[~labels_a].tolist()),
        "mined_genuine_matches": p.mined_matches,
        "queries_with_genuine_match": len(with_match),
        "queries_with_genuine_match_fraction": len(with_match) / len(queries) if queries else None,
        "positives_not_in_truth": p.positives_not_in_truth,
    }
    if removed is not None:
        pairs = [(q, c) for q, cids in removed.items() for c in cids if q in truth]
        genuine = sum(c in truth[q] for q, c in pairs)
        report.update({
            "removed_pairs": len(pairs), "removed_genuine_matches": genuine,
            "removed_without_truth": sum(len(c) for q, c in removed.items() if q not in truth),
            "removal_precision": genuine / len(pairs) if pairs else None,
            "removal_recall": genuine / p.mined_matches if p.mined_matches else None,
        })
    return report


_LABELS = {
    "queries": "queries judged (with truth)", "queries_without_truth": "queries without truth (excluded)",
    "pairs_scored": "pairs scored (status ok)", "pairs_failed": "pairs failed (excluded)",
    "matches": "scored pairs that truly match", "non_matches": "scored pairs that do not match",
    "roc_auc": "ROC-AUC, all scored pairs", "roc_auc_mined": "ROC-AUC, mined candidates only",
    "mean_score_matches": "mean score, matches", "mean_score_non_matches": "mean score, non-matches",
    "mined_genuine_matches": "mined candidates that truly match (false negatives)",
    "queries_with_genuine_match": "queries with a genuine match among mined candidates",
    "queries_with_genuine_match_fraction": "fraction of queries with a genuine match among mined candidates",
    "positives_not_in_truth": "labelled positives not in truth",
    "removed_pairs": "removed as false negatives", "removed_genuine_matches": "removed that truly match",
    "removed_without_truth": "removed, query without truth",
    "removal_precision": "removal precision (removed that truly match / removed)",
    "removal_recall": "removal recall (removed that truly match / mined that truly match)",
}


def judge_quality_markdown(report: Mapping, title: str = "Judge quality") -> str:
    """The report as a Markdown table (rates to 4 decimals, undefined values as "n/a")."""
    lines = [f"## {title}", "", "| measure | value |", "| --- | ---: |"]
    for key, value in report.items():
        text = "n/a" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)
        lines.append(f"| {_LABELS.get(key, key)} | {text} |")
    return "\n".join(lines) + "\n"
