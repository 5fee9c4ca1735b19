"""A running pretraining job requeued by SLURM (`scontrol requeue`, as preemption does) resumes from its checkpoint.

profiles/slurm submits with `sbatch --requeue`: SLURM kills the running job, puts it back in the queue
under the same job id and runs the rule's command again, which must continue from the latest checkpoint
in results/<run>/checkpoints/ instead of starting over. Snakemake keeps waiting for the same job.
"""
import json
import re
import subprocess
import sys

import pytest

from tests.slurm.conftest import SIZES, slurm_project, snakemake_command, submitted_jobs, wait_for

MAX_STEPS, SAVE_EVERY = 300, 5
TARGET = "results/default/models/pretrain_nli"
CHECKPOINTS = "results/default/checkpoints/pretrain_nli"
RULE_LOG = "results/default/logs/pretrain_nli.log"
INPUTS = ["resources/models/tiny-qwen2vl", "results/default/curated/nli/summary.json"]
COMMENT = "rule_pretrain_wildcards_nli"  # the plugin's --comment for the job of pretrain, stage nli
OVERRIDES = [SIZES, "recipe.pretrain.order=[nli]", "recipe.mine.from=pretrain_nli", "recipe.train_hn.from=pretrain_nli",
             "recipe.ablations.umarvel.variants.progressive.model=pretrain_nli",
             *(f"recipe.pretrain.stages.nli.{key}={value}" for key, value in
               (("max_steps", MAX_STEPS), ("batch_size", 4), ("optimizer.warmup_steps", 1), ("save_every", SAVE_EVERY)))]


def pretrain_job(cluster, project) -> tuple[str, str] | None:
    """(job id, state) of this project's pretrain job in squeue, or None before it is submitted."""
    rows = subprocess.run(["squeue", "-h", "--states=all", "-o", "%i|%k|%T|%Z"], env=cluster.env,
                          capture_output=True, text=True, check=True).stdout.split()
    jobs = [(job, state) for job, comment, state, workdir in (row.split("|") for row in rows)
            if comment == COMMENT and workdir == str(project)]
    assert len(jobs) <= 1, jobs
    return jobs[0] if jobs else None


def checkpoint_runs(project) -> list:
    """The run directories under the stage's checkpoint directory (one per run fingerprint)."""
    return sorted(pointer.parent for pointer in (project / CHECKPOINTS).glob("**/latest"))


def checkpoint_step(project) -> int:
    """Step of the latest complete checkpoint (0 when there is none)."""
    steps = [int((run / "latest").read_text().removeprefix("step-")) for run in checkpoint_runs(project)]
    assert len(steps) <= 1, checkpoint_runs(project)
    return steps[0] if steps else 0


@pytest.mark.slow
def test_requeued_pretraining_job_resumes_from_its_checkpoint(slurm_cluster, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    slurm_project(project, overrides=OVERRIDES)
    # The inputs of pretraining (tiny model, synthetic data, curated NLI) are made locally: only the
    # pretrain job goes through SLURM, so every job-completion record of this project is that job's.
    upstream = subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/default", *INPUTS],
                              cwd=project, env=slurm_cluster.env, capture_output=True, text=True, timeout=600)
    assert upstream.returncode == 0, (upstream.stdout + upstream.stderr)[-4000:]

    output_path = tmp_path / "snakemake.out"
    job_id = None
    with output_path.open("w") as output:
        proc = subprocess.Popen(snakemake_command(TARGET), cwd=project, env=slurm_cluster.env,
                                stdout=output, stderr=subprocess.STDOUT)
        try:
            job_id, _ = wait_for("pretrain job in squeue", lambda: pretrain_job(slurm_cluster, project), proc, 60)
            step_before = wait_for(f"checkpoint at step >= {SAVE_EVERY}",
                                   lambda: (step := checkpoint_step(project)) >= SAVE_EVERY and step,
                                   proc, 90, interval=0.05)
            first_log = (project / RULE_LOG).read_text()
            subprocess.run(["scontrol", "requeue", job_id], env=slurm_cluster.env, check=True, timeout=30)
            # Only now: the job must have been running (not finished) when it was requeued.
            assert not (project / TARGET).exists(), "training finished before the requeue: raise MAX_STEPS"
            returncode = proc.wait(timeout=300)
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=60)
            if job_id and proc.returncode != 0:
                subprocess.run(["scancel", job_id], env=slurm_cluster.env, timeout=30)
    out = output_path.read_text()
    assert returncode == 0, out[-4000:]

    # One submission: SLURM requeued the job under its id, Snakemake did not resubmit it.
    assert submitted_jobs(project, out) == {job_id: "pretrain"}, out[-4000:]
    # The job-completion log: the interrupted execution (put back to the queue), then the completed one.
    records = slurm_cluster.records(project)
    assert [r["JobId"] for r in records] == [job_id, job_id], records
    interrupted, completed = records
    assert interrupted["JobState"] in {"PENDING", "REQUEUED"}, interrupted
    assert (completed["JobState"], completed["ExitCode"]) == ("COMPLETED", "0:0"), completed
    assert interrupted["EndTime"] <= completed["StartTime"], records

    # The first execution started from scratch; the second (its log rewrites the first's) resumed.
    assert "resumed from" not in first_log and "train pretrain.nli on nli" in first_log, first_log[-2000:]
    log = (project / RULE_LOG).read_text()
    # Nothing of the first execution outlived the requeue (it would keep writing into the rewritten log).
    assert log.count("train pretrain.nli on nli") == 1 and "\x00" not in log, log[-3000:]
    [run] = checkpoint_runs(project)  # the same run fingerprint in both executions
    resumed = re.findall(rf"resumed from {re.escape(str(run.relative_to(project)))} at step (\d+)", log)
    assert resumed, f"the requeued job did not resume from its checkpoint in {run}:\n{log[-3000:]}"
    assert step_before <= int(resumed[0]) < MAX_STEPS, (step_before, resumed)
    assert f"train pretrain.nli done: {MAX_STEPS} steps" in log, log[-2000:]

    summary = json.loads((project / TARGET / "training_summary.json").read_text())
    assert summary["finished"] and summary["step"] == MAX_STEPS
    assert [record["step"] for record in summary["history"]] == list(range(1, MAX_STEPS + 1))
    assert checkpoint_step(project) == MAX_STEPS

    from uniembed.model.loading import load_for_embedding

    assert load_for_embedding(project / TARGET / "model") is not None
