"""Helpers to run Snakemake on a scratch copy of the project, as a user would."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--cores", "2"]


def scratch_project(tmp_path: Path, hydra_overrides=(), **config) -> Path:
    """A copy of the project's workflow files in ``tmp_path`` with config.yaml updated by ``config``."""
    for name in ("Snakefile", "workflow", "config", "profiles", "src", "envs", "data"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    write_config(tmp_path, hydra_overrides=list(hydra_overrides), **config)
    return tmp_path


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
