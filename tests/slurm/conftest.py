"""Shared fixtures and helpers of the SLURM tests: a real single-node cluster (scripts/slurm_cluster.sh)
and scratch copies of the workflow run through profiles/slurm.

The session fixture installs SLURM when missing (root, apt), starts the cluster and stops it at the
end unless it was already running. Jobs are shown to have run through SLURM by its job-completion log.
"""
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.workflow.dag import RANDOM_TOWERS, SIZES, scratch_project, short_training  # noqa: F401 (SIZES: the slurm tests')

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_SCRIPT = ROOT / "scripts" / "slurm_cluster.sh"
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)\.")


class Cluster:
    """The running cluster: the environment its clients need and its job-completion records."""

    def __init__(self, conf: str, jobcomp: str):
        self.conf, self.jobcomp = conf, Path(jobcomp)
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
        self.env = {**os.environ, "SLURM_CONF": conf, "PATH": path}
        # records of earlier sessions stay in the log (a cluster that was running, or restarted with the same state
        # directory: job ids start over and a scratch path can repeat): only what this session appends counts
        self.offset = self.jobcomp.stat().st_size if self.jobcomp.is_file() else 0

    def records(self, workdir: Path) -> list[dict]:
        """Job-completion records of this session's jobs that ran in `workdir`, oldest first (a requeued job has
        several)."""
        with open(self.jobcomp, "rb") as handle:
            handle.seek(self.offset)
            lines = handle.read().decode(errors="replace").splitlines()
        rows = [dict(re.findall(r"(\w+)=(\S*)", line)) for line in lines]
        return [row for row in rows if row.get("WorkDir") == str(workdir)]


@pytest.fixture(scope="session")
def slurm_cluster():
    """Start the local cluster (installing SLURM on a fresh machine); stop it if this session started it."""
    assert importlib.util.find_spec("snakemake_executor_plugin_slurm"), "needs the slurm extra: pip install -e '.[slurm]'"
    was_running = subprocess.run(["bash", CLUSTER_SCRIPT, "status"], capture_output=True).returncode == 0
    start = subprocess.run(["bash", CLUSTER_SCRIPT, "start"], capture_output=True, text=True, timeout=900)
    assert start.returncode == 0, start.stdout + start.stderr
    conf = re.search(r"^SLURM_CONF=(.+)$", start.stdout, re.M).group(1)
    jobcomp = re.search(r"^job-completion log: (.+)$", start.stdout, re.M).group(1)
    yield Cluster(conf, jobcomp)
    if not was_running:
        subprocess.run(["bash", CLUSTER_SCRIPT, "stop"], capture_output=True, timeout=120)


def slurm_project(path: Path, resources_per_rule=None, overrides=None) -> Path:
    """A scratch copy of the workflow on the small synthetic world, with resources_per_rule entries updated; its models
    are built without tower pretraining (RANDOM_TOWERS: the cluster runs test the profile, not what a model learns)."""
    scratch_project(path)
    cfg = yaml.safe_load((path / "config" / "config.yaml").read_text())
    cfg["hydra_overrides"] = [*RANDOM_TOWERS, *([SIZES, *short_training()] if overrides is None else overrides)]
    for rule, spec in (resources_per_rule or {}).items():
        cfg.setdefault("resources_per_rule", {}).setdefault(rule, {}).update(spec)
    (path / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    return path


def snakemake_command(*args: str, profile: str = "profiles/slurm") -> list[str]:
    """The Snakemake command line of these tests (first status check after 5 s instead of the profile's 20)."""
    return [sys.executable, "-m", "snakemake", "--profile", profile,
            "--slurm-init-seconds-before-status-checks", "5", *args]


def run_slurm(project: Path, cluster: Cluster, *args: str, profile: str = "profiles/slurm", timeout: int = 1200):
    result = subprocess.run(snakemake_command(*args, profile=profile), cwd=project, env=cluster.env,
                            capture_output=True, text=True, timeout=timeout)
    result.output = result.stdout + result.stderr
    return result


def planned_jobs(output: str) -> Counter:
    """Rule -> job count from the "Job stats" table Snakemake prints before running."""
    table = output.split("Job stats:", 1)[1].split("total", 1)[0]
    return Counter({rule: int(count) for rule, count in re.findall(r"^(\w+)\s+(\d+)\s*$", table, re.M)})


def submitted_jobs(project: Path, output: str) -> dict[str, str]:
    """SLURM job id -> rule, from the submission lines (log: results/slurm_logs/rule_<rule>/...)."""
    logdir = project / "results" / "slurm_logs"
    return {job_id: Path(log).relative_to(logdir).parts[0].removeprefix("rule_")
            for job_id, log in SUBMITTED.findall(output)}


def copy_of(project: Path, path: Path) -> Path:
    """A copy of a finished project (mtimes kept: run it with --rerun-triggers mtime)."""
    shutil.copytree(project, path / "project", symlinks=True)
    return path / "project"


def wait_for(what: str, probe, proc: subprocess.Popen, timeout: float, interval: float = 0.1):
    """Poll `probe()` until it returns something truthy; fail if Snakemake exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        assert proc.poll() is None, f"Snakemake exited ({proc.returncode}) while waiting for {what}"
        time.sleep(interval)
    pytest.fail(f"no {what} after {timeout} s")
