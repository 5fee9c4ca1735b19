"""M-BEIR evaluation in the local and global pool settings (UniIR protocol; U-MARVEL Tables 7, 14).

Local: each test query is ranked against its task's own pool (``queries.pool``). Global: every
test query is ranked against the union pool of its split (``union_test``), with no modality
filtering (a wrong-modality hit is a miss). The score is M-BEIR's "Recall@k" (any positive in the
top k), k = 10 for Fashion200K and FashionIQ, else 5, averaged per (dataset, task), in percent.
Search over-fetches 2k candidates and re-ranks them with trec_eval's tie rule (score
descending, then id descending) before cutting at k.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow as pa

from ..embed.search import search
from .metrics import mbeir_k, mbeir_recall_at_k, mean_by, rank_by_score


def rank_pool(query_vectors: np.ndarray, pool_vectors: np.ndarray, pool_ids: list[str], k: int) -> list[list[str]]:
    """Top-``k`` pool ids per query by inner product (vectors are L2-normalised embeddings)."""
    depth = min(len(pool_ids), 2 * k)
    scores, indices = search(np.ascontiguousarray(pool_vectors, dtype=np.float32),
                             np.ascontiguousarray(query_vectors, dtype=np.float32), depth)
    return [rank_by_score(s, [pool_ids[j] for j in row], k) for s, row in zip(scores, indices)]


def pool_members(pools: pa.Table) -> dict[str, list[str]]:
    """Candidate ids of every pool of a curated ``pools`` table, in table order."""
    members: dict[str, list[str]] = defaultdict(list)
    for pool, cid in zip(pools["pool"].to_pylist(), pools["candidate_id"].to_pylist()):
        members[pool].append(cid)
    return members


def global_pool_name(pool_names, split: str) -> str:
    names = sorted(p for p in pool_names if p.startswith("union") and p.endswith(f"_{split}"))
    if not names:
        raise ValueError(f"no global pool for split {split!r} among {sorted(pool_names)}")
    return names[0]


def evaluate_mbeir(queries: pa.Table, pools: pa.Table, query_vectors: dict[str, np.ndarray],
                   candidate_vectors: dict[str, np.ndarray], setting: str, split: str = "test") -> list[dict]:
    """Per (dataset, task) Recall@k rows for ``setting`` in {"local", "global"}.

    ``query_vectors`` / ``candidate_vectors`` map ids to embeddings. A positive absent from the
    pool it is ranked against is an error naming the query and the pool (never a silent miss).
    """
    if setting not in ("local", "global"):
        raise ValueError(f"setting must be 'local' or 'global', got {setting!r}")
    rows = [r for r in queries.to_pylist() if r["split"] == split]
    if not rows:
        raise ValueError(f"no {split!r} queries to evaluate")
    members = pool_members(pools)
    global_pool = global_pool_name(members, split) if setting == "global" else None
    by_pool = defaultdict(list)
    for r in rows:
        by_pool[global_pool or r["pool"]].append(r)
    hits, groups = [], []
    for pool, group in by_pool.items():
        ids = members.get(pool)
        if not ids:
            raise ValueError(f"pool {pool!r} of {len(group)} {split} queries is empty or unknown")
        member_set = set(ids)
        for r in group:
            missing = [p for p in r["positive_ids"] if p not in member_set]
            if missing:
                raise ValueError(f"query {r['query_id']}: positives {missing} are not in pool {pool!r}")
        k_of = {(r["dataset"], r["task_id"]): mbeir_k(r["dataset"], r["task_id"]) for r in group}
        ranked = rank_pool(np.stack([query_vectors[r["query_id"]] for r in group]),
                           np.stack([candidate_vectors[c] for c in ids]), ids, max(k_of.values()))
        for r, run in zip(group, ranked):
            k = k_of[(r["dataset"], r["task_id"])]
            hits.append(mbeir_recall_at_k([run], [r["positive_ids"]], k)[0])
            groups.append((r["dataset"], r["task_id"], k))
    means = mean_by(hits, groups)
    counts = defaultdict(int)
    for g in groups:
        counts[g] += 1
    return [{"benchmark": "mbeir", "setting": setting, "dataset": d, "task_id": t, "meta_task": None,
             "metric": f"Recall@{k}", "value": 100.0 * v, "n_queries": counts[(d, t, k)]}
            for (d, t, k), v in sorted(means.items(), key=lambda kv: (kv[0][1], kv[0][0]))]
