"""Zero-shot retrieval and matching on the papers' unseen sets (UniME-V2 §4.3 Table 2; U-MARVEL §4.4 Table 8,
Appendix B), from the curated tables of :mod:`uniembed.data.readers` (``karpathy``, ``sharegpt4v``, ``urban1k``,
``circo``, ``cirr``, ``fashioniq``, ``sugarcrepe``).

* Pool formats: every query is ranked against its own pool (the split's images or captions), inner product of the
  L2-normalised embeddings, trec_eval's tie rule; Recall@k is "any positive in the top k" (the CLIP / UniIR
  recall both papers report). The metrics per format are :data:`METRICS`: R@1/5/10 for image-text retrieval
  (Table 2 and Table 8 print R@1), CIRCO's mAP@k with min(R, k) (Table 8: MAP@5), CIRR's R@1/5/10/50 and its
  subset R@1/2/3 (the ``cirr_subset`` queries), FashionIQ's R@10/50.
* Composed retrieval (CIRCO, CIRR): the reference image is removed from the query's ranking, as both datasets'
  evaluation code does (a gallery holds the reference; ranking it first is not a retrieval).
* SugarCrepe: each image's caption against its hard negative; accuracy is how often the caption scores higher
  (Table 2's Replace / Swap / Add columns are one file each: one ``dataset`` each).
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow as pa

from .mbeir import pool_members, rank_pool
from .metrics import map_at_k, mbeir_recall_at_k, mean_by, rank_by_score

#: The formats scored here, and the metrics of each: ("R", k) Recall@k, ("mAP", k) mAP@k (min(R, k)).
METRICS = {
    "karpathy": (("R", 1), ("R", 5), ("R", 10)),
    "sharegpt4v": (("R", 1), ("R", 5), ("R", 10)),
    "urban1k": (("R", 1), ("R", 5), ("R", 10)),
    "circo": (("mAP", 5), ("mAP", 10), ("mAP", 25), ("mAP", 50)),
    "cirr": (("R", 1), ("R", 5), ("R", 10), ("R", 50)),
    "fashioniq": (("R", 10), ("R", 50)),
}
SUBSET_METRICS = (("R", 1), ("R", 2), ("R", 3))   # CIRR's Recall_subset@k (the img_set members)
ZEROSHOT_FORMATS = (*METRICS, "sugarcrepe")
COMPOSED = ("circo", "cirr")


def reference_ids(queries: pa.Table, candidates: pa.Table) -> dict[str, str]:
    """Each composed query's reference image as a candidate id (the candidate with the query's image file)."""
    by_path = {p: c for p, c in zip(candidates["image_path"].to_pylist(), candidates["candidate_id"].to_pylist()) if p}
    return {q: by_path[p] for q, p in zip(queries["query_id"].to_pylist(), queries["image_path"].to_pylist())
            if p in by_path}


def evaluate_zeroshot(fmt: str, queries: pa.Table, pools: pa.Table | None, query_vectors: dict,
                      candidate_vectors: dict, references: dict[str, str] | None = None) -> list[dict]:
    """Per (dataset, task, metric) rows of one zero-shot source. A query with ``candidate_ids`` ranks those (CIRR's
    subset, SugarCrepe's pair), else its pool; ``references``: a composed query's reference image, left out of its
    ranking (:func:`reference_ids`). A positive outside what the query is ranked against is an error naming both."""
    if fmt not in ZEROSHOT_FORMATS:
        raise ValueError(f"format {fmt!r} is not a zero-shot format; expected one of {list(ZEROSHOT_FORMATS)}")
    rows, references = queries.to_pylist(), references or {}
    if fmt == "sugarcrepe":
        return _pair_accuracy(rows, query_vectors, candidate_vectors)
    members = pool_members(pools) if pools is not None else {}
    values, groups = [], []
    for ranked_rows, metrics in _ranked(rows, members, query_vectors, candidate_vectors, fmt):
        for r, run in ranked_rows:
            run = [c for c in run if c != references.get(r["query_id"])]
            for kind, k in metrics:
                values.append(float(mbeir_recall_at_k([run], [r["positive_ids"]], k)[0]) if kind == "R" else
                              float(map_at_k([run], [r["positive_ids"]], k, denominator="min(R,k)")[0]))
                groups.append((r["dataset"], r["task_id"], f"{'Recall' if kind == 'R' else 'mAP'}@{k}"))
    return _rows(values, groups)


def _ranked(rows, members, query_vectors, candidate_vectors, fmt):
    """``([(query row, ranked ids)], metrics)`` per pool, then for the queries with their own candidates."""
    by_pool, own = defaultdict(list), []
    for r in rows:
        (own if r["candidate_ids"] else by_pool[r["pool"]]).append(r)
    for pool, group in by_pool.items():
        ids = members.get(pool)
        if not ids:
            raise ValueError(f"pool {pool!r} of {len(group)} zero-shot queries is empty or unknown")
        _check_positives(group, set(ids), f"pool {pool!r}")
        depth = min(len(ids), max(k for _, k in METRICS[fmt]) + 1)   # one more: the reference may be dropped
        runs = rank_pool(np.stack([query_vectors[r["query_id"]] for r in group]),
                         np.stack([candidate_vectors[c] for c in ids]), ids, depth)
        yield list(zip(group, runs)), METRICS[fmt]
    if own:
        for r in own:
            _check_positives([r], set(r["candidate_ids"]), "its candidate_ids")
        yield [(r, rank_by_score(np.array([float(query_vectors[r["query_id"]] @ candidate_vectors[c])
                                           for c in r["candidate_ids"]]), r["candidate_ids"])) for r in own], \
            SUBSET_METRICS


def _check_positives(group: list[dict], ranked: set, where: str) -> None:
    for r in group:
        missing = [p for p in r["positive_ids"] if p not in ranked]
        if missing:
            raise ValueError(f"query {r['query_id']}: positives {missing} are not in {where}")


def _pair_accuracy(rows: list[dict], query_vectors: dict, candidate_vectors: dict) -> list[dict]:
    """SugarCrepe: per dataset, the share of queries whose positive (``candidate_ids[0]``) scores above every
    negative (strictly: a tie is not a success)."""
    values, groups = [], []
    for r in rows:
        q = query_vectors[r["query_id"]]
        positive, *negatives = (float(q @ candidate_vectors[c]) for c in r["candidate_ids"])
        values.append(float(all(positive > s for s in negatives)))
        groups.append((r["dataset"], r["task_id"], "accuracy"))
    return _rows(values, groups)


def _rows(values: list[float], groups: list[tuple]) -> list[dict]:
    means = mean_by(values, groups)
    counts = defaultdict(int)
    for g in groups:
        counts[g] += 1
    return [{"benchmark": "zeroshot", "setting": "zero-shot", "dataset": d, "task_id": t, "meta_task": None,
             "metric": m, "value": 100.0 * v, "n_queries": counts[(d, t, m)]}
            for (d, t, m), v in sorted(means.items(), key=lambda kv: _order(*kv[0]))]


def _order(dataset: str, task, metric: str) -> tuple:
    """Rows by dataset, task, then metric name and its k as a number (Recall@5 before Recall@10)."""
    name, _, k = metric.partition("@")
    return dataset, -1 if task is None else task, name, int(k) if k else 0
