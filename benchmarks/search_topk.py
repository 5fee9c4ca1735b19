"""Benchmark: exact top-k inner-product search over a large embedding pool.

    python benchmarks/search_topk.py [--pool 1000000] [--queries 10000] [--dim 768] [--k 50]

Each method runs in a fresh subprocess on the same data (L2-normalised float32, generated there
from a fixed seed, identical in every process) and reports its wall time (index build and search
separately) and its peak RSS from ``resource.getrusage(RUSAGE_SELF).ru_maxrss``; the RSS after
data generation is reported too, so "extra" is what the method itself added on top of the data.

  (a) ours: ``build_index(pool)`` (flat, device auto) + ``search(index, queries, k)`` (default chunks);
  (b) bare faiss: ``IndexFlatIP`` + ``add`` + one ``index.search(queries, k)``;
  (c) torch: ``torch.topk`` over the full query x pool score matrix, computed ``--torch-chunk``
      queries at a time (all queries, whole pool; 10k x 1M float32 scores at once would be 40 GB).

Ratios are against (b). The top-k ids of (a) and (c) are compared with (b)'s.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

METHODS = {"ours": "(a) uniembed search", "faiss": "(b) bare faiss IndexFlatIP", "torch": "(c) torch.topk chunked"}


def make_data(n_pool: int, n_queries: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit-norm Gaussian pool; queries are noisy copies of random pool rows (each has a clear best match)."""
    rng = np.random.default_rng(seed)
    pool = np.empty((n_pool, dim), dtype=np.float32)
    for start in range(0, n_pool, 65536):  # in blocks: no full-size temporaries
        block = rng.standard_normal((min(65536, n_pool - start), dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        pool[start:start + len(block)] = block
    queries = pool[rng.integers(0, n_pool, n_queries)] + rng.standard_normal((n_queries, dim), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return pool, queries


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def run_method(args: argparse.Namespace) -> None:
    """Child process: generate the data, run one method, print a JSON line, save the top-k ids."""
    import faiss  # imports are not timed
    import torch

    from uniembed.embed.search import build_index, search

    pool, queries = make_data(args.pool, args.queries, args.dim, args.seed)
    data_rss = peak_rss_gib()
    start = time.perf_counter()
    if args.method == "ours":
        index = build_index(pool)
        built = time.perf_counter()
        _, ids = search(index, queries, args.k)
    elif args.method == "faiss":
        index = faiss.IndexFlatIP(args.dim)
        index.add(pool)
        built = time.perf_counter()
        _, ids = index.search(queries, args.k)
    else:
        pool_t = torch.from_numpy(pool)  # shares memory with the numpy pool
        built = time.perf_counter()
        parts = []
        with torch.inference_mode():
            for s in range(0, len(queries), args.torch_chunk):
                scores = torch.from_numpy(queries[s:s + args.torch_chunk]) @ pool_t.T
                parts.append(torch.topk(scores, min(args.k, len(pool)), dim=1).indices)
                del scores
        ids = torch.cat(parts).numpy()
    done = time.perf_counter()
    np.save(args.out, ids.astype(np.int64))
    print(json.dumps({"build_s": built - start, "search_s": done - built, "total_s": done - start,
                      "peak_rss_gib": peak_rss_gib(), "data_rss_gib": data_rss}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pool", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--torch-chunk", type=int, default=1024, help="queries per torch score matrix")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--method", choices=list(METHODS), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.method:
        run_method(args)
        return

    gib = args.pool * args.dim * 4 / 2**30
    chunk_gib = min(args.torch_chunk, args.queries) * args.pool * 4 / 2**30
    print(f"pool {args.pool:,} x {args.dim} float32 ({gib:.2f} GiB), {args.queries:,} queries, k={args.k}, "
          f"seed {args.seed}; torch score chunk {args.torch_chunk} queries x {args.pool:,} ({chunk_gib:.2f} GiB)")
    results, ids = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in METHODS:
            out = Path(tmp) / f"{method}.npy"
            cmd = [sys.executable, __file__, "--method", method, "--out", str(out)] + [
                f"--{name}={getattr(args, name.replace('-', '_'))}"
                for name in ("pool", "queries", "dim", "k", "torch-chunk", "seed")]
            t = time.perf_counter()
            proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
            results[method] = json.loads(proc.stdout.strip().splitlines()[-1])
            ids[method] = np.load(out)
            print(f"  ran {METHODS[method]} in {time.perf_counter() - t:.1f}s (incl. data generation)", flush=True)

    base = results["faiss"]
    print(f"\n{'method':<30}{'build s':>9}{'search s':>10}{'total s':>9}{'q/s':>9}"
          f"{'peak RSS GiB':>14}{'extra GiB':>11}{'time/(b)':>10}{'RSS/(b)':>9}{'ids = (b)':>11}")
    for method, label in METHODS.items():
        r = results[method]
        same = (ids[method] == ids["faiss"]).mean()
        print(f"{label:<30}{r['build_s']:>9.2f}{r['search_s']:>10.2f}{r['total_s']:>9.2f}"
              f"{args.queries / r['search_s']:>9,.0f}{r['peak_rss_gib']:>14.2f}"
              f"{r['peak_rss_gib'] - r['data_rss_gib']:>11.2f}{r['total_s'] / base['total_s']:>10.2f}"
              f"{r['peak_rss_gib'] / base['peak_rss_gib']:>9.2f}{same:>11.2%}")
    print("\nbuild = index construction (torch: none); extra = peak RSS minus RSS after data generation; "
          "time/(b) uses total (build + search); ids = (b): share of top-k ids equal to (b)'s, position by position.")


if __name__ == "__main__":
    main()
