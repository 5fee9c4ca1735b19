"""The cost plan of an experiment, before launch:

    python -m uniembed.plan [--configfile config/config.yaml] [--gpu H100-SXM] [--mfu 0.4] [--gpus 1] [--out DIR]
        [--measure-cpu] [--benchmarks results/<run>/benchmarks]
    snakemake plan            # the same, the run's config (its `plan:` keys), to results/<run>/plan/

Per heavy job of the DAG: sequences, mean tokens and images per sequence, FLOPs (uniembed.plan.model_cost),
GPU-hours at the stated MFU on the named GPU, memory per GPU and the job's GPUs (``resources_per_rule``).
Sizes come from the run's curated tables where they exist, else from ``data.sources.<name>.declared``.
``--measure-cpu`` times the run's own model on this machine and predicts each job's seconds here;
``--benchmarks`` sets Snakemake's recorded seconds beside them (the plan's check on the embedded default).
Writes ``plan.md`` and ``plan.json`` to ``--out`` (default results/<run>/plan).
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from ..config import compose_config, experiment_overrides
from .hardware import GPUS, cpu_seconds, gpu_hours, measure_cpu, memory_gib
from .model_cost import model_cost
from .sizes import source_sizes
from .workload import Workload

log = logging.getLogger("uniembed.plan")


def _sections(cfg) -> dict:
    """The model section each role reads: the embedder, the judge's model, the miner (an external checkpoint
    with a config.json, else the embedder's section)."""
    model = OmegaConf.to_container(cfg.model, resolve=True)
    judge = OmegaConf.to_container(cfg.judge_model, resolve=True)
    if (cfg.recipe.get("judge") or {}).get("model"):
        judge["path"] = cfg.recipe.judge.model
    miner = dict(model)
    checkpoint = (cfg.recipe.get("mine") or {}).get("checkpoint")
    if checkpoint and (Path(checkpoint) / "config.json").is_file():
        miner["path"] = checkpoint
    return {"model": model, "judge_model": judge, "miner": miner}


def _tokenizer(section):
    path = Path(str(section.get("path") or ""))
    if not (path / "config.json").is_file():
        return None
    from ..model.processor import load_processor

    return load_processor(path).tokenizer


#: the resources_per_rule entry of a stage's part jobs where it is not the stage's own (docs/slurm.md "Parts")
PART_RESOURCES = {"mine": "mine_encode"}


def _gpus(snakemake_config: dict, rule: str, default: int) -> int:
    """The rule's GPUs from ``resources_per_rule`` (x nodes), else ``default``."""
    table = snakemake_config.get("resources_per_rule") or {}
    spec = {**(table.get("default") or {}), **(table.get(rule) or {})}
    return int(spec.get("gpus") or default) * int(spec.get("nodes") or 1)


def _measured(benchmarks: Path, name: str) -> float | None:
    path = benchmarks / f"{name}.tsv"
    if not path.is_file():
        return None
    with open(path, newline="") as handle:
        return float(next(csv.DictReader(handle, delimiter="\t"))["s"])


def plan(snakemake_config: dict, gpu: str, mfu: float, measure: bool = False, benchmarks: Path | None = None,
         config_dir: str = "config", gpus: int = 1) -> dict:
    overrides = experiment_overrides(snakemake_config["experiment"], snakemake_config.get("resources", "resources"),
                                     snakemake_config.get("hydra_overrides", []))
    cfg = compose_config(overrides, config_dir)
    run_dir = Path(snakemake_config.get("results", "results")) / snakemake_config.get("run_name", "default")
    sections = _sections(cfg)
    costs = {role: model_cost(section) for role, section in sections.items()}
    sizes = source_sizes(cfg, run_dir / "curated", _tokenizer(sections["model"]))
    workload = Workload(cfg, sizes, costs)
    jobs = workload.jobs()
    rates = measure_cpu(jobs, {role: section["path"] for role, section in sections.items()}, costs) if measure else None
    rows = []
    for job in jobs:
        # a stage split into part jobs runs one GPU per part unless resources_per_rule says otherwise
        job_gpus = (_gpus(snakemake_config, PART_RESOURCES.get(job.rule, job.rule), 1) if job.parts > 1
                    else _gpus(snakemake_config, job.rule, gpus))
        hours = gpu_hours(job, gpu, mfu)
        row = {"job": job.name, "rule": job.rule, "model": costs[job.role].name, "kind": job.kind,
               "sequences": job.sequences, "tokens_per_sequence": job.text_tokens, "images_per_sequence": job.images,
               "image_side": job.side, "flops": job.flops, "gpu_hours": hours, "gpus": job_gpus, "jobs": job.parts,
               "wall_hours": hours / (job_gpus * job.parts), "memory_gib_per_gpu": memory_gib(job, costs[job.role], job_gpus)}
        if rates is not None:
            row["cpu_seconds"] = cpu_seconds(job, rates)
        if benchmarks is not None:
            row["measured_seconds"] = _measured(benchmarks, job.name)
        rows.append(row)
    return {"gpu": gpu, "mfu": mfu, "peak_flops": GPUS[gpu][0], "gpu_memory_gib": GPUS[gpu][1],
            "models": {role: {"name": c.name, "parameters": c.parameters, "vision": c.vision_parameters}
                       for role, c in costs.items()},
            "sizes": {name: {**s.__dict__} for name, s in sizes.items()},
            "cpu_rates": rates.__dict__ if rates else None, "jobs": rows,
            "total_gpu_hours": sum(r["gpu_hours"] for r in rows)}


def markdown(result: dict) -> str:
    lines = [f"**Cost plan: {result['gpu']} at {result['mfu']:.0%} MFU "
             f"({result['peak_flops'] / 1e12:.0f} TFLOP/s peak bf16, {result['gpu_memory_gib']} GiB)**", "",
             "| job | model | sequences | tokens / seq | images / seq | PFLOPs | GPU-hours | jobs x GPUs | wall hours "
             "| memory GiB / GPU"
             + (" | CPU s (predicted) | CPU s (measured) | measured / predicted" if result["cpu_rates"] else "") + " |",
             "|---|---|---|---|---|---|---|---|---|---|" + ("---|---|---|" if result["cpu_rates"] else "")]
    if result["cpu_rates"]:
        rates = result["cpu_rates"]
        measured = ", ".join(f"{key} {rate / 1e9:.2f}" for key, rate in rates["flops"].items())
        lines[1:1] = [f"This CPU, measured on the run's models (GFLOP/s): {measured}; "
                      f"{rates['startup_s']:.1f} s to start a stage.", ""]
    for r in result["jobs"]:
        cells = [f"`{r['job']}`", r["model"], f"{r['sequences']:,.0f}", f"{r['tokens_per_sequence']:.0f}",
                 f"{r['images_per_sequence']:.2f}", f"{r['flops'] / 1e15:,.3g}", f"{r['gpu_hours']:,.3g}",
                 f"{r.get('jobs', 1)} x {r['gpus']}", f"{r['wall_hours']:,.3g}", f"{r['memory_gib_per_gpu']:.1f}"]
        if result["cpu_rates"]:
            measured = r.get("measured_seconds")
            cells += [f"{r['cpu_seconds']:.1f}", "—" if measured is None else f"{measured:.1f}",
                      "—" if measured is None else f"{measured / r['cpu_seconds']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Total: {result['total_gpu_hours']:,.1f} GPU-hours."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configfile", default="config/config.yaml")
    parser.add_argument("--config-json", help="the Snakemake config as JSON (the plan rule), instead of --configfile")
    parser.add_argument("--config-dir", default="config")
    parser.add_argument("--gpu", choices=sorted(GPUS), default="H100-SXM")
    parser.add_argument("--mfu", type=float, default=0.4)
    parser.add_argument("--gpus", type=int, default=1, help="GPUs of a job whose rule sets none in resources_per_rule")
    parser.add_argument("--measure-cpu", action="store_true")
    parser.add_argument("--benchmarks", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if not 0 < args.mfu <= 1:
        parser.error(f"--mfu must be in (0, 1], got {args.mfu}")
    snakemake_config = (json.loads(args.config_json) if args.config_json
                        else yaml.safe_load(Path(args.configfile).read_text()))
    result = plan(snakemake_config, args.gpu, args.mfu, args.measure_cpu, args.benchmarks, args.config_dir, args.gpus)
    out = args.out or Path(snakemake_config.get("results", "results")) / snakemake_config.get("run_name", "default") / "plan"
    out.mkdir(parents=True, exist_ok=True)
    (out / "plan.json").write_text(json.dumps(result, indent=2, default=str))
    (out / "plan.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
