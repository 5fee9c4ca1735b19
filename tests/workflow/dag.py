"""Helpers to run Snakemake on a scratch copy of the project, as a user would.

The embedded default's resources (the world, the embedder's model, the judge's model chain: vision
pretraining and instruct training, several minutes on 2 cores) are built once per machine and code
version (:func:`shared_resources`, under a file lock, so xdist workers wait for one build) and copied into
the scratch projects that run the DAG (``scratch_project(..., built=True)``) with their modification times
and Snakemake's metadata records: Snakemake itself then decides what is still valid (a project whose
world, model settings or code differ rebuilds exactly what changed).
"""
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from filelock import FileLock

from tests.conftest import SMALL_WORLD

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--cores", "2"]
PROJECT_FILES = ("Snakefile", "workflow", "config", "profiles", "src", "envs", "data")
#: the rules whose outputs every DAG run starts from: the world, the embedder's model chain, the judge's model chain
RESOURCE_RULES = ("generate_data", "pretrain_vision", "instruct_judge_model")
#: The Hydra override of the small synthetic world (tests.conftest.SMALL_WORLD).
SIZES = "data.generator.sizes={" + ", ".join(f"{k}: {v}" for k, v in SMALL_WORLD.items()) + "}"


def scratch_project(tmp_path: Path, hydra_overrides=(), built: bool = False, **config) -> Path:
    """A copy of the project's workflow files in ``tmp_path`` with config.yaml updated by ``config``; with
    ``built``, the shared resources too (:func:`shared_resources`)."""
    for name in PROJECT_FILES:
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name,
                                                              **({"ignore": _IGNORE} if src.is_dir() else {}))
    write_config(tmp_path, hydra_overrides=list(hydra_overrides), **config)
    if built:
        copy_resources(tmp_path)
    return tmp_path


_IGNORE = shutil.ignore_patterns("__pycache__")


def _code_digest() -> str:
    digest = hashlib.sha256()
    for name in PROJECT_FILES:
        paths = sorted(p for p in (ROOT / name).rglob("*") if p.is_file() and "__pycache__" not in p.parts) \
            if (ROOT / name).is_dir() else [ROOT / name]
        for path in paths:
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def shared_resources() -> Path:
    """A project directory holding the embedded default's built resources (RESOURCE_RULES) and Snakemake's
    metadata of them, built on first use for this code version and kept for the next (a changed file gives
    another directory)."""
    base = Path(tempfile.gettempdir()) / "uniembed-test-resources"
    base.mkdir(exist_ok=True)
    done = base / _code_digest()
    with FileLock(str(done) + ".lock"):
        if not (done / "built").is_file():
            shutil.rmtree(done, ignore_errors=True)
            done.mkdir()
            scratch_project(done)
            result = snakemake(done, *RESOURCE_RULES, timeout=1800)
            assert result.returncode == 0, f"building the shared resources failed:\n{result.output[-4000:]}"
            (done / "built").write_text("ok\n")
    return done


def copy_resources(project: Path) -> None:
    """Copy the shared resources, their Snakemake metadata and their rules' benchmark files into ``project``
    (modification times kept)."""
    source = shared_resources()
    shutil.copytree(source / "resources", project / "resources", dirs_exist_ok=True)
    shutil.copytree(source / ".snakemake" / "metadata", project / ".snakemake" / "metadata", dirs_exist_ok=True)
    # a rule's benchmark: file is one of its outputs (the run directory of the default config)
    shutil.copytree(source / "results" / "default" / "benchmarks", project / "results" / "default" / "benchmarks",
                    dirs_exist_ok=True)


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
