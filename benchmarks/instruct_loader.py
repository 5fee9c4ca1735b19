"""Benchmark: the judge's instruct training with its batches prepared in the step's process against one loader worker.

    python benchmarks/instruct_loader.py [--steps 150] [--repeats 2]

The embedded default's instruct step (config/judge_model/tiny.yaml: its model's build and instruct settings, on the
default world's curated M-BEIR train split) runs ``--steps`` steps on one torch thread, as its rule runs it
(OMP_NUM_THREADS=1), with 0 and 1 loader workers alternating; each count's time is the best of ``--repeats`` runs
(timeit's rule: on a shared machine the slower runs measure the neighbours). Every run must give the same losses.
A step prepares its batch (examples, prompts, images, the processor: about a third of it on CPU) and trains on
it; with a worker the next batch is prepared beside the step, on a second core when one is free, as at the first
run's tail, where the instruct step runs alone after the embedder's stages.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import yaml

from uniembed.data.curate import finalize
from uniembed.data.loader import LoaderSettings
from uniembed.data.readers import read_mbeir
from uniembed.data.synthetic import generate_synthetic
from uniembed.data.synthetic.world import corpus
from uniembed.instruct.settings import InstructSettings
from uniembed.instruct.train import train_instruct
from uniembed.model.tiny import build_tiny_model

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    section = yaml.safe_load((ROOT / "config" / "judge_model" / "tiny.yaml").read_text())
    settings = InstructSettings(**{**section["instruct"], "max_steps": args.steps, "save_every": 10 ** 6})
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = build_tiny_model(tmp / "judge", corpus(section["build"]["seed"]), family_name=section["family"],
                                 **section["build"])
        generate_synthetic(tmp / "data", seed=0)
        finalize(read_mbeir("mbeir", tmp / "data" / "mbeir", splits=["train"]), progress=False).write(tmp / "curated" / "mbeir")
        seconds, losses = {0: [], 1: []}, {}
        for repeat in range(args.repeats):
            for workers in (0, 1):
                run = tmp / f"run-{workers}-{repeat}"
                start = time.perf_counter()
                summary = train_instruct(settings, base_model=model, curated_dir=tmp / "curated", out_dir=run / "out",
                                         checkpoint_dir=run / "ckpt", log_dir=run / "tb", device="cpu", progress=False,
                                         loader=LoaderSettings(workers=workers))
                seconds[workers].append(time.perf_counter() - start)
                history = [record["loss"] for record in summary["history"]]
                assert losses.setdefault("reference", history) == history, "the losses differ between runs"
    best = {workers: min(times) for workers, times in seconds.items()}
    print(f"instruct step of the embedded default's judge, {args.steps} steps of batch {settings.batch_size} "
          f"(+ {settings.group.queries} groups of {settings.group.negatives + 1}), one torch thread, best of {args.repeats}:")
    for workers in (0, 1):
        print(f"  {workers} loader workers: {best[workers]:6.1f} s ({args.steps / best[workers]:.2f} steps/s, "
              f"model load and save included)")
    print(f"  ratio 0 / 1 workers: {best[0] / best[1]:.2f}x; the same losses in every run")


if __name__ == "__main__":
    main()
