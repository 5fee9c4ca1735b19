"""Benchmark: training steps/s and peak memory vs contrastive batch size, with and without
gradient caching, on the tiny model and the synthetic M-BEIR train set.

    python benchmarks/train_memory.py [--batches 32 256 1024] [--chunk 32] [--steps 2]

Each configuration runs in a fresh subprocess; peak memory is that process's ru_maxrss (RSS
high-water mark, includes the ~0.4 GiB of Python/torch/model), and "extra" subtracts the same
process's RSS right before the first training step. Printed as ratios against the smallest
batch without caching, measured in the same run.
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
from uniembed.train import trainer as T
torch.set_num_threads(2)
model, curated, out, batch, chunk, steps = sys.argv[1:7]
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
orig = T.load_training_set
def hooked(*a, **k):
    hooked.before = rss()
    return orig(*a, **k)
T.load_training_set = hooked
settings = T.TrainSettings(max_steps=int(steps), batch_size=int(batch), lr=1e-4, chunk_size=int(chunk) or None,
                           save_every=10**6, lora_r=8)
start = time.perf_counter()
summary = T.train_contrastive(settings, base_model=model, curated_dir=curated, out_dir=out + "/o", checkpoint_dir=out + "/c",
                              log_dir=out + "/t", device="cpu", progress=False)
step_times = [len(summary["history"]) / (time.perf_counter() - start)]
print(json.dumps({"peak": rss(), "before": hooked.before, "items_per_s": summary["history"][-1]["items_per_s"],
                  "steps_per_s": step_times[0]}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 256, 1024])
    parser.add_argument("--chunk", type=int, default=32)
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()
                    
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model, curated = build_embedded_world(tmp, "train")
        results = {}
        for batch in args.batches:
            for chunk in (0, args.chunk):
                out = tmp / f"run_{batch}_{chunk}"
                proc = subprocess.run([sys.executable, "-c", CHILD, str(model), str(curated), str(out), str(batch),
                                       str(chunk), str(args.steps)], capture_output=True, text=True)
                if proc.returncode:
                    raise SystemExit(proc.stderr[-2000:])
                results[(batch, chunk)] = json.loads(proc.stdout.strip().splitlines()[-1])
        base = results[(args.batches[0], 0)]
        base_extra = base["peak"] - base["before"]
        print(f"tiny Qwen2-VL, M-BEIR-style train batches (queries + positives), {args.steps} steps, 2 threads")
        print(f"{'batch':>6} {'gradcache':>10} {'peak MiB':>9} {'extra MiB':>10} {'extra/base':>11} {'items/s':>8}")
        for (batch, chunk), r in results.items():
            extra = r["peak"] - r["before"]
            print(f"{batch:>6} {('chunk ' + str(chunk)) if chunk else 'off':>10} {r['peak']:>9.0f} {extra:>10.0f}"
                  f" {extra / max(base_extra, 1):>11.2f} {r['items_per_s']:>8.0f}")


if __name__ == "__main__":
    main()
