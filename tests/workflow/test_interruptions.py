"""When a run is interrupted (docs/interruptions.md): each documented path, for real.

A stage process killed by its PID (as a preemption would) resumes from its checkpoint under a
plain `snakemake`; a killed `snakemake` leaves its lock, which `--unlock` clears. Each runs on the small world with the
embedder's model built without tower pretraining (tests.workflow.dag.RANDOM_TOWERS): the world, the model, the curation
and the stage under test.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.workflow.dag import RANDOM_TOWERS, SIZES, SNAKEMAKE, scratch_project, snakemake

LONG_NLI = [SIZES, *RANDOM_TOWERS, "recipe.pretrain.stages.nli.max_steps=60",
            "recipe.pretrain.stages.nli.save_every=10"]
TARGET = "results/default/models/pretrain_nli"


def _start(project: Path) -> subprocess.Popen:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.Popen([*SNAKEMAKE, TARGET], cwd=project, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _wait_for_checkpoint(project: Path, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not list((project / "results" / "default" / "checkpoints" / "pretrain_nli").glob("*/latest")):
        assert time.time() < deadline, "training never wrote a checkpoint"
        time.sleep(0.5)


def _stage_pid(session: int, pattern: str) -> int:
    """The PID of the stage process that ``pattern`` matches inside ``session`` (the runner's session)."""
    out = subprocess.run(["pgrep", "-s", str(session), "-f", pattern], capture_output=True, text=True).stdout.split()
    assert out, f"no process matches {pattern!r}"
    return int(out[0])


@pytest.mark.slow
def test_a_killed_training_job_resumes_under_a_plain_rerun(tmp_path):
    project = scratch_project(tmp_path, hydra_overrides=LONG_NLI)
    runner = _start(project)
    _wait_for_checkpoint(project)
    os.kill(_stage_pid(runner.pid, "^python -m uniembed.stages.train --stage section pretrain --stage name nli"), signal.SIGKILL)
    assert runner.wait(timeout=120) != 0
    assert not (project / TARGET).exists()
    rerun = snakemake(project, TARGET)
    assert rerun.returncode == 0, rerun.output[-3000:]
    log = (project / "results" / "default" / "logs" / "pretrain_nli.log").read_text()
    assert "resumed from" in log and (project / TARGET / "model" / "config.json").is_file()


@pytest.mark.slow
def test_a_killed_snakemake_needs_unlock_then_continues(tmp_path):
    project = scratch_project(tmp_path, hydra_overrides=LONG_NLI)
    runner = _start(project)
    _wait_for_checkpoint(project)
    os.killpg(runner.pid, signal.SIGKILL)   # snakemake and its jobs, no chance to clean up
    runner.wait(timeout=60)
    locked = snakemake(project, TARGET)
    assert locked.returncode != 0 and "--unlock" in locked.output
    assert snakemake(project, "--unlock").returncode == 0
    rerun = snakemake(project, TARGET)
    assert rerun.returncode == 0, rerun.output[-3000:]
    assert "resumed from" in (project / "results" / "default" / "logs" / "pretrain_nli.log").read_text()
