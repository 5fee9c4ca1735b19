"""The ``judge`` rule under Snakemake with a real vLLM server: started for the job and stopped after it,
bound to 127.0.0.1, requiring the API key, running no remote code; killed mid-run, a rerun scores only
what is missing and gives the same table as an uninterrupted run."""
import hashlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest
import requests

from tests.workflow.dag import SNAKEMAKE, snakemake

from .conftest import KEY, SERVER_MODULE, SHARDS, TARGET, _tail, judge_command, server_project

pytestmark = pytest.mark.vllm
TOLERANCE = 1e-5


def servers_of(project: Path) -> list[psutil.Process]:
    """Live vLLM API servers started in ``project`` (the judge stage runs there)."""
    found = []
    for process in psutil.process_iter(["cmdline", "cwd"]):
        cmdline = process.info["cmdline"] or []
        if SERVER_MODULE in cmdline and process.info["cwd"] == str(project):
            found.append(process)
    return found


def files_holding(root: Path, secret: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_the_rule_starts_the_server_for_the_job_and_stops_it(server_run):
    project, table = server_run.project, server_run.table
    assert set(table["status"].to_pylist()) == {"ok"}
    log = (project / SHARDS / "vllm-serve.log").read_text(errors="replace")
    assert "Application startup complete" in log, log[-2000:]
    assert "Shutting down" in log, log[-2000:]  # SIGTERM at the end of the job, not a crash
    assert not servers_of(project), "the judge server outlived its job"
    judge_log = (project / "results/default/logs/judge.log").read_text()
    assert "(vllm_server)" in judge_log and "0 failed" in judge_log
    assert not files_holding(project, KEY), "the API key was written to a file"


def _start(project: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "UNIEMBED_JUDGE_API_KEY": KEY,
           "PATH": f"{Path(SNAKEMAKE[0]).parent}{os.pathsep}{os.environ['PATH']}"}
    with open(log, "w") as handle:
        return subprocess.Popen([*SNAKEMAKE, *judge_command()], cwd=project, stdout=handle,
                                stderr=subprocess.STDOUT, env=env)


def _wait(condition, timeout: float, what: str, process: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        assert process.poll() is None, f"snakemake exited while waiting for {what}:{_tail(log)}"
        time.sleep(0.02)
    raise AssertionError(f"no {what} after {timeout} s:{_tail(log)}")


def _port(server: psutil.Process) -> int:
    cmdline = server.cmdline()
    return int(cmdline[cmdline.index("--port") + 1])


def _healthy(server: psutil.Process) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{_port(server)}/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def check_access(server: psutil.Process) -> None:
    """Bound to 127.0.0.1 only, the key required (and passed by environment), no remote code."""
    cmdline, port = server.cmdline(), _port(server)
    listening = {c.laddr.ip for c in server.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
    assert listening == {"127.0.0.1"}, listening
    base = f"http://127.0.0.1:{port}"
    assert requests.get(base + "/v1/models", timeout=10).status_code == 401
    assert requests.post(base + "/v1/chat/completions", json={}, timeout=10).status_code == 401
    assert requests.get(base + "/v1/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=10).status_code == 200
    assert "--trust-remote-code" not in cmdline and "--api-key" not in cmdline and KEY not in " ".join(cmdline)
    assert server.environ().get("VLLM_API_KEY") == KEY


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_server_killed_mid_run_resumes_to_the_same_table(judge_world, judge_model, server_run, tmp_path):
    # slower (2 requests in flight) so that the kill lands mid-run; no retries against a dead server
    project = server_project(tmp_path / "project", judge_world, judge_model, retries=0, concurrency=2)
    log = tmp_path / "snakemake.log"
    run = _start(project, log)
    shards = project / SHARDS
    try:
        server = _wait(lambda: servers_of(project), 600, "judge server", run, log)[0]
        _wait(lambda: _healthy(server), 600, "healthy judge server", run, log)
        check_access(server)
        _wait(lambda: list(shards.glob("*/shard-*.parquet")), 600, "finished shard", run, log)
        os.killpg(os.getpgid(server.pid), signal.SIGKILL)  # the server and its engine processes
        assert run.wait(timeout=600) != 0, "the judge did not fail after its server was killed"
    finally:
        if run.poll() is None:
            run.kill()
    judge_log = (project / "results/default/logs/judge.log").read_text()
    assert re.search(rf"\d+ of {len(judge_world.pairs)} judge pairs failed", judge_log), judge_log[-2000:]
    assert not (project / TARGET).exists()
    before = {p.name: (_digest(p), pq.read_table(p)["status"].to_pylist()) for p in shards.glob("*/shard-*.parquet")}
    complete = {name for name, (_, status) in before.items() if set(status) == {"ok"}}
    failed_rows = sum(status.count("failed") for _, status in before.values())
    assert 0 < len(complete) < judge_world.queries and failed_rows > 0, (len(complete), failed_rows)

    result = snakemake(project, *judge_command(), timeout=900)
    assert result.returncode == 0, result.output[-3000:]
    judge_log = (project / "results/default/logs/judge.log").read_text()
    assert f"({len(before)} resumed, {failed_rows} failed rows retried)" in judge_log, judge_log[-2000:]
    after = {p.name: _digest(p) for p in shards.glob("*/shard-*.parquet")}
    assert all(after[name] == before[name][0] for name in complete), "a finished shard was scored again"
    assert len(after) == judge_world.queries and not servers_of(project)

    resumed, reference = pq.read_table(project / TARGET), server_run.table
    for column in ("query_id", "candidate_id", "is_positive", "rank", "status", "judge_model", "prompt_hash"):
        assert resumed[column].to_pylist() == reference[column].to_pylist(), column
    difference = max(abs(a - b) for a, b in zip(resumed["score"].to_pylist(), reference["score"].to_pylist()))
    print(f"\nkilled after {len(complete)} of {judge_world.queries} shards; {failed_rows} failed rows retried; "
          f"max |score difference| vs the uninterrupted run {difference:.2e}")
    assert difference <= TOLERANCE
    assert not files_holding(project, KEY)
