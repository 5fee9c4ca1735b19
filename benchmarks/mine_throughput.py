"""Benchmark: candidate mining (top-50 below delta, positives removed) on a 1M-candidate pool.

    python benchmarks/mine_throughput.py [--pool 1000000] [--queries 10000] [--dim 768] [--k 50]

Runs in fresh subprocesses on the same seeded arrays: (a) ``mine_candidates`` with a delta that
removes the nearest neighbours of many queries (so widening happens), (b) the same without
delta, (c) the baseline: one bare exact search for top k + 2 (what mining costs at least).
Prints queries/s and peak RSS (ru_maxrss of each subprocess) and ratios against (c).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np
method, n, nq, dim, k = sys.argv[1], *map(int, sys.argv[2:6])
rng = np.random.default_rng(0)
pool = rng.standard_normal((n, dim), dtype=np.float32)
pool /= np.linalg.norm(pool, axis=1, keepdims=True)
picks = rng.integers(0, n, size=nq)
queries = pool[picks] + 0.5 * rng.standard_normal((nq, dim), dtype=np.float32) / np.sqrt(dim)
queries /= np.linalg.norm(queries, axis=1, keepdims=True)
pool_ids = [f"c{j}" for j in range(n)]
qids = [f"q{i}" for i in range(nq)]
positives = [{f"c{j}"} for j in picks]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start = time.perf_counter()
if method == "baseline":
    from uniembed.embed.search import search
    search(pool, queries, k + 2)
    rows = nq * (k + 2)
else:
    from uniembed.mine.candidates import mine_candidates
    delta = 0.2 if method == "delta" else None
    rows = mine_candidates(queries, qids, positives, pool, pool_ids, top_k=k, delta=delta, device="cpu").num_rows
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "rows": rows, "before": before,
                  "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pool", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--k", type=int, default=50)
    args = parser.parse_args()
    results = {}
    for method in ("baseline", "plain", "delta"):
        out = subprocess.run([sys.executable, "-c", CHILD, method, str(args.pool), str(args.queries), str(args.dim),
                              str(args.k)], capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(out.stderr[-2000:])
        results[method] = json.loads(out.stdout.strip().splitlines()[-1])
    base = results["baseline"]
    print(f"pool {args.pool:,} x {args.dim}, {args.queries:,} queries, top {args.k}; peak RSS per subprocess")
    for method, label in (("baseline", "bare exact search, top k+2"), ("plain", "mine (positives removed)"),
                          ("delta", "mine with delta=0.2 (widening)")):
        r = results[method]
        print(f"{label:<32} {args.queries / r['seconds']:>8.0f} queries/s  peak {r['peak'] / 1024:5.2f} GiB"
              f"  time x{r['seconds'] / base['seconds']:.2f}  peak x{r['peak'] / base['peak']:.2f}  rows {r['rows']:,}")


if __name__ == "__main__":
    main()
