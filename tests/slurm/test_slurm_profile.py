"""`snakemake --profile profiles/slurm` on a real single-node SLURM cluster (scripts/slurm_cluster.sh).

The cluster, the scratch projects and the helpers come from conftest.py here. Jobs are shown to have
run through SLURM by its job-completion log. The unit tests of `rule_resources` and the config schema
need no cluster.
"""
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from tests.families.checks import DEFAULT_RULES, check_scores, check_trained_models
from tests.slurm.conftest import (ROOT, SIZES, copy_of, planned_jobs, run_slurm, short_training, slurm_project,
                                  snakemake_command, submitted_jobs, wait_for)
from uniembed.parts import part_range

SCHEMA = str(ROOT / "workflow" / "schemas" / "config.schema.yaml")


GPU_PROBE = '''
rule gpu_probe:
    output:
        "gpu_probe.txt",
    resources:
        **rule_resources("gpu_probe"),
    shell:
        "echo \\"$CUDA_VISIBLE_DEVICES\\" >> {output}"
'''


def add_gpu_probe(project: Path) -> None:
    """A rule that records the GPUs its command sees, on 2 emulated GPUs with tasks: 1 (a launcher)."""
    (project / "workflow" / "rules" / "gpu_probe.smk").write_text(GPU_PROBE)
    with (project / "Snakefile").open("a") as snakefile:
        snakefile.write('\n\ninclude: "workflow/rules/gpu_probe.smk"\n')


#: one query per shard, one pair per forward: each part of the small world's 24 judged queries scores 8 shards,
#: long enough to requeue it between two of them (the whole DAG judges so: the one-job run to compare with)
PART_SHARDS = ["recipe.judge.batch_size=1", "recipe.judge.queries_per_shard=1"]
#: the family of every model of the SLURM run: it is the family matrix's Qwen3-VL DAG (tests/families/checks.py)
FAMILY = "qwen3_vl"


@pytest.fixture(scope="module")
def finished_slurm_run(slurm_cluster, tmp_path_factory):
    """The embedded default with Qwen3-VL as every model, plus the GPU probe, run once through the profile:
    (project, result)."""
    project = slurm_project(tmp_path_factory.mktemp("slurm_project"),
                            {"gpu_probe": {"gpus": 2, "gpu_model": "emulated", "tasks": 1}},
                            overrides=[SIZES, *short_training(), *PART_SHARDS, f"model.family={FAMILY}",
                                       f"judge_model.family={FAMILY}"])
    add_gpu_probe(project)
    return project, run_slurm(project, slurm_cluster, "all", "gpu_probe.txt")


@pytest.mark.slow
def test_embedded_default_runs_through_slurm(finished_slurm_run, slurm_cluster):
    project, result = finished_slurm_run
    assert result.returncode == 0, result.output[-4000:]
    planned = planned_jobs(result.output)
    del planned["all"]  # a target-only rule: Snakemake runs no job for it
    submitted = submitted_jobs(project, result.output)
    assert Counter(submitted.values()) == planned
    records = slurm_cluster.records(project)
    assert sorted(r["JobId"] for r in records) == sorted(submitted), "one job-completion record per rule instance"
    assert {(r["JobState"], r["ExitCode"]) for r in records} == {("COMPLETED", "0:0")}
    kept_logs = sorted((project / "results" / "slurm_logs").rglob("*.log"))
    assert sorted(log.stem for log in kept_logs) == sorted(submitted)
    assert "Nothing to be done" in run_slurm(project, slurm_cluster, "-n").output


@pytest.mark.slow
def test_the_slurm_run_is_qwen3_vls_whole_dag_with_its_models_and_scores_sound(finished_slurm_run):
    project, result = finished_slurm_run
    assert result.returncode == 0, result.output[-4000:]
    assert set(planned_jobs(result.output)) == DEFAULT_RULES | {"gpu_probe"}
    check_trained_models(project, FAMILY)
    check_scores(project)


@pytest.mark.slow
def test_unknown_partition_fails_with_the_slurm_reason_and_keeps_upstream(finished_slurm_run, slurm_cluster, tmp_path):
    project = copy_of(finished_slurm_run[0], tmp_path)
    profile = project / "profiles" / "slurm_nosuchpartition"
    shutil.copytree(project / "profiles" / "slurm", profile)
    settings = yaml.safe_load((profile / "config.yaml").read_text())
    settings["default-resources"]["slurm_partition"] = "nosuchpartition"
    (profile / "config.yaml").write_text(yaml.safe_dump(settings))
    upstream = [p for p in (project / "results" / "default" / "curated").rglob("*") if p.is_file()]
    upstream += [p for p in (project / "resources").rglob("*") if p.is_file()]
    before = {p: p.stat().st_mtime_ns for p in upstream}

    result = run_slurm(project, slurm_cluster, "--forcerun", "evaluate", "--rerun-triggers", "mtime",
                       profile="profiles/slurm_nosuchpartition")
    assert result.returncode != 0
    assert "SLURM sbatch failed" in result.output and "Invalid partition name specified" in result.output
    assert str(project / "results" / "slurm_logs" / "rule_evaluate") in result.output
    assert "results/default/logs/evaluate_zero_shot.log" in result.output
    assert {p: p.stat().st_mtime_ns for p in upstream} == before
    assert not (project / "results" / "default" / "eval" / "zero_shot" / "scores.parquet").exists()


@pytest.mark.slow
def test_resources_beyond_the_node_fail_with_the_slurm_reason(finished_slurm_run, slurm_cluster, tmp_path):
    project = copy_of(finished_slurm_run[0], tmp_path)
    (project / "oversized.yaml").write_text(yaml.safe_dump({"resources_per_rule": {"evaluate": {"mem_mb": 10**8}}}))
    result = run_slurm(project, slurm_cluster, "--forcerun", "evaluate", "--rerun-triggers", "mtime",
                       "--configfile", "config/config.yaml", "oversized.yaml")
    assert result.returncode != 0
    assert "--mem 100000000" in result.output
    assert re.search(r"Memory specification can not be satisfied|Requested node configuration is not available",
                     result.output)
    assert (project / "results" / "default" / "curated" / "mbeir" / "summary.json").exists()


@pytest.mark.slow
def test_gpu_launcher_rule_runs_once_holding_all_gpus(finished_slurm_run, slurm_cluster):
    """tasks: 1 with 2 (emulated) GPUs: one SLURM task, the command runs once and sees both GPUs."""
    project, result = finished_slurm_run
    assert (project / "gpu_probe.txt").read_text().split() == ["0,1"]
    [job_id] = [job for job, rule in submitted_jobs(project, result.output).items() if rule == "gpu_probe"]
    [record] = [r for r in slurm_cluster.records(project) if r["JobId"] == job_id]
    assert (record["JobState"], record["ProcCnt"]) == ("COMPLETED", "1")


PROBE_RULES = {
    "default": {"cpus_per_task": 2, "mem_mb": 1000, "runtime": 10, "slurm_partition": "cpu"},
    "pretrain": {"gpus": 4, "gpu_model": "a100", "tasks": 1, "cpus_per_task": 32, "mem_mb": 200000,
                 "slurm_partition": "gpu", "slurm_account": "proj", "constraint": "ib", "slurm_extra": "--qos=long"},
    "embed": {"gpus": 1},
    "shard": {"tasks": 4, "nodes": 2},
    "judge": {"gpus": 2, "tasks": 2},
}
PROBE_SNAKEFILE = '''import json


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"


def translated(name):
    try:
        return rule_resources(name)
    except ValueError as error:
        return {"error": str(error)}


print("RULE_RESOURCES=" + json.dumps({n: translated(n) for n in [*config["resources_per_rule"], "unknown"]}))
'''


@pytest.fixture(scope="module")
def translated(tmp_path_factory):
    """rule_resources() for PROBE_RULES, evaluated by Snakemake itself from workflow/rules/common.smk."""
    project = slurm_project(tmp_path_factory.mktemp("probe"), PROBE_RULES, overrides=[SIZES])
    (project / "Snakefile.probe").write_text(PROBE_SNAKEFILE)
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", "Snakefile.probe", "--list-rules"],
                            cwd=project, capture_output=True, text=True, timeout=300)
    found = re.search(r"^RULE_RESOURCES=(.+)$", result.stdout, re.M)
    assert found, result.stdout + result.stderr
    return json.loads(found.group(1))


def test_rule_entry_updates_the_default(translated):
    assert translated["embed"]["cpus_per_task"] == 2 and translated["embed"]["slurm_partition"] == "cpu"
    assert translated["shard"] == {"cpus_per_task": 2, "mem_mb": 1000, "runtime": 10, "slurm_partition": "cpu",
                                   "tasks": 4, "nodes": 2}


def test_unknown_rule_falls_back_to_default(translated):
    assert translated["unknown"] == translated["default"] == {"cpus_per_task": 2, "mem_mb": 1000, "runtime": 10,
                                                             "slurm_partition": "cpu"}


def test_gpus_become_one_task_holding_a_gres(translated):
    assert translated["pretrain"] == {
        "cpus_per_task": 32, "mem_mb": 200000, "runtime": 10, "slurm_partition": "gpu", "slurm_account": "proj",
        "constraint": "ib", "slurm_extra": "--qos=long", "gres": "gpu:a100:4", "tasks_per_gpu": 0}
    assert translated["embed"]["gres"] == "gpu:1" and translated["embed"]["tasks_per_gpu"] == 0
    assert all("gpu" not in r and not {"gres", "tasks"} <= set(r) for r in translated.values())


def test_gpu_rule_with_several_tasks_is_refused(translated):
    assert "judge" in translated["judge"]["error"] and "tasks=2" in translated["judge"]["error"]


def test_schema_rejects_a_typo_in_a_resource_key():
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    validate(cfg, SCHEMA)
    cfg["resources_per_rule"]["pretrain"] = {"gpu": 2}
    with pytest.raises(WorkflowError, match="'gpu' was unexpected"):
        validate(cfg, SCHEMA)
    cfg["resources_per_rule"]["pretrain"] = {"gpus": 2, "runtime": "2h"}
    with pytest.raises(WorkflowError, match="is not of type 'integer'"):
        validate(cfg, SCHEMA)


def _seconds(record: dict) -> float:
    return (datetime.fromisoformat(record["EndTime"]) - datetime.fromisoformat(record["StartTime"])).total_seconds()


@pytest.mark.slow
def test_the_judge_in_three_slurm_parts_one_requeued_gathers_to_the_one_job_scores(finished_slurm_run, slurm_cluster,
                                                                                    tmp_path):
    """recipe.judge.parts = 3 through profiles/slurm: three judge_part jobs (part 1 requeued by SLURM mid-run, as
    preemption does, resuming from its shards) and the gather write the one-job run's judge_scores.parquet byte
    for byte. Prints the wall time of the 3 parts + gather against the one job's (2 cores: they share them)."""
    project = copy_of(finished_slurm_run[0], tmp_path)
    target = "results/default/mining/judge_scores.parquet"
    baseline = (project / target).read_bytes()
    [one_job] = [r for r in slurm_cluster.records(finished_slurm_run[0])
                 if submitted_jobs(finished_slurm_run[0], finished_slurm_run[1].output).get(r["JobId"]) == "judge"]
    config = yaml.safe_load((project / "config" / "config.yaml").read_text())
    config["hydra_overrides"].append("recipe.judge.parts=3")
    (project / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    # the copied one-job run's shards have the parts' key: they would resume every one (tests/judge/test_parts.py)
    shard_dir = project / "results" / "default" / "checkpoints" / "judge_shards"
    [one_job_run] = [d for d in shard_dir.iterdir() if d.is_dir() and (d / "FINISHED").is_file()]
    start, stop = part_range(len(list(one_job_run.glob("shard-*.parquet"))), 1, 3)
    shutil.rmtree(shard_dir)
    part_one = [f"shard-{index:05d}.parquet" for index in range(start, stop)]
    output_path, job_id = tmp_path / "snakemake.out", None
    with output_path.open("w") as output:
        proc = subprocess.Popen(snakemake_command(target), cwd=project, env=slurm_cluster.env, stdout=output,
                                stderr=subprocess.STDOUT)
        try:
            wait_for("part 1's first shard", lambda: [p for p in shard_dir.glob("*/shard-*.parquet") if p.name in part_one],
                     proc, 240, interval=0.05)
            rows = subprocess.run(["squeue", "-h", "--states=all", "-o", "%i|%k|%Z"], env=slurm_cluster.env,
                                  capture_output=True, text=True, check=True).stdout.split()
            [job_id] = [job for job, comment, workdir in (row.split("|") for row in rows)
                        if comment == "rule_judge_part_wildcards_1" and workdir == str(project)]
            subprocess.run(["scontrol", "requeue", job_id], env=slurm_cluster.env, check=True, timeout=30)
            assert not (project / "results/default/mining/judge_parts/part-1-of-3.parquet").exists(), \
                "part 1 finished before the requeue: give it more shards"
            returncode = proc.wait(timeout=600)
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=60)
    out = output_path.read_text()
    assert returncode == 0, out[-4000:]
    assert planned_jobs(out) == {"judge_part": 3, "judge": 1}
    submitted = submitted_jobs(project, out)
    assert sorted(submitted.values()) == ["judge", "judge_part", "judge_part", "judge_part"], submitted
    records = [r for r in slurm_cluster.records(project) if r["JobId"] in submitted]
    requeued = [r for r in records if r["JobId"] == job_id]
    assert [r["JobState"] for r in requeued][-1] == "COMPLETED" and len(requeued) == 2, requeued
    log = (project / "results/default/logs/judge_part1.log").read_text()
    resumed = re.search(r"judge: \d+ pairs in (\d+) shards \((\d+) resumed", log)
    assert resumed and int(resumed.group(2)) >= 1, log[-3000:]
    assert (project / target).read_bytes() == baseline
    finished = [r for r in records if r["JobState"] == "COMPLETED"]
    span = (max(datetime.fromisoformat(r["EndTime"]) for r in finished)
            - min(datetime.fromisoformat(r["StartTime"]) for r in records)).total_seconds()
    print(f"SLURM judge wall time: 1 job {_seconds(one_job):.0f} s; 3 parts + gather {span:.0f} s "
          f"(ratio {span / max(_seconds(one_job), 1):.2f}; part 1 requeued after {resumed.group(2)} of "
          f"{resumed.group(1)} shards)")
