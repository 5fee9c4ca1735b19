"""Benchmark: the cost plan's predicted seconds on this CPU against what Snakemake recorded, per heavy job of a
finished run of the embedded default (the plan's check where it can be checked).

    snakemake --cores 2 --default-resources serial=1 --resources serial=1   # one job at a time (results/<run>/)
    python benchmarks/plan_check.py [--configfile config/config.yaml]

The plan times the run's own models on this machine (uniembed.plan.hardware.measure_cpu: one batch per model and
job kind, through the stages' code, on one torch thread as Snakemake runs the default's jobs, turned into FLOP/s by
the plan's own FLOP count of what it ran) and predicts each job as a stage's start plus its FLOPs at that rate; the
ratio is measured / predicted from the run's benchmark files. Both sides are wall-clock times: run the workflow one
job at a time (two jobs beside each other on 2 cores slow each other down) on a quiet machine, and this as well.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from uniembed.plan.__main__ import plan

#: the heavy jobs the check covers: every training, mining, judging, reranking and evaluation job
HEAVY = ("train", "encode", "score")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configfile", default="config/config.yaml")
    args = parser.parse_args()
    config = yaml.safe_load(Path(args.configfile).read_text())
    run = Path(config.get("results", "results")) / config.get("run_name", "default")
    result = plan(config, "H100-SXM", 0.4, measure=True, benchmarks=run / "benchmarks")
    rates = ", ".join(f"{key} {rate / 1e9:.2f}" for key, rate in result["cpu_rates"]["flops"].items())
    print(f"measured GFLOP/s: {rates}; a stage's start {result['cpu_rates']['startup_s']:.1f} s")
    print(f"{'job':<32}{'predicted s':>12}{'measured s':>12}{'measured/predicted':>20}")
    ratios = []
    for row in result["jobs"]:
        measured = row.get("measured_seconds")
        if row["kind"] not in HEAVY or measured is None:
            continue
        ratios.append(measured / row["cpu_seconds"])
        print(f"{row['job']:<32}{row['cpu_seconds']:>12.1f}{measured:>12.1f}{ratios[-1]:>20.2f}")
    inside = sum(0.5 <= r <= 2 for r in ratios)
    print(f"{inside} of {len(ratios)} jobs within 2x; ratios {min(ratios):.2f} to {max(ratios):.2f}")


if __name__ == "__main__":
    main()
