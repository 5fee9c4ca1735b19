"""Candidate-pool scaling (VisME supplement §D, Table 7): the identity meta-tasks against pools grown from 3k to 100k
candidates with generated distractors.

Every task keeps its own gallery (its targets and every look-alike) and gains the first ``n - len(gallery)``
distractors of one fixed, seeded stream: pictures of the identities no task evaluates (every shape x colour x mark
of the world but those), each in every view. The distractors are encoded once through the embedding cache (keyed by
the model, the generator's settings and code version, and the ids) and each pool is searched exactly with FAISS.
Per pool size: Recall@1, search queries/s and the process's peak RSS; the distractors' encode rate once.
"""
from __future__ import annotations

import itertools
import resource
import time

import numpy as np
import pyarrow as pa

from ..data.synthetic.identity import ALL_MARKS, Identity, render_identity
from ..data.synthetic.identity_tasks import IdentityTask
from ..data.synthetic.world import COLORS, SHAPES, seeded_rng
from ..embed.cache import cache_key, encode_cached
from ..embed.embedder import EmbedItem, Embedder
from ..embed.search import search
from ..embed.tables import compute_setting
from ..provenance import code_version
from .identity import embed_task
from .metrics import ids_from_faiss, mbeir_recall_at_k

DISTRACTOR_SEED = 7
#: One row per (model tag, task, pool size) of the study.
POOL_SCALING = pa.schema([pa.field("tag", pa.string(), nullable=False), pa.field("task", pa.string(), nullable=False),
                          pa.field("candidates", pa.int64(), nullable=False), pa.field("targets", pa.float64()),
                          pa.field("recall_at_1", pa.float64(), nullable=False),
                          pa.field("search_queries_per_s", pa.float64()), pa.field("peak_rss_mb", pa.float64()),
                          pa.field("encode_items_per_s", pa.float64())])   # null: the distractors came from the cache
#: The views a distractor is drawn in (the edit paints it the next colour of the world's list).
DISTRACTOR_VIEWS = ("plain", "shifted", "scaled", "tinted", "background", "occluded", "edited")


def distractor_identities(evaluated: list[Identity], seed: int = DISTRACTOR_SEED) -> list[Identity]:
    """Every identity of the world (shape x colour x mark) that is not ``evaluated``, in a seeded order."""
    taken = {(i.shape, i.color, i.mark) for i in evaluated}
    others = [Identity(f"distractor-{shape}-{color}-{m:03d}", shape, color, ALL_MARKS[m])
              for shape, color, m in itertools.product(SHAPES, COLORS, range(len(ALL_MARKS)))
              if (shape, color, ALL_MARKS[m]) not in taken]
    return [others[int(i)] for i in seeded_rng(seed, "identity", "distractors").permutation(len(others))]


def distractor_item(identities: list[Identity], row: int, seed: int = DISTRACTOR_SEED) -> EmbedItem:
    """Distractor ``row``: identity ``row mod N`` in view ``row div N`` (fresh jitter from its own stream)."""
    ident = identities[row % len(identities)]
    view = DISTRACTOR_VIEWS[row // len(identities)]
    colors = list(COLORS)
    edit = colors[(colors.index(ident.color) + 1) % len(colors)]
    return EmbedItem(None, image=render_identity(ident, view, seeded_rng(seed, "distractor", str(row)),
                                                 edit_color=edit if view == "edited" else None))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pool_scaling(embedder: Embedder, tasks: dict[str, IdentityTask], evaluated: list[Identity], sizes: list[int],
                 cache_root, *, model_dir, adapter_dir=None, tag: str, batch_size: int = 64,
                 dtype: str = "float32") -> list[dict]:
    """One row per (task, pool size): Recall@1 with ``n`` candidates, and the timings and memory of the run."""
    identities = distractor_identities(evaluated)
    n = max(sizes) - min(len(t.gallery) for t in tasks.values())
    if n > len(identities) * len(DISTRACTOR_VIEWS):
        raise ValueError(f"pools up to {max(sizes)} need {n} distractors; the world has "
                         f"{len(identities) * len(DISTRACTOR_VIEWS)}")
    if any(size < len(t.gallery) for size in sizes for t in tasks.values()):
        raise ValueError(f"every pool size must hold each task's gallery ({max(len(t.gallery) for t in tasks.values())})")
    ids = [f"distractor-{row}" for row in range(n)]
    generated = {"generator": "identity distractors", "seed": DISTRACTOR_SEED, "views": DISTRACTOR_VIEWS,
                 "evaluated": sorted(f"{i.shape}/{i.color}/{i.mark}" for i in evaluated),
                 "code": code_version("data.synthetic.identity", "data.synthetic.world", "evaluate.pool_scaling")}
    key = cache_key(model_dir, adapter_dir, None, ids, embedder.mode.as_dict(), dtype,
                    compute=compute_setting(embedder), generated=generated)
    start = time.perf_counter()
    encoded = {"rows": 0}

    def encode(rows) -> np.ndarray:
        encoded["rows"] += len(rows)
        return embedder.encode([distractor_item(identities, r) for r in rows], batch_size=batch_size)
    distractors = np.asarray(encode_cached(encode, ids, key, cache_root).embeddings, dtype=np.float32)
    encode_rate = encoded["rows"] / (time.perf_counter() - start) if encoded["rows"] else None
    out = []
    for name, task in tasks.items():
        gallery_ids, gallery, queries, positives = embed_task(embedder, task, batch_size)
        for size in sizes:
            extra = size - len(gallery_ids)
            pool = np.concatenate([gallery, distractors[:extra]])
            start = time.perf_counter()
            _, indices = search(pool, queries, 1)
            seconds = time.perf_counter() - start
            ranked = ids_from_faiss(indices, gallery_ids + ids[:extra])
            out.append({"tag": tag, "task": name, "candidates": size,
                        "targets": float(np.mean([len(p) for p in positives])),
                        "recall_at_1": 100.0 * float(np.mean(mbeir_recall_at_k(ranked, positives, 1))),
                        "search_queries_per_s": len(task.queries) / seconds, "peak_rss_mb": _peak_rss_mb(),
                        "encode_items_per_s": encode_rate})
    return out


def relative_drops(rows: list[dict]) -> dict[tuple[str, str], float]:
    """(tag, task) -> the relative Recall@1 drop from the smallest pool to the largest, in percent (VisME Table 7)."""
    out = {}
    for tag, task in {(r["tag"], r["task"]) for r in rows}:
        by_size = {r["candidates"]: r["recall_at_1"] for r in rows if r["tag"] == tag and r["task"] == task}
        small, large = by_size[min(by_size)], by_size[max(by_size)]
        out[(tag, task)] = 100.0 * (small - large) / small if small else float("nan")
    return out


def pool_scaling_table(rows: list[dict], fmt: str = "markdown") -> str:
    """VisME Table 7's layout: per task and pool size the mean targets, the candidates and each model's Recall@1, the
    largest pool's with its relative drop from the smallest; then each model's search rate and peak RSS per size."""
    from .tables import render

    tags, tasks = (list(dict.fromkeys(r[k] for r in rows)) for k in ("tag", "task"))
    sizes = sorted({r["candidates"] for r in rows})
    value = {(r["tag"], r["task"], r["candidates"]): r for r in rows}
    drops = relative_drops(rows)

    def cell(tag, task, size) -> str:
        text = f"{value[(tag, task, size)]['recall_at_1']:.1f}"
        if size != sizes[-1] or len(sizes) == 1:
            return text
        return text + (" (↓ –)" if np.isnan(drops[(tag, task)]) else f" (↓ {drops[(tag, task)]:.1f}%)")
    body = [[task if size == sizes[0] else "", f"{value[(tags[0], task, size)]['targets']:.1f}", f"{size:,}",
             *(cell(tag, task, size) for tag in tags)] for task in tasks for size in sizes]
    table = render(["Task", "N_tgt", "N_cand", *(f"{t} R@1" for t in tags)], body, fmt,
                   "Candidate-pool scaling, VisME Table 7 layout (relative Recall@1 drop, smallest -> largest pool)")
    speed = [[tag, f"{size:,}", f"{np.mean([value[(tag, t, size)]['search_queries_per_s'] for t in tasks]):,.0f}",
              f"{max(value[(tag, t, size)]['peak_rss_mb'] for t in tasks):,.0f}",
              _rate(value[(tag, tasks[0], size)]["encode_items_per_s"])] for tag in tags for size in sizes]
    return table + "\n" + render(["Model", "N_cand", "search queries/s (mean of tasks)", "peak RSS (MiB)",
                                  "distractor encode items/s"], speed, fmt, "Time and memory of the study")


def _rate(value) -> str:
    return "cached" if value is None else f"{value:,.0f}"
