"""Benchmark: curation throughput on a large M-BEIR-layout source, and image validation workers.

    python benchmarks/curate_throughput.py [--queries 1000000] [--candidates 1000000] [--images 4000]

Prints, measured in one run:
  * curation rows/s and peak RSS (in a fresh subprocess) vs a baseline that only parses the same
    JSON lines (json.loads per line): the ratio is what reading + validation + table building costs;
  * image validation images/s with 2 workers vs 1 worker.
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

HEADER = "query_modality\tcand_modality\tdataset_name\tdataset_id\tprompt_1\tprompt_2\tprompt_3\tprompt_4\n"


def write_source(root: Path, n_queries: int, n_candidates: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    (root / "instructions").mkdir(parents=True)
    (root / "instructions" / "query_instructions.tsv").write_text(
        HEADER + "text\ttext\tBench\t5\tFind a passage.\tRetrieve text.\tMatch this.\tFind related text.\n")
    pool = root / "cand_pool" / "local" / "mbeir_bench_task1_cand_pool.jsonl"
    pool.parent.mkdir(parents=True)
    with open(pool, "w") as f:
        for i in range(n_candidates):
            f.write(json.dumps({"did": f"5:{i}", "txt": f"candidate passage number {i} about topic {i % 997}",
                                "img_path": None, "modality": "text", "src_content": None}) + "\n")
    queries = root / "query" / "test" / "mbeir_bench_task1_test.jsonl"
    queries.parent.mkdir(parents=True)
    with open(queries, "w") as f:
        for i in range(n_queries):
            f.write(json.dumps({"qid": f"5:{i}", "query_txt": f"a question {i} about topic {i % 997}",
                                "query_img_path": None, "query_modality": "text", "query_src_content": None,
                                "pos_cand_list": [f"5:{rng.randrange(n_candidates)}"], "neg_cand_list": [],
                                "task_id": 1}) + "\n")


CURATE = """
import resource, sys, time
from uniembed.data.curate import finalize
from uniembed.data.readers import read_mbeir
t = time.perf_counter()
out = finalize(read_mbeir("bench", sys.argv[1], splits=["test"]), validate_images=False, progress=False)
out.write(sys.argv[2])
print(time.perf_counter() - t, out.summary["rows_in"], out.summary["kept"],
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

PARSE_ONLY = """
import json, pathlib, resource, sys, time
t = time.perf_counter(); n = 0
for p in sorted(pathlib.Path(sys.argv[1]).rglob("*.jsonl")):
    with open(p, "rb") as f:
        for line in f:
            json.loads(line); n += 1
print(time.perf_counter() - t, n, n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def run_child(code: str, *args: str) -> tuple[float, int, int, float]:
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True).stdout
    seconds, rows, kept, rss_kb = out.split()
    return float(seconds), int(rows), int(kept), int(rss_kb) / 1024


def bench_images(root: Path, n: int) -> dict[int, float]:
    from uniembed.data.images import check_images

    paths = []
    for i in range(n):
        path = root / "img" / f"{i}.jpg"  # photo-like: M-BEIR images are ~256-512 px JPEGs
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.effect_noise((384, 384), 40 + i % 50).convert("RGB").save(path, quality=90)
        paths.append(str(path))
    rates = {}
    for workers in (1, 2):
        t = time.perf_counter()
        failures = check_images(paths, workers=workers, progress=False)
        assert not failures
        rates[workers] = n / (time.perf_counter() - t)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=1_000_000)
    parser.add_argument("--candidates", type=int, default=1_000_000)
    parser.add_argument("--images", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "mbeir"
        t = time.perf_counter()
        write_source(root, args.queries, args.candidates)
        print(f"wrote {args.queries:,} queries + {args.candidates:,} candidates in {time.perf_counter() - t:.1f}s")
        base = run_child(PARSE_ONLY, str(root))
        ours = run_child(CURATE, str(root), str(Path(tmp) / "out"))
        print(f"baseline json.loads only : {base[1] / base[0]:>10,.0f} rows/s  peak RSS {base[3]:,.0f} MiB")
        print(f"curate (read+validate+write): {ours[1] / ours[0]:>10,.0f} rows/s  peak RSS {ours[3]:,.0f} MiB"
              f"  ({ours[1]:,} rows in, {ours[2]:,} kept, {ours[0]:.1f}s)")
        print(f"ratio curate/baseline throughput: {(ours[1] / ours[0]) / (base[1] / base[0]):.2f}")
        rates = bench_images(Path(tmp), args.images)
        print(f"image validation: 1 worker {rates[1]:,.0f} img/s, 2 workers {rates[2]:,.0f} img/s,"
              f" ratio {rates[2] / rates[1]:.2f}")


if __name__ == "__main__":
    main()
