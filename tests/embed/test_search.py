"""FAISS retrieval: exact search against a numpy reference, tie rule, chunking, approximate recall,
k clamping, bad input, save/load round trip and device selection (GPU faked on CPU)."""
from __future__ import annotations

import faiss
import numpy as np
import pytest

from uniembed.embed import search as search_mod
from uniembed.embed.search import SearchIndex, build_index, l2_normalize, load_index, save_index, search


def reference(queries: np.ndarray, pool: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute force in float64: descending score, ties by ascending pool index (stable argsort)."""
    scores = queries.astype(np.float64) @ pool.astype(np.float64).T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


@pytest.fixture(scope="module")
def tied():
    """Small-integer vectors: every dot product is exact in float32, so ties are real ties.
    Rows 100-139 duplicate row 7, rows 500-519 duplicate row 3 (deliberate tie groups)."""
    rng = np.random.default_rng(0)
    pool = rng.integers(-2, 3, size=(3000, 12)).astype(np.float32)
    pool[100:140] = pool[7]
    pool[500:520] = pool[3]
    queries = rng.integers(-2, 3, size=(257, 12)).astype(np.float32)
    queries[:5] = pool[[7, 3, 100, 501, 9]]
    return pool, queries


def clustered(n: int, seed: int, dim: int = 32, clusters: int = 40) -> np.ndarray:
    rng = np.random.default_rng(1)
    centers = rng.standard_normal((clusters, dim))
    rng = np.random.default_rng(seed)
    return l2_normalize(centers[rng.integers(0, clusters, n)] + 0.4 * rng.standard_normal((n, dim)))


@pytest.mark.parametrize("k", [1, 10, 50, 200])
def test_flat_search_equals_reference_with_ties(tied, k):
    pool, queries = tied
    scores, ids = search(pool, queries, k)
    ref_scores, ref_ids = reference(queries, pool, k)
    assert scores.dtype == np.float32 and ids.dtype == np.int64 and ids.shape == (len(queries), k)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(scores, ref_scores.astype(np.float32))
    # the test is only meaningful if tie groups straddle the k-th place (where faiss alone keeps arbitrary members)
    next_scores = reference(queries, pool, k + 1)[0][:, k]
    assert (next_scores == ref_scores[:, -1]).sum() > len(queries) // 4
    raw = build_index(pool).index.search(queries, k)[1]
    assert k == 1 or not np.array_equal(raw, ids)


def test_flat_search_equals_reference_on_random_floats():
    rng = np.random.default_rng(3)
    pool = l2_normalize(rng.standard_normal((4000, 48)))
    queries = l2_normalize(rng.standard_normal((300, 48)))
    scores, ids = search(build_index(pool), queries, 20)
    ref_scores, ref_ids = reference(queries, pool, 20)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(scores, ref_scores, rtol=0, atol=1e-5)
    assert (np.diff(scores, axis=1) <= 0).all()


def test_chunk_size_does_not_change_results(tied):
    pool, queries = tied
    index = build_index(pool)
    whole = search(index, queries, 30)
    for chunk_size in (1, 7, 19, 100, 10_000):
        chunked = search(index, queries, 30, chunk_size=chunk_size)
        np.testing.assert_array_equal(chunked[0], whole[0])
        np.testing.assert_array_equal(chunked[1], whole[1])


def test_progress_bar_runs(tied, capsys):
    pool, queries = tied
    scores, _ = search(pool, queries, 5, chunk_size=64, progress=True)
    assert scores.shape == (len(queries), 5)
    assert "q/s" in capsys.readouterr().err


@pytest.mark.parametrize("kind,options", [("ivf", {}), ("ivf", {"nlist": 40, "nprobe": 8}), ("hnsw", {})])
def test_approximate_recall_at_10(kind, options):
    pool, queries = clustered(6000, seed=2), clustered(200, seed=3)
    _, exact = search(pool, queries, 10)
    index = build_index(pool, kind=kind, **options)
    assert index.kind == kind and index.device == "cpu" and index.ntotal == len(pool)
    scores, ids = search(index, queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact)])
    assert recall >= 0.9, f"{kind} recall@10 = {recall:.3f}"
    assert (np.diff(scores, axis=1) <= 0).all()


def test_ivf_default_nlist_and_nprobe_clamp():
    pool = clustered(2500, seed=4)
    assert build_index(pool, kind="ivf").index.nlist == 200  # round(4 * sqrt(2500))
    assert build_index(pool, kind="ivf", nlist=4, nprobe=16).index.nprobe == 4


def test_k_larger_than_pool_is_clamped(tied):
    pool, queries = tied
    small = pool[:25]
    scores, ids = search(small, queries, 100)
    assert ids.shape == (len(queries), 25)
    assert all(sorted(row) == list(range(25)) for row in ids)
    np.testing.assert_array_equal(ids, reference(queries, small, 25)[1])


def test_l2_normalize():
    x = np.array([[3.0, 4.0], [0.0, -2.0]])
    out = l2_normalize(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, -1.0]])
    np.testing.assert_allclose(x, [[3.0, 4.0], [0.0, -2.0]])  # input untouched
    with pytest.raises(ValueError, match="row 1 is all zeros"):
        l2_normalize(np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]))


@pytest.mark.parametrize("pool,queries,k,match", [
    (np.zeros((0, 4)), np.ones((2, 4)), 3, r"pool is empty: shape \(0, 4\)"),
    (np.ones((5, 4)), np.zeros((0, 4)), 3, r"queries is empty: shape \(0, 4\)"),
    (np.ones((5, 4)), np.ones((2, 3)), 3, r"queries have dimension 3 \(shape \(2, 3\)\) but the index has dimension 4"),
    (np.ones(4), np.ones((2, 4)), 3, r"pool must be a 2-D array \[rows, dim\]; got shape \(4,\)"),
    (np.ones((5, 4)), np.ones((1, 2, 4)), 3, r"queries must be a 2-D array .* got shape \(1, 2, 4\)"),
    (np.array([[1.0, 2.0], [np.nan, 0.0]]), np.ones((1, 2)), 1, r"pool row 1 has non-finite values"),
    (np.ones((5, 2)), np.array([[1.0, 2.0], [3.0, np.inf]]), 1, r"queries row 1 has non-finite values"),
    (np.ones((5, 2)), np.ones((1, 2)), 0, r"k must be a positive integer"),
])
def test_bad_input_errors(pool, queries, k, match):
    with pytest.raises(ValueError, match=match):
        search(pool, queries, k)


def test_bad_options():
    pool = np.ones((5, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="unknown index kind 'lsh'"):
        build_index(pool, kind="lsh")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        build_index(pool, device="tpu")
    with pytest.raises(ValueError, match=r"nlist must be in \[1, 5\]"):
        build_index(pool, kind="ivf", nlist=6)
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        search(pool, pool, 1, chunk_size=0)
    with pytest.raises(ValueError, match="embeddings must be a 2-D array"):
        l2_normalize(np.ones(3))
    with pytest.raises(ValueError, match="embeddings row 0 has non-finite values"):
        l2_normalize(np.array([[np.inf, 1.0]]))


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_save_load_round_trip(tmp_path, kind):
    pool, queries = clustered(3000, seed=5), clustered(100, seed=6)
    index = build_index(pool, kind=kind, nlist=30, nprobe=5)
    path = save_index(index, tmp_path / "sub" / f"{kind}.faiss")
    assert path.is_file() and [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
    loaded = load_index(path, device="cpu")
    assert (loaded.kind, loaded.device, loaded.ntotal, loaded.dim) == (kind, "cpu", 3000, 32)
    before, after = search(index, queries, 15), search(loaded, queries, 15)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])


def test_load_rejects_other_metric(tmp_path):
    faiss.write_index(faiss.IndexFlatL2(4), str(tmp_path / "l2.faiss"))
    with pytest.raises(ValueError, match="expected inner product"):
        load_index(tmp_path / "l2.faiss")
    l2 = faiss.IndexFlatL2(2)
    l2.add(np.eye(2, dtype=np.float32))
    with pytest.raises(ValueError, match="search ranks by inner product"):
        search(l2, np.eye(2), 1)
    with pytest.raises(FileNotFoundError, match="no FAISS index"):
        load_index(tmp_path / "missing.faiss")


class FakeGpu:
    """Stands in for faiss-gpu on a CPU machine: records the calls, keeps the index on CPU."""

    def __init__(self, monkeypatch, gpus: int):
        self.moved, self.copied_back = [], []
        monkeypatch.setattr(faiss, "get_num_gpus", lambda: gpus)
        monkeypatch.setattr(faiss, "StandardGpuResources", lambda: "resources", raising=False)
        monkeypatch.setattr(faiss, "index_cpu_to_gpu", self.to_gpu, raising=False)
        monkeypatch.setattr(faiss, "index_gpu_to_cpu", self.to_cpu, raising=False)

    def to_gpu(self, resources, device, index):
        self.moved.append((resources, device, type(index).__name__))
        return index

    def to_cpu(self, index):
        self.copied_back.append(type(index).__name__)
        return index


def test_device_auto_uses_gpu_for_flat_and_ivf(monkeypatch):
    gpu = FakeGpu(monkeypatch, gpus=1)
    pool = clustered(500, seed=7)
    flat = build_index(pool)
    ivf = build_index(pool, kind="ivf", nlist=8)
    hnsw = build_index(pool, kind="hnsw")
    assert (flat.device, ivf.device, hnsw.device) == ("cuda", "cuda", "cpu")
    assert gpu.moved == [("resources", 0, "IndexFlatIP"), ("resources", 0, "IndexIVFFlat")]
    assert flat.gpu_resources == "resources" and hnsw.gpu_resources is None
    assert build_index(pool, device="cpu").device == "cpu" and len(gpu.moved) == 2


def test_device_cpu_build_or_no_gpu(monkeypatch):
    assert build_index(np.eye(3)).device == "cpu"  # the real faiss-cpu build: auto -> cpu
    with pytest.raises(RuntimeError, match="device='cuda' but faiss sees no GPU"):
        build_index(np.eye(3), device="cuda")
    FakeGpu(monkeypatch, gpus=0)
    assert search_mod.resolve_device("flat", "auto") == "cpu"
    with pytest.raises(RuntimeError, match="faiss sees no GPU"):
        search_mod.resolve_device("ivf", "cuda")


def test_device_cuda_requested(monkeypatch):
    gpu = FakeGpu(monkeypatch, gpus=2)
    assert search_mod.resolve_device("flat", "cuda") == "cuda"
    with pytest.raises(ValueError, match="hnsw' has no faiss GPU implementation"):
        build_index(np.eye(3), kind="hnsw", device="cuda")
    pool = np.random.default_rng(8).integers(-2, 3, size=(2100, 4)).astype(np.float32)
    index = build_index(pool, device="cuda")
    assert index.device == "cuda" and gpu.moved == [("resources", 0, "IndexFlatIP")]
    with pytest.raises(ValueError, match="exceeds the faiss GPU limit of 2048"):
        search(index, pool[:2], 2049)
    np.testing.assert_array_equal(search(index, pool[:3], 40)[1], reference(pool[:3], pool, 40)[1])


def test_save_and_load_gpu_index(monkeypatch, tmp_path):
    gpu = FakeGpu(monkeypatch, gpus=1)
    pool = clustered(300, seed=9)
    index = build_index(pool)
    save_index(index, tmp_path / "gpu.faiss")
    assert gpu.copied_back == ["IndexFlatIP"]
    loaded = load_index(tmp_path / "gpu.faiss")
    assert loaded.device == "cuda" and len(gpu.moved) == 2
    assert load_index(tmp_path / "gpu.faiss", device="cpu").device == "cpu"


def test_search_accepts_a_bare_faiss_index(tied):
    pool, queries = tied
    raw = faiss.IndexFlatIP(pool.shape[1])
    raw.add(pool)
    np.testing.assert_array_equal(search(raw, queries, 12)[1], reference(queries, pool, 12)[1])
    assert isinstance(build_index(pool), SearchIndex)
