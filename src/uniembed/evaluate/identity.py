"""VisME's identity meta-tasks (supplement Table 6) scored for one embedder on the world's identities
(:mod:`uniembed.data.synthetic.identity_tasks`).

A query is its instruction + picture (+ text: grounding, editing), a gallery picture is embedded
alone; every query is ranked against its task's whole gallery (its look-alikes included) by inner product of the
L2-normalised embeddings with trec_eval's tie order. Recall@k is "any target in the top k"; with several targets
(re-identification: 1-14) mAP@10 is reported too (denominator min(R, 10), so a full top 10 of targets scores 1).
"""
from __future__ import annotations

import numpy as np

from ..data.synthetic.identity_tasks import IdentityTask
from ..embed.embedder import EmbedItem, Embedder
from .metrics import map_at_k, mbeir_recall_at_k, rank_rows_by_score

METRICS = (("Recall", 1), ("Recall", 5), ("mAP", 10))


def embed_task(embedder, task: IdentityTask, batch_size: int = 32):
    """``(gallery ids, gallery embeddings, query embeddings, each query's targets)`` of one meta-task: a query is its
    instruction + picture (+ text), a gallery picture is embedded alone."""
    ids = list(task.gallery)
    gallery = embedder.encode([EmbedItem(None, image=task.gallery[i]) for i in ids], batch_size)
    queries = embedder.encode([EmbedItem(q["text"], instruction=q["instruction"], image=q["image"]) for q in task.queries],
                              batch_size)
    return ids, gallery, queries, [q["positives"] for q in task.queries]


def evaluate_identity(embedder: Embedder, tasks: dict[str, IdentityTask], tag: str, batch_size: int = 32) -> list[dict]:
    """One row per (meta-task, metric) in the evaluation schema (benchmark ``visme``, values in percent)."""
    rows = []
    for name, task in tasks.items():
        ids, gallery, queries, positives = embed_task(embedder, task, batch_size)
        ranked = rank_rows_by_score(queries @ gallery.T, ids, max(k for _, k in METRICS))
        for kind, k in METRICS:
            values = (mbeir_recall_at_k(ranked, positives, k) if kind == "Recall"
                      else map_at_k(ranked, positives, k, denominator="min(R,k)"))
            rows.append({"tag": tag, "benchmark": "visme", "setting": name, "dataset": f"identity-{name}",
                         "task_id": None, "meta_task": name, "metric": f"{kind}@{k}",
                         "value": 100.0 * float(np.mean(values)), "n_queries": len(task.queries)})
    return rows
