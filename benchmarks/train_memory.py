"""Benchmark: training steps/s and peak memory vs contrastive batch size and objective, with and
without gradient caching, on the tiny model and the synthetic M-BEIR train set.

    python benchmarks/train_memory.py [--batches 32 256 1024] [--chunk 32] [--steps 2]
        [--objectives inbatch umarvel unime_v2 distill]

Objectives: ``inbatch`` (InfoNCE, in-batch negatives only), ``umarvel`` (InfoNCE + k = 5 hard
negatives per query, U-MARVEL §3.2.2), ``unime_v2`` (UniME-V2's soft-label KL over [positive,
k = 8 negatives]), ``distill`` (U-MARVEL §3.3's KL to the fused teacher over [positive, 49
candidates], Table 12 row 5); the hard negatives, judge scores and teacher scores are random draws
from the pool (the cost does not depend on which candidates they are). Each configuration runs in a fresh
subprocess; peak memory is that process's ru_maxrss (RSS high-water mark, includes the ~0.4 GiB
of Python/torch/model), and "extra" subtracts the same process's RSS right before the first
training step. Printed as ratios against in-batch training at the same batch and caching, against
hard-negative training (``umarvel``) at the same batch and caching when it ran, and against the
first batch's in-batch run without caching, measured in the same run.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from embedded_world import build_embedded_world  # benchmarks/ is the script's directory

CHILD = r"""
import json, resource, sys, time, dataclasses, torch
from uniembed.train import embedding_task as E, trainer as T
from uniembed.train.settings import LoraSettings, OptimizerSettings
torch.set_num_threads(2)
model, curated, out, batch, chunk, steps, objective, negatives = sys.argv[1:9]
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
orig = E.load_training_set
def hooked(*a, **k):
    hooked.before = rss()
    return orig(*a, **k)
E.load_training_set = hooked
settings = T.TrainSettings(max_steps=int(steps), batch_size=int(batch), optimizer=OptimizerSettings(lr=1e-4),
                           objective=json.loads(objective), chunk_size=int(chunk) or None, save_every=10**6,
                           lora=LoraSettings(r=8))
start = time.perf_counter()
summary = T.train_contrastive(settings, base_model=model, curated_dir=curated, out_dir=out + "/o", checkpoint_dir=out + "/c",
                              log_dir=out + "/t", device="cpu", progress=False, hard_negatives=negatives or None)
step_times = [len(summary["history"]) / (time.perf_counter() - start)]
print(json.dumps({"peak": rss(), "before": hooked.before, "items_per_s": summary["history"][-1]["items_per_s"],
                  "steps_per_s": step_times[0]}))
"""


OBJECTIVES = {
    "inbatch": {"name": "info_nce"},
    "umarvel": {"name": "info_nce", "num_negatives": 5},
    "unime_v2": {"name": "soft_label", "num_negatives": 8},
    "distill": {"name": "distill", "temperature": 0.05, "num_negatives": 49},
}


def random_hard_negatives(curated: Path, path: Path, k: int = 49, seed: int = 0) -> Path:
    """A filter-shaped table: ``k`` random non-positive pool candidates per train query, random scores."""
    import random

    import pyarrow as pa
    import pyarrow.parquet as pq
    from uniembed.mine.schemas import HARD_NEGATIVES

    rng = random.Random(seed)
    pool = pq.read_table(curated / "candidates.parquet")["candidate_id"].to_pylist()
    rows = []
    for q in pq.read_table(curated / "queries.parquet").to_pylist():
        negatives = rng.sample([c for c in pool if c not in q["positive_ids"]], k)
        rows.append({"query_id": q["query_id"], "negative_ids": negatives, "negative_scores": [rng.random() for _ in negatives],
                     "positive_score": 0.9, "positive_ids": q["positive_ids"],
                     "positive_scores": [0.9] * len(q["positive_ids"]), "strategy": "random", "params": "{}",
                     "outcome": "selected",
                     "false_negatives_removed": 0})
    pq.write_table(pa.Table.from_pylist(rows, HARD_NEGATIVES), path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 256, 1024])
    parser.add_argument("--chunk", type=int, default=32)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--objectives", nargs="+", choices=list(OBJECTIVES), default=["inbatch"])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model, curated = build_embedded_world(tmp, "train")
        negatives = random_hard_negatives(Path(curated), tmp / "hard_negatives.parquet")
        results = {}
        for objective in args.objectives:
            for batch in args.batches:
                for chunk in (0, args.chunk):
                    out = tmp / f"run_{objective}_{batch}_{chunk}"
                    table = "" if objective == "inbatch" else str(negatives)
                    proc = subprocess.run([sys.executable, "-c", CHILD, str(model), str(curated), str(out), str(batch),
                                           str(chunk), str(args.steps), json.dumps(OBJECTIVES[objective]), table],
                                          capture_output=True, text=True)
                    if proc.returncode:
                        raise SystemExit(proc.stderr[-2000:])
                    results[(objective, batch, chunk)] = json.loads(proc.stdout.strip().splitlines()[-1])
        first = results[(args.objectives[0], args.batches[0], 0)]
        base_extra = first["peak"] - first["before"]
        print(f"tiny Qwen2-VL, M-BEIR-style train batches, {args.steps} steps, 2 threads")
        print(f"{'objective':>9} {'batch':>6} {'gradcache':>10} {'peak MiB':>9} {'extra MiB':>10} {'extra/first':>12}"
              f" {'steps/s':>8} {'step time / inbatch':>20} {'extra / inbatch':>16} {'step time / umarvel':>20}")
        for (objective, batch, chunk), r in results.items():
            extra = r["peak"] - r["before"]
            ref = results.get(("inbatch", batch, chunk))
            time_ratio = f"{ref['steps_per_s'] / r['steps_per_s']:.2f}" if ref else "-"
            memory_ratio = f"{extra / max(ref['peak'] - ref['before'], 1):.2f}" if ref else "-"
            hard = results.get(("umarvel", batch, chunk))
            hard_ratio = f"{hard['steps_per_s'] / r['steps_per_s']:.2f}" if hard else "-"
            print(f"{objective:>9} {batch:>6} {('chunk ' + str(chunk)) if chunk else 'off':>10} {r['peak']:>9.0f}"
                  f" {extra:>10.0f} {extra / max(base_extra, 1):>12.2f} {r['steps_per_s']:>8.2f} {time_ratio:>20}"
                  f" {memory_ratio:>16} {hard_ratio:>20}")


if __name__ == "__main__":
    main()
