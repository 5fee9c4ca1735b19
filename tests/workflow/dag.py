"""Helpers to run Snakemake on a scratch copy of the project, as a user would.

Each test that runs the DAG builds what it needs in its own scratch project (the world, the tiny models), as a
fresh clone does: the integration run the whole embedded default (its models' vision pretraining and the judge's
instruct training included), the other runs small worlds and models without the towers' pretraining.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import SMALL_WORLD

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--cores", "2"]
PROJECT_FILES = ("Snakefile", "workflow", "config", "profiles", "src", "envs", "data")
#: Hydra overrides of a run whose models start from their built, random towers (no vision pretraining, minutes on
#: 2 cores): the runs that test the workflow's mechanics rather than what the embedded default learns.
RANDOM_TOWERS = ["model.vision_pretrain=null", "judge_model.vision_pretrain=null"]
#: The Hydra override of the small synthetic world (tests.conftest.SMALL_WORLD).
SIZES = "data.generator.sizes={" + ", ".join(f"{k}: {v}" for k, v in SMALL_WORLD.items()) + "}"


def scratch_project(tmp_path: Path, hydra_overrides=(), **config) -> Path:
    """A copy of the project's workflow files in ``tmp_path`` with config.yaml updated by ``config``."""
    for name in PROJECT_FILES:
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name,
                                                              **({"ignore": _IGNORE} if src.is_dir() else {}))
    write_config(tmp_path, hydra_overrides=list(hydra_overrides), **config)
    return tmp_path


_IGNORE = shutil.ignore_patterns("__pycache__")


def write_config(project: Path, **changes) -> None:
    path = project / "config" / "config.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg.update(changes)
    path.write_text(yaml.safe_dump(cfg))


def snakemake(project: Path, *args: str, timeout: int = 900, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run Snakemake with the project env on PATH (rules call `python -m ...`); ``env`` adds variables."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    result = subprocess.run([*SNAKEMAKE, *args], cwd=project, capture_output=True, text=True, env=env, timeout=timeout)
    result.output = result.stdout + result.stderr
    return result


def planned_jobs(output: str) -> dict[str, int]:
    """The job counts of a dry run's "Job stats" table (rule -> count)."""
    table = output.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.MULTILINE)}


def short_training() -> list[str]:
    """Hydra overrides that cut every training stage of the tiny recipe (pretrain stages, hard-negative
    objectives, rerankers, distillation) and the judge's instruct training (which reruns on the small world)
    to 2 steps of 4 examples."""
    recipe = yaml.safe_load((ROOT / "config" / "recipe" / "tiny.yaml").read_text())
    entries = [(f"recipe.pretrain.stages.{name}", stage) for name, stage in recipe["pretrain"]["stages"].items()]
    entries += [(f"recipe.train_hn.objectives.{name}", stage)
                for name, stage in (recipe.get("train_hn") or {}).get("objectives", {}).items()]
    entries += [(f"recipe.rerank.rerankers.{name}", stage)
                for name, stage in (recipe.get("rerank") or {}).get("rerankers", {}).items()]
    entries += [("recipe.distill.train", recipe["distill"]["train"])] if recipe.get("distill") else []
    entries += [("judge_model.instruct", yaml.safe_load((ROOT / "config" / "judge_model" / "tiny.yaml").read_text())["instruct"])]
    return [f"{prefix}.{key}={value}" for prefix, stage in entries
            for key, value in (("max_steps", 2), ("batch_size", 4), ("save_every", 1), ("optimizer.warmup_steps", 1),
                               ("warmup_steps", 1))
            if key.split(".")[0] in stage]
