"""MMEB evaluation (VLM2Vec protocol; UniME-V2 Table 1): Precision@1 over each query's own candidates.

Each eval query is scored against its candidate list (positive first) by cosine similarity;
it is correct when the positive scores highest (VLM2Vec's argmax rule, see
:func:`uniembed.evaluate.metrics.precision_at_1_mmeb`). Per-dataset accuracy in percent; the
meta-task, IND, OOD and overall scores are unweighted means of per-dataset scores.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow as pa

from .metrics import macro_average, precision_at_1_mmeb

META_TASKS = ("Classification", "VQA", "Retrieval", "Grounding")


def evaluate_mmeb(queries: pa.Table, datasets: pa.Table, query_vectors: dict[str, np.ndarray],
                  candidate_vectors: dict[str, np.ndarray], split: str = "eval") -> list[dict]:
    rows = [r for r in queries.to_pylist() if r["split"] == split]
    if not rows:
        raise ValueError(f"no {split!r} queries to evaluate")
    meta = {d["dataset"]: d for d in datasets.to_pylist()}
    scores = defaultdict(list)
    for r in rows:
        if not r["candidate_ids"] or r["candidate_ids"][0] != r["positive_ids"][0]:
            raise ValueError(f"query {r['query_id']}: MMEB needs its own candidates with the positive first")
        cands = np.stack([candidate_vectors[c] for c in r["candidate_ids"]]).astype(np.float32)
        scores[r["dataset"]].append(cands @ np.asarray(query_vectors[r["query_id"]], dtype=np.float32))
    out = []
    for dataset, per_query in sorted(scores.items()):
        info = meta.get(dataset, {})
        out.append({"benchmark": "mmeb", "setting": info.get("eval_group") or "unknown", "dataset": dataset,
                    "task_id": None, "meta_task": info.get("meta_task"), "metric": "P@1",
                    "value": 100.0 * float(precision_at_1_mmeb(per_query).mean()), "n_queries": len(per_query)})
    return out


def mmeb_summary(rows: list[dict]) -> dict[str, tuple[float, int]]:
    """Meta-task / IND / OOD / Overall averages of per-dataset P@1: ``{column: (score, n_datasets)}``."""
    columns: dict[str, dict[str, float]] = defaultdict(dict)
    for r in rows:
        if r["meta_task"]:
            columns[r["meta_task"]][r["dataset"]] = r["value"]
        if r["setting"] in ("IND", "OOD"):
            columns[r["setting"]][r["dataset"]] = r["value"]
        columns["Overall"][r["dataset"]] = r["value"]
    order = [*META_TASKS, "IND", "OOD", "Overall"]
    return {c: (macro_average(columns[c]), len(columns[c])) for c in order if columns.get(c)}
