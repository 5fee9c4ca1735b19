"""Recall-then-rerank evaluation (U-MARVEL⁺, App. C eq. 4; UniME-V2 "Inference").

For every evaluation query the recall model retrieves its top ``depth`` candidates (M-BEIR: the
query's local pool or the split's union pool; MMEB: the query's own candidates); a reranker scores
each (query, candidate) pair with P(Yes) (:mod:`uniembed.judge`, the judge's prompt and backends);
the fused score S = alpha * cos + (1 - alpha) * P(Yes) (:mod:`uniembed.rerank.fusion`) orders the
top ``depth``, and the candidates beyond it keep their recall order below them. The metrics are
the recall model's (M-BEIR Recall@k, MMEB P@1), computed on the new order.

:func:`recall_lists` gives the retrieval, :func:`rerank_pairs` the pairs to score, and :func:`order_rows` the
score rows of new candidate orders (:func:`uniembed.rerank.fusion.rerank_rows`: those of one fusion weight).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ..embed.embedder import EmbedItem
from ..embed.search import search
from ..judge.pairs import JudgePair
from .mbeir import global_pool_name, pool_members
from .metrics import mbeir_k, mbeir_recall_at_k, mean_by, rank_by_score


@dataclass(frozen=True)
class RecallList:
    """One evaluation query's retrieval: candidate ids best first and their cosine scores."""

    benchmark: str
    setting: str
    dataset: str
    task_id: int | None
    meta_task: str | None
    query_id: str
    positive_ids: tuple[str, ...]
    candidate_ids: tuple[str, ...]
    scores: tuple[float, ...]


def _ranked(query_vectors: np.ndarray, candidate_vectors: np.ndarray, ids: list[str], depth: int):
    """Per query: the top ``depth`` ids (trec_eval tie order, as evaluate) and their scores; one search per pool."""
    scores, indices = search(np.ascontiguousarray(candidate_vectors, dtype=np.float32),
                             np.ascontiguousarray(query_vectors, dtype=np.float32), min(depth, len(ids)))
    for row_scores, row in zip(scores, indices):
        by_id = {ids[j]: float(s) for s, j in zip(row_scores, row)}
        order = rank_by_score(np.array(list(by_id.values())), list(by_id))
        yield order, [by_id[c] for c in order]


def recall_lists(benchmark: str, queries: pa.Table, query_vectors: dict, candidate_vectors: dict, depth: int, *,
                 setting: str | None = None, pools: pa.Table | None = None, split: str,
                 datasets: pa.Table | None = None) -> list[RecallList]:
    """The recall model's top ``depth`` for every ``split`` query of one benchmark (and M-BEIR setting)."""
    rows = [r for r in queries.to_pylist() if r["split"] == split]
    if not rows:
        raise ValueError(f"no {split!r} queries to rerank")
    out = []
    if benchmark == "mbeir":
        members = pool_members(pools)
        glob = global_pool_name(members, split) if setting == "global" else None
        by_pool = defaultdict(list)
        for r in rows:
            by_pool[glob or r["pool"]].append(r)
        for pool, group in by_pool.items():
            ids = members[pool]
            deep = max(depth, *(2 * mbeir_k(r["dataset"], r["task_id"]) for r in group))
            ranked = _ranked(np.stack([query_vectors[r["query_id"]] for r in group]),
                             np.stack([candidate_vectors[c] for c in ids]), ids, deep)
            out += [RecallList("mbeir", setting, r["dataset"], r["task_id"], None, r["query_id"],
                               tuple(r["positive_ids"]), tuple(order), tuple(scores))
                    for r, (order, scores) in zip(group, ranked)]
    else:
        meta = {d["dataset"]: d for d in datasets.to_pylist()}
        for r in rows:
            ids = list(r["candidate_ids"])
            ((order, scores),) = _ranked(query_vectors[r["query_id"]][None], np.stack([candidate_vectors[c] for c in ids]),
                                         ids, len(ids))
            info = meta.get(r["dataset"], {})
            out.append(RecallList("mmeb", info.get("eval_group") or "unknown", r["dataset"], None, info.get("meta_task"),
                                  r["query_id"], (ids[0],), tuple(order), tuple(scores)))
    return out


def rerank_pairs(lists: list[RecallList], items: dict[str, EmbedItem], queries: dict[str, EmbedItem],
                 depth: int) -> list[JudgePair]:
    """The (query, candidate) pairs of every list's top ``depth``, once each, grouped by query."""
    pairs, seen = [], set()
    for lst in lists:
        for rank, cid in enumerate(lst.candidate_ids[:depth], start=1):
            if (lst.query_id, cid) not in seen:
                seen.add((lst.query_id, cid))
                pairs.append(JudgePair(lst.query_id, cid, cid in lst.positive_ids, rank, queries[lst.query_id], items[cid]))
    return pairs


def order_rows(lists: list[RecallList], orders: list[list[str]]) -> list[dict]:
    """Score rows (evaluate/results.py SCORES, without the tag) of each list's new candidate order."""
    hits, groups, mmeb = [], [], defaultdict(list)
    for lst, order in zip(lists, orders):
        if lst.benchmark == "mbeir":
            k = mbeir_k(lst.dataset, lst.task_id)
            hits.append(mbeir_recall_at_k([order], [lst.positive_ids], k)[0])
            groups.append((lst.setting, lst.dataset, lst.task_id, k))
        else:
            mmeb[(lst.setting, lst.dataset, lst.meta_task)].append(float(order[0] == lst.positive_ids[0]))
    counts = defaultdict(int)
    for g in groups:
        counts[g] += 1
    rows = [{"benchmark": "mbeir", "setting": s, "dataset": d, "task_id": t, "meta_task": None, "metric": f"Recall@{k}",
             "value": 100.0 * v, "n_queries": counts[(s, d, t, k)]}
            for (s, d, t, k), v in sorted(mean_by(hits, groups).items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1]))]
    rows += [{"benchmark": "mmeb", "setting": s, "dataset": d, "task_id": None, "meta_task": m, "metric": "P@1",
              "value": 100.0 * float(np.mean(v)), "n_queries": len(v)} for (s, d, m), v in sorted(mmeb.items())]
    return rows
