"""Apply a hard-negative strategy to whole tables (docs/hard-negatives.md, the ``filter`` stage).

Inputs: the ``MINED`` table (query_id, rank, candidate_id, similarity; rank 1 = most similar) and
the ``JUDGE_SCORES`` table (one row per (query, mined candidate) and per (query, positive); a
pair is usable when ``status == "ok"`` and its score is finite) -- both in
:mod:`uniembed.mine.schemas`. Output: one ``HARD_NEGATIVES`` row per query seen in either table,
including the queries that get no negatives (outcome ``"no_positive_score"`` or
``"no_candidates"``, empty lists), plus a summary of counts. Nothing is dropped silently: mined
candidates without a judge row, judged candidates that were never mined, queries without mined
rows and failed judge rows are all counted.

Errors (``ValueError``): an unknown strategy or parameter, a missing required parameter, a
missing column (named), a null key, a candidate repeated within a query, a judge pair repeated,
a ``task_of`` mapping that lacks a query, and a judge row with status ``ok`` whose score is null,
not finite or outside [0, 1] (naming the query and candidate: a judge's P(Yes) is a probability,
and a bad one would silently turn into a fallback, a kept false negative or a soft label).

Each positive keeps its own score (``positive_ids`` / ``positive_scores``): the soft-label trainer
feeds the score of the positive it samples, as UniME-V2's training rows pair every positive with
its ``query_pos_scores``; ``positive_score`` is the lowest usable one, the filter's sigma(q, c_t).
"""
from __future__ import annotations

import dataclasses
import json
from collections import Counter, defaultdict
from collections.abc import Mapping

import pyarrow as pa

from ..mine.schemas import HARD_NEGATIVES
from . import usable
from .params import STRATEGY_PARAMS
from .umarvel import select_umarvel
from .unime_v2 import query_seed, select_unime_v2

#: strategy -> (required parameters, defaults of the optional ones), from .params
STRATEGIES = {name: ({f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING},
                     {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING})
              for name, cls in STRATEGY_PARAMS.items()}
_MINED_COLUMNS = ("query_id", "rank", "candidate_id", "similarity")
_JUDGE_COLUMNS = ("query_id", "candidate_id", "is_positive", "score", "status")


def resolve_params(strategy: str, params: Mapping) -> dict:
    """The strategy's full parameter set: defaults filled in, unknown or missing keys refused."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {sorted(STRATEGIES)}")
    required, defaults = STRATEGIES[strategy]
    unknown = set(params) - required - set(defaults)
    if unknown:
        raise ValueError(f"{strategy}: unknown parameters {sorted(unknown)}")
    missing = required - set(params)
    if missing:
        raise ValueError(f"{strategy}: missing required parameters {sorted(missing)}")
    resolved = {**defaults, **params}
    if strategy == "umarvel" and resolved["score_column"] not in ("similarity", "score"):
        raise ValueError(f"umarvel: score_column must be 'similarity' or 'score', got {resolved['score_column']!r}")
    return resolved


def _columns(table: pa.Table, name: str, columns: tuple[str, ...], not_null: tuple[str, ...]) -> dict[str, list]:
    for column in columns:
        if column not in table.column_names:
            raise ValueError(f"{name} table lacks column {column!r}; has {table.column_names}")
    out = {c: table[c].to_pylist() for c in columns}
    for column in not_null:
        if table[column].null_count:
            raise ValueError(f"{name} table: column {column!r} has {table[column].null_count} null values")
    return out


def _run(mined: pa.Table, judged: pa.Table | None, strategy: str, params: Mapping):
    """Per query (sorted by id): (query_id, [(positive id, score or None)], Selection), and the table-level counts."""
    params = resolve_params(strategy, params)
    uses_judge = strategy == "unime_v2" or params.get("score_column") == "score"
    if judged is None and uses_judge:
        raise ValueError(f"{strategy} with these parameters needs the judge scores table")
    m = _columns(mined, "mined", _MINED_COLUMNS, ("query_id", "rank", "candidate_id"))
    per_query: dict[str, list] = defaultdict(list)
    for qid, rank, cid, sim in zip(m["query_id"], m["rank"], m["candidate_id"], m["similarity"]):
        per_query[qid].append((rank, cid, sim))
    positives: dict[str, list] = defaultdict(list)
    judge: dict[tuple[str, str], float | None] = {}
    counts = Counter()
    if judged is not None:
        j = _columns(judged, "judged", _JUDGE_COLUMNS, ("query_id", "candidate_id", "is_positive", "status"))
        seen = set()
        for qid, cid, is_pos, score, status in zip(*(j[c] for c in _JUDGE_COLUMNS)):
            if (qid, cid, is_pos) in seen:
                raise ValueError(f"judged table repeats the pair ({qid!r}, {cid!r}, is_positive={is_pos})")
            seen.add((qid, cid, is_pos))
            if status == "ok" and not (usable(score) and 0.0 <= score <= 1.0):
                raise ValueError(f"judge row of query {qid!r}, candidate {cid!r} (is_positive={is_pos}) has status "
                                 f"'ok' but score {score!r}: expected a finite P(Yes) in [0, 1]")
            ok = status == "ok"
            counts["failed_judge_rows_excluded"] += not ok
            if is_pos:
                positives[qid].append((cid, score if ok else None))
            else:
                judge[(qid, cid)] = score if ok else None
    for qid, rows in per_query.items():
        rows.sort(key=lambda r: r[0])
        if len({cid for _, cid, _ in rows}) != len(rows):
            raise ValueError(f"mined table repeats a candidate for query {qid!r}")
    mined_pairs = {(qid, cid) for qid, rows in per_query.items() for _, cid, _ in rows}
    if judged is not None:
        counts["mined_candidates_without_judge_row"] = len(mined_pairs - judge.keys())
        counts["judged_candidates_not_mined"] = len(judge.keys() - mined_pairs)
    results = []
    for qid in sorted(set(per_query) | set(positives) | {q for q, _ in judge}):
        rows = per_query.get(qid, [])
        counts["queries_without_mined_rows"] += not rows
        ids = [cid for _, cid, _ in rows]
        positive_score = lowest_score(positives.get(qid, []))
        if strategy == "unime_v2":
            sel = select_unime_v2(ids, [judge.get((qid, c)) for c in ids], positive_score, beta=params["beta"],
                                  k=params["k"], interval=params["interval"], minimum=params["minimum"],
                                  seed=query_seed(params["seed"], qid))
        else:
            scores = ([sim for _, _, sim in rows] if params["score_column"] == "similarity"
                      else [judge.get((qid, c)) for c in ids])
            sel = select_umarvel(ids, scores, threshold=params["threshold"], k=params["k"])
        results.append((qid, positives.get(qid, []), sel))
    return params, results, counts


def lowest_score(positives: list[tuple[str, float | None]]) -> float | None:
    """The lowest usable score of a query's positives (UniME-V2's sigma(q, c_t) with several), or None."""
    scores = [s for _, s in positives if s is not None]
    return min(scores) if scores else None


def select_hard_negatives(mined: pa.Table, judged: pa.Table | None, strategy: str, params: Mapping,
                          *, task_of: Mapping[str, object] | None = None) -> tuple[pa.Table, dict]:
    """The ``HARD_NEGATIVES`` table for ``strategy`` ("unime_v2" | "umarvel") and its summary."""
    params, results, counts = _run(mined, judged, strategy, params)
    params_json = json.dumps(params, sort_keys=True)
    rows = [{"query_id": qid, "negative_ids": list(sel.negative_ids), "negative_scores": list(sel.negative_scores),
             "positive_score": lowest_score(pos), "positive_ids": [p for p, _ in pos],
             "positive_scores": [s for _, s in pos], "strategy": strategy, "params": params_json,
             "outcome": sel.outcome, "false_negatives_removed": sel.false_negatives_removed}
            for qid, pos, sel in results]
    outcomes = Counter(sel.outcome for _, _, sel in results)
    n = len(results)
    summary = {
        "strategy": strategy, "params": params, "queries_in": n,
        "queries_with_selections": sum(outcomes[o] for o in ("selected", "padded", "fallback_random")),
        "false_negatives_removed": sum(sel.false_negatives_removed for _, _, sel in results),
        "queries_padded": outcomes["padded"],
        "queries_fallback": outcomes["fallback_random"],
        "fallback_fraction": outcomes["fallback_random"] / n if n else 0.0,
        "queries_without_positive_score": outcomes["no_positive_score"],
        "queries_without_candidates": outcomes["no_candidates"],
        "queries_with_fewer_than_k": sum(0 < len(sel.negative_ids) < params["k"] for _, _, sel in results),
        "candidates_without_score_excluded": sum(sel.unscored_excluded for _, _, sel in results),
        "outcomes": {o: outcomes[o] for o in sorted(outcomes)},
        **{key: counts[key] for key in ("failed_judge_rows_excluded", "queries_without_mined_rows",
                                        "mined_candidates_without_judge_row", "judged_candidates_not_mined")},
    }
    if task_of is not None:
        missing = [qid for qid, _, _ in results if qid not in task_of]
        if missing:
            raise ValueError(f"task_of lacks {len(missing)} queries, e.g. {missing[:3]}")
        per_task = Counter()
        for qid, _, sel in results:
            per_task[str(task_of[qid])] += sel.false_negatives_removed
        summary["false_negatives_removed_per_task"] = dict(sorted(per_task.items()))
    return pa.Table.from_pylist(rows, schema=HARD_NEGATIVES), summary


def removed_false_negatives(mined: pa.Table, judged: pa.Table | None, strategy: str,
                            params: Mapping) -> dict[str, set[str]]:
    """Per query, the candidates the strategy removed as false negatives (same rules as above)."""
    _, results, _ = _run(mined, judged, strategy, params)
    return {qid: set(sel.removed_ids) for qid, _, sel in results}
