"""Global-retrieval candidate mining: the potential hard-negative set (UniME-V2 eq. 1).

    Omega_p = Rank_50({x_1, ..., x_n}), where x_i < delta

For every query: rank the pool by embedding similarity, drop the query's positives, keep only
candidates whose similarity is below delta (near-duplicates of the query or its positive are
likely false negatives), and keep the top ``top_k`` (50). U-MARVEL §3.2.2 step (1) is the same
retrieval without delta ("compute similarity scores (excluding positive matches), and rank").
Search over-fetches and widens per query until ``top_k`` survive or the pool is exhausted.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa

from ..embed.search import build_index, search
from .schemas import MINED


def mine_candidates(query_vectors: np.ndarray, query_ids: Sequence[str], positives: Sequence[set[str]],
                    pool_vectors: np.ndarray, pool_ids: Sequence[str], *, top_k: int = 50,
                    delta: float | None = None, index_kind: str = "flat", device: str = "auto",
                    progress: bool = False) -> pa.Table:
    """The ``MINED`` table: (query_id, rank 1..top_k, candidate_id, similarity), rank order."""
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if len(query_ids) != len(query_vectors) or len(positives) != len(query_ids):
        raise ValueError("query ids, vectors and positives must have the same length")
    if len(pool_ids) != len(pool_vectors) or not len(pool_ids):
        raise ValueError(f"the pool is empty or its ids ({len(pool_ids)}) and vectors ({len(pool_vectors)}) differ")
    index = build_index(np.ascontiguousarray(pool_vectors, dtype=np.float32), kind=index_kind, device=device)
    n_pool = len(pool_ids)
    max_pos = max((len(p) for p in positives), default=0)
    depth = min(n_pool, top_k + max_pos + 16)
    kept: list[list[tuple[str, float]]] = [[] for _ in query_ids]
    todo = np.arange(len(query_ids))
    while len(todo):
        scores, indices = search(index, np.ascontiguousarray(query_vectors[todo], dtype=np.float32), depth,
                                 progress=progress)
        again = []
        for row, q in enumerate(todo):
            picks = []
            for score, j in zip(scores[row], indices[row]):
                if j < 0:
                    continue
                cid = pool_ids[j]
                if cid in positives[q] or (delta is not None and score >= delta):
                    continue
                picks.append((cid, float(score)))
                if len(picks) == top_k:
                    break
            if len(picks) < top_k and depth < n_pool:
                again.append(q)
            else:
                kept[q] = picks
        todo, depth = np.array(again, dtype=np.int64), min(n_pool, depth * 4)
    rows = {"query_id": [], "rank": [], "candidate_id": [], "similarity": []}
    for qid, picks in zip(query_ids, kept):
        for rank, (cid, score) in enumerate(picks, 1):
            rows["query_id"].append(qid)
            rows["rank"].append(rank)
            rows["candidate_id"].append(cid)
            rows["similarity"].append(score)
    return pa.table(rows, schema=MINED)
