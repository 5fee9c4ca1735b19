"""Top-k retrieval over an embedding pool with FAISS (docs/hard-negatives.md, mining; faiss-cpu, or faiss-gpu behind the gpu-mine extra).

Scores are inner products: L2-normalise both sides with :func:`l2_normalize` first to search by
cosine similarity. Index kinds:

* ``"flat"`` (default): exact, ``IndexFlatIP``;
* ``"ivf"``: approximate, ``IndexIVFFlat`` with the inner-product metric, trained on a sample;
* ``"hnsw"``: approximate, ``IndexHNSWFlat`` with ``METRIC_INNER_PRODUCT`` (CPU only).

Ranking rule of :func:`search`: descending score; among exactly equal scores, ascending pool
index. FAISS's own heap keeps an arbitrary member of a tie group that straddles the k-th place,
so the rule is enforced here: each query asks for k + 1 hits, and a query whose k-th score
equals its last fetched score is searched again with a wider k until the tie group is complete.
For a flat index the result therefore equals ``argsort(-(q @ pool.T), kind="stable")[:, :k]``
(on GPU the widening stops at faiss's 2048-hit limit).

``faiss`` is imported inside the functions: the same ``import faiss`` serves faiss-cpu and
faiss-gpu, and modules that never search do not need it.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..artifacts import atomic_path

KINDS = ("flat", "ivf", "hnsw")
DEVICES = ("auto", "cpu", "cuda")
GPU_MAX_K = 2048  # faiss GPU k-selection limit
_ROWS_PER_BLOCK = 16384  # rows checked / converted / normalised at a time (bounded temporaries)


def _faiss():
    try:
        import faiss
    except ImportError as err:  # pragma: no cover - faiss is installed wherever search runs
        raise ImportError("search needs faiss: install faiss-cpu (extra 'cpu') or faiss-gpu (extra 'gpu-mine')") from err
    return faiss


def _check_matrix(x: Any, name: str) -> np.ndarray:
    """A non-empty, finite, real 2-D array ``[rows, dim]``, else ValueError naming shape or row."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [rows, dim]; got shape {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise ValueError(f"{name} must hold real numbers; got dtype {x.dtype} (shape {x.shape})")
    for start in range(0, x.shape[0], _ROWS_PER_BLOCK):  # blockwise: no full-size temporary
        finite = np.isfinite(x[start:start + _ROWS_PER_BLOCK]).all(axis=1)
        if not finite.all():
            row = start + int(np.flatnonzero(~finite)[0])
            raise ValueError(f"{name} row {row} has non-finite values (NaN or inf); {name} shape {x.shape}")
    return x


def _float32(x: np.ndarray) -> np.ndarray:
    """C-contiguous float32: ``x`` itself when it already is, else converted block by block."""
    if x.dtype == np.float32 and x.flags.c_contiguous:
        return x
    out = np.empty(x.shape, dtype=np.float32)
    for start in range(0, x.shape[0], _ROWS_PER_BLOCK):
        out[start:start + _ROWS_PER_BLOCK] = x[start:start + _ROWS_PER_BLOCK]
    return out


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` scaled to unit L2 norm, as a new float32 array (norms computed in float64).

    Raises ValueError for non-2-D, empty or non-finite input and for all-zero rows (naming them).
    """
    x = _check_matrix(x, "embeddings")
    out = np.empty(x.shape, dtype=np.float32)
    for start in range(0, x.shape[0], _ROWS_PER_BLOCK):
        block = np.asarray(x[start:start + _ROWS_PER_BLOCK], dtype=np.float64)
        norms = np.sqrt(np.einsum("ij,ij->i", block, block))
        zero = np.flatnonzero(norms == 0)
        if zero.size:
            rows = (start + zero[:5]).tolist()
            raise ValueError(f"embeddings row {rows[0]} is all zeros and cannot be L2-normalised "
                             f"(zero rows in this block start with {rows}); shape {x.shape}")
        out[start:start + block.shape[0]] = block / norms[:, None]
    return out


@dataclass
class SearchIndex:
    """A FAISS index plus what :func:`search` needs to know about it."""

    index: Any  # faiss.Index (CPU) or faiss.GpuIndex*
    kind: str  # "flat" | "ivf" | "hnsw"
    device: str  # "cpu" | "cuda"
    gpu_resources: Any = None  # keeps GPU memory alive as long as the index

    @property
    def dim(self) -> int:
        return int(self.index.d)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)


def _num_gpus(faiss) -> int:
    """GPUs usable by this faiss build (0 for faiss-cpu, which lacks ``StandardGpuResources``)."""
    if not hasattr(faiss, "StandardGpuResources"):
        return 0
    return int(faiss.get_num_gpus())


def resolve_device(kind: str, device: str) -> str:
    """``"auto"`` -> ``"cuda"`` for flat/ivf when faiss sees a GPU, else ``"cpu"``; ``"cuda"`` must be possible."""
    if kind not in KINDS:
        raise ValueError(f"unknown index kind {kind!r}; expected one of {KINDS}")
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; expected one of {DEVICES}")
    if device == "cpu":
        return "cpu"
    gpus = _num_gpus(_faiss())
    if device == "cuda":
        if kind == "hnsw":
            raise ValueError("kind='hnsw' has no faiss GPU implementation; use device='cpu' or kind 'flat'/'ivf'")
        if gpus == 0:
            raise RuntimeError("device='cuda' but faiss sees no GPU (a faiss-cpu build, or no visible CUDA device); "
                               "install faiss-gpu on a GPU node or use device='auto'/'cpu'")
        return "cuda"
    return "cuda" if gpus > 0 and kind != "hnsw" else "cpu"


def build_index(pool: np.ndarray, *, kind: str = "flat", nlist: int | None = None, nprobe: int = 16,
                hnsw_m: int = 32, device: str = "auto", ef_search: int = 128, ef_construction: int = 80,
                train_size: int | None = None, seed: int = 0) -> SearchIndex:
    """Index the rows of ``pool`` ``[N, dim]`` for inner-product search.

    ``ivf``: ``nlist`` lists (default ``round(4 * sqrt(N))``), k-means trained on ``train_size``
    random rows (default ``min(N, 64 * nlist)``, drawn with ``seed``), ``nprobe`` lists searched.
    ``hnsw``: ``hnsw_m`` links per node, ``ef_construction`` / ``ef_search`` beam widths.
    ``device``: see :func:`resolve_device`; a GPU index lives on GPU 0. A float32 C-contiguous pool
    is passed to faiss as is; any other (float16, memory-mapped, strided) is converted once.
    """
    faiss = _faiss()
    pool = _check_matrix(pool, "pool")
    n, dim = pool.shape
    device = resolve_device(kind, device)
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "ivf":
        nlist = max(1, min(n, round(4 * math.sqrt(n)))) if nlist is None else int(nlist)
        if not 1 <= nlist <= n:
            raise ValueError(f"nlist must be in [1, {n}] for a pool of shape {pool.shape}; got {nlist}")
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.nprobe = max(1, min(int(nprobe), nlist))
    else:
        index = faiss.IndexHNSWFlat(dim, int(hnsw_m), faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = int(ef_construction)
        index.hnsw.efSearch = int(ef_search)
    resources = None
    if device == "cuda":
        resources = faiss.StandardGpuResources()
        index = faiss.index_cpu_to_gpu(resources, 0, index)
    if kind == "ivf":
        size = min(n, train_size or 64 * nlist)
        rows = np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
        index.train(_float32(pool[rows]))
    index.add(_float32(pool))  # one call: adding in pieces regrows faiss's storage (peak ~2x the index)
    return SearchIndex(index=index, kind=kind, device=device, gpu_resources=resources)


def _sorted_hits(scores: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: found hits by (descending score, ascending id), missing hits (id -1, score -inf) last."""
    missing = ids < 0
    scores = np.where(missing, np.float32(-np.inf), scores).astype(np.float32, copy=False)
    order = np.lexsort((ids, -scores, missing), axis=-1)
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(ids, order, axis=1)


def _tie_open(scores: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    """Rows whose k-th score equals the last fetched one: the tie group may continue past the fetch."""
    if scores.shape[1] <= k:
        return np.zeros(scores.shape[0], dtype=bool)
    return (ids[:, -1] >= 0) & (scores[:, k - 1] == scores[:, -1])


def _search_block(index, queries: np.ndarray, k: int, k_cap: int) -> tuple[np.ndarray, np.ndarray]:
    fetch = min(k + 1, k_cap)
    scores, ids = _sorted_hits(*index.search(queries, fetch))
    top_scores, top_ids = scores[:, :k].copy(), ids[:, :k].copy()
    rows = np.flatnonzero(_tie_open(scores, ids, k))
    while rows.size and fetch < k_cap:
        fetch = min(k_cap, 4 * fetch)
        scores, ids = _sorted_hits(*index.search(queries[rows], fetch))
        top_scores[rows], top_ids[rows] = scores[:, :k], ids[:, :k]
        rows = rows[_tie_open(scores, ids, k)]
    return top_scores, top_ids


def search(index_or_pool: SearchIndex | np.ndarray | Any, queries: np.ndarray, k: int, *,
           chunk_size: int = 4096, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` pool rows per query: ``(scores float32 [nq, k], indices int64 [nq, k])``.

    ``index_or_pool`` is a :class:`SearchIndex`, a bare faiss index, or a pool array (indexed
    with ``build_index(pool)``). Rows are sorted by descending score, ties by ascending pool index
    (module docstring). ``k`` larger than the pool is clamped to the pool size, so the arrays have
    ``min(k, N)`` columns. Approximate indexes may find fewer than k hits: those slots hold index
    -1 and score -inf. Queries are searched ``chunk_size`` at a time (bounded memory); chunking
    changes nothing but float rounding (faiss uses another kernel below 20 queries).
    ``progress`` shows a bar in queries/s.
    """
    if isinstance(index_or_pool, np.ndarray):
        index_or_pool = build_index(index_or_pool)
    wrapped = index_or_pool if isinstance(index_or_pool, SearchIndex) else None
    index = wrapped.index if wrapped else index_or_pool
    on_gpu = wrapped.device == "cuda" if wrapped else type(index).__name__.startswith("Gpu")
    faiss = _faiss()
    if getattr(index, "metric_type", faiss.METRIC_INNER_PRODUCT) != faiss.METRIC_INNER_PRODUCT:
        raise ValueError(f"the index metric is {index.metric_type}; search ranks by inner product "
                         f"(faiss.METRIC_INNER_PRODUCT = {faiss.METRIC_INNER_PRODUCT})")
    queries = _check_matrix(queries, "queries")
    n, dim = int(index.ntotal), int(index.d)
    if n == 0:
        raise ValueError(f"the index is empty (0 vectors of dimension {dim})")
    if queries.shape[1] != dim:
        raise ValueError(f"queries have dimension {queries.shape[1]} (shape {queries.shape}) "
                         f"but the index has dimension {dim} ({n} vectors)")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1; got {chunk_size}")
    k_cap = min(n, GPU_MAX_K) if on_gpu else n
    k = min(int(k), n)
    if k > k_cap:
        raise ValueError(f"k={k} exceeds the faiss GPU limit of {GPU_MAX_K}; search a CPU index instead")
    nq = queries.shape[0]
    scores = np.empty((nq, k), dtype=np.float32)
    ids = np.empty((nq, k), dtype=np.int64)
    started = time.perf_counter()
    with tqdm(total=nq, unit="q", unit_scale=True, desc=f"search top-{k}", disable=not progress) as bar:
        for start in range(0, nq, chunk_size):
            block = _float32(queries[start:start + chunk_size])
            stop = start + block.shape[0]
            scores[start:stop], ids[start:stop] = _search_block(index, block, k, k_cap)
            bar.update(block.shape[0])
            bar.set_postfix(qps=f"{stop / max(time.perf_counter() - started, 1e-9):,.0f}")
    return scores, ids


def save_index(index: SearchIndex | Any, path: str | os.PathLike) -> Path:
    """Write the index with ``faiss.write_index`` (a GPU index is copied to CPU first), atomically."""
    faiss = _faiss()
    wrapped = index if isinstance(index, SearchIndex) else None
    raw = wrapped.index if wrapped else index
    on_gpu = wrapped.device == "cuda" if wrapped else type(raw).__name__.startswith("Gpu")
    if on_gpu:
        raw = faiss.index_gpu_to_cpu(raw)
    with atomic_path(path) as tmp:
        faiss.write_index(raw, str(tmp))
    return Path(path)


def load_index(path: str | os.PathLike, *, device: str = "auto") -> SearchIndex:
    """Read an index written by :func:`save_index`; ``device`` as in :func:`build_index`."""
    faiss = _faiss()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no FAISS index at {path}")
    index = faiss.read_index(str(path))
    if isinstance(index, faiss.IndexHNSW):
        kind = "hnsw"
    elif isinstance(index, faiss.IndexIVF):
        kind = "ivf"
    elif isinstance(index, faiss.IndexFlat):
        kind = "flat"
    else:
        raise ValueError(f"{path}: unsupported index type {type(index).__name__}; expected flat, IVF or HNSW")
    if index.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise ValueError(f"{path}: index metric is {index.metric_type}, expected inner product "
                         f"({faiss.METRIC_INNER_PRODUCT})")
    device = resolve_device(kind, device)
    resources = None
    if device == "cuda":
        resources = faiss.StandardGpuResources()
        index = faiss.index_cpu_to_gpu(resources, 0, index)
    return SearchIndex(index=index, kind=kind, device=device, gpu_resources=resources)
