"""The judge and filter stages under failure (UniME-V2 mining -> MLLM-as-a-judge -> hard-negative filter):
a killed judge resumes, a finished one rescored on rerun, a changed backend or new weights never reuse
old scores, a dead judge fails both stages, and the server's API key stays out of every log and file."""
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest

from uniembed.artifacts import write_manifest
from uniembed.config import compose_config, hydra_quote
from uniembed.judge.pairs import build_judge_pairs
from uniembed.mine.schemas import JUDGE_SCORES
from uniembed.stages import filter as filter_stage
from uniembed.stages import judge as judge_stage

from ..judge import mined_table
from ..judge.fake_http import JSONHandler, serving
from ..judge.test_server_access import FAKE_SERVE

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-uniembed-judge-0f3a9"
COMPLETION = {"choices": [{"logprobs": {"content": [{"token": "Yes", "logprob": -0.2, "top_logprobs": [
    {"token": "Yes", "logprob": -0.2}, {"token": "No", "logprob": -1.7}]}]}}]}


class _Judge(JSONHandler):
    """An OpenAI-compatible judge: ``delay`` s per request, the first ``fail_first`` requests (or all, ``dead``) 503."""

    state = SimpleNamespace()
    lock = threading.Lock()

    def do_POST(self):
        self.read_body()
        with self.lock:
            self.state.hits += 1
            self.state.authorizations.add(self.headers.get("Authorization"))
            fail = self.state.dead or self.state.hits <= self.state.fail_first
        time.sleep(self.state.delay)
        body, code = (b'{"error": "engine dead"}', 503) if fail else (json.dumps(COMPLETION).encode(), 200)
        self.send_json(code, body)


@pytest.fixture()
def server():
    _Judge.state = SimpleNamespace(hits=0, authorizations=set(), delay=0.0, fail_first=0, dead=False)
    with serving(_Judge) as url:
        yield SimpleNamespace(url=url, state=_Judge.state)


@pytest.fixture()
def world(small_world, tiny_qwen2vl, tmp_path, monkeypatch):
    """Six mined train queries, a private copy of the judge weights, and the stage's directories."""
    monkeypatch.delenv("UNIEMBED_OVERRIDES", raising=False)
    monkeypatch.delenv("UNIEMBED_JUDGE_API_KEY", raising=False)
    curated = small_world["curated"]["mbeir"]
    qids = [r["query_id"] for r in pq.read_table(curated / "queries.parquet").to_pylist() if r["split"] == "train"][:6]
    out = tmp_path / "mining"
    out.mkdir()
    mined = mined_table(curated, qids, per_query=4)
    pq.write_table(mined, out / "mined.parquet")
    pairs = build_judge_pairs(curated / "queries.parquet", curated / "candidates.parquet", mined)
    model = tmp_path / "judge-model"
    shutil.copytree(tiny_qwen2vl, model)
    return SimpleNamespace(curated=curated.parent, out=out, shards=tmp_path / "shards", model=model,
                           n=len(pairs), scores=out / "judge_scores.parquet", root=tmp_path)


def overrides(w, backend="vllm_server", url=None, *extra):
    return ["stage.progress=false", "recipe.device=cpu", "recipe.judge.max_queries=null",
            "recipe.judge.queries_per_shard=1", f"recipe.judge.model={hydra_quote(w.model)}",
            f"recipe.judge.backend={backend}", f"recipe.judge.server.url={hydra_quote(url) if url else 'null'}",
            "recipe.judge.server.concurrency=1", "recipe.judge.server.retries=0", "recipe.judge.server.timeout=10",
            *extra]


def argv(w, backend="vllm_server", url=None, *extra):
    """The judge stage's command line, as the workflow writes it (paths through ``--stage``)."""
    return ["--config-dir", str(ROOT / "config"), "--stage", "curated_dir", str(w.curated),
            "--stage", "out_dir", str(w.out), "--stage", "checkpoint_dir", str(w.shards),
            *overrides(w, backend, url, *extra)]


def run_dirs(w):
    return sorted(p for p in w.shards.iterdir() if p.is_dir()) if w.shards.is_dir() else []


def flip_middle_byte(model):
    weights = sorted(model.glob("*.safetensors"))[0]
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))


def files_holding(root, secret):
    return [p for p in Path(root).rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_a_changed_backend_or_new_weights_never_reuse_old_scores(world, server, monkeypatch):
    from uniembed.judge.transformers_backend import TransformersJudge

    class Preempted(Exception):
        pass

    score, calls = TransformersJudge.score, []

    def preempted_after_one_shard(self, pairs):
        if calls:
            raise Preempted("SIGTERM")
        calls.append(len(pairs))
        return score(self, pairs)

    with monkeypatch.context() as patch:
        patch.setattr(TransformersJudge, "score", preempted_after_one_shard)
        with pytest.raises(Preempted):
            judge_stage.main(argv(world, "transformers"))
    assert calls == [len(pq.read_table(next(world.shards.rglob("shard-*.parquet"))))]
    judge_stage.main(argv(world, "vllm_server", server.url))  # same weights and path, another backend
    assert server.state.hits == world.n

    server.state.hits, server.state.fail_first = 0, 3
    with pytest.raises(SystemExit, match=r"3 of \d+ judge pairs failed .*HTTP 503: 3"):
        judge_stage.main(argv(world, "vllm_server", server.url))
    original = sorted(world.model.glob("*.safetensors"))[0].read_bytes()
    flip_middle_byte(world.model)  # new weights at the same path, saved with their own manifest
    write_manifest(world.model)
    server.state.hits = server.state.fail_first = 0
    judge_stage.main(argv(world, "vllm_server", server.url))
    assert server.state.hits == world.n
    sorted(world.model.glob("*.safetensors"))[0].write_bytes(original)
    write_manifest(world.model)
    server.state.hits = 0
    judge_stage.main(argv(world, "vllm_server", server.url))  # the old weights: their unfinished run resumes
    assert server.state.hits == 3


def test_a_killed_judge_resumes_and_a_forced_rerun_scores_again(world, server, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    server.state.delay = 0.15
    log = world.root / "judge.log"
    env = {**os.environ, "UNIEMBED_JUDGE_API_KEY": KEY}
    with open(log, "wb") as handle:
        proc = subprocess.Popen([sys.executable, "-m", "uniembed.stages.judge", *argv(world, "vllm_server",
                                                                                    server.url)],
                                cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while len(list(world.shards.rglob("shard-*.parquet"))) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)  # preemption: no cleanup runs
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL and not world.scores.exists()
    run = next(world.shards.rglob("shard-*.parquet")).parent
    done = sum(pq.read_metadata(p).num_rows for p in run.glob("shard-*.parquet"))
    orphan = run / ".shard-00005.parquet.k1ll3d.tmp"
    orphan.write_bytes(b"half a shard")

    monkeypatch.setenv("UNIEMBED_JUDGE_API_KEY", KEY)
    server.state.delay, server.state.hits = 0.0, 0
    judge_stage.main(argv(world, "vllm_server", server.url))
    assert server.state.hits == world.n - done and 0 < done < world.n and not orphan.exists()
    table = pq.read_table(world.scores)
    assert table.num_rows == world.n and set(table["status"].to_pylist()) == {"ok"}
    assert run_dirs(world) == [run] and (run / "FINISHED").is_file()

    world.scores.unlink()  # snakemake --forcerun judge: output deleted, job rerun
    server.state.hits = 0
    judge_stage.main(argv(world, "vllm_server", server.url))
    assert server.state.hits == world.n and pq.read_table(world.scores).equals(table)

    assert server.state.authorizations == {f"Bearer {KEY}"}
    assert KEY not in log.read_text() and KEY not in caplog.text and "UNIEMBED_JUDGE_API_KEY" in caplog.text
    assert files_holding(world.root, KEY) == []
    assert "(vllm_server)" in log.read_text()  # the log names the backend that scored


def test_a_started_server_gets_the_key_binds_localhost_and_runs_no_remote_code(world, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    script = world.root / "fake_vllm_serve.py"
    script.write_text(FAKE_SERVE)
    monkeypatch.setenv("MY_JUDGE_KEY", KEY)
    command = f"[{hydra_quote(sys.executable)},{hydra_quote(script)}]"
    judge_stage.main(argv(world, "vllm_server", None, f"recipe.judge.server.command={command}",
                          "recipe.judge.server.api_key_env=MY_JUDGE_KEY"))
    table = pq.read_table(world.scores)
    assert table.num_rows == world.n and set(table["status"].to_pylist()) == {"ok"}  # the server required the key
    served = json.loads((world.shards / "vllm-serve.log").read_text().split("argv ", 1)[1].splitlines()[0])
    assert served[served.index("--host") + 1] == "127.0.0.1" and "--trust-remote-code" not in served
    assert KEY not in caplog.text and "MY_JUDGE_KEY" in caplog.text and files_holding(world.root, KEY) == []


def test_a_dead_judge_fails_the_judge_and_the_filter(world, server):
    server.state.dead = True
    result = subprocess.run([sys.executable, "-m", "uniembed.stages.judge", *argv(world, "vllm_server", server.url)],
                            cwd=ROOT, env={k: v for k, v in os.environ.items() if k != "UNIEMBED_OVERRIDES"},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    assert f"{world.n} of {world.n} judge pairs failed (fraction 1.0000)" in result.stderr
    assert f"recipe.judge.max_failed_fraction = 0.01; errors by kind: HTTP 503: {world.n}" in result.stderr
    (run,) = run_dirs(world)
    assert not world.scores.exists() and len(list(run.glob("shard-*.parquet"))) == 6  # kept for the rerun
    assert not (run / "FINISHED").exists()

    dead = pq.read_table(sorted(run.glob("shard-*.parquet"))[0]).replace_schema_metadata(None)
    pq.write_table(dead.cast(JUDGE_SCORES), world.scores)  # a dead judge's table, however it got there
    cfg = compose_config(overrides(world) + ["stage.name=unime_v2", f"stage.curated_dir={hydra_quote(world.curated)}",
                                             f"stage.mining_dir={hydra_quote(world.out)}",
                                             f"stage.out_dir={hydra_quote(world.out)}"], ROOT / "config")
    n = dead.num_rows
    with pytest.raises(SystemExit, match=rf"{world.scores}: {n} of {n} judge pairs failed \(fraction 1.0000\), "
                                         r"above recipe.judge.max_failed_fraction = 0.01"):
        filter_stage.run(cfg)
    assert not (world.out / "hard_negatives.parquet").exists()

    server.state.dead, server.state.hits = False, 0
    judge_stage.main(argv(world, "vllm_server", server.url))  # the rerun retries every failed pair
    assert server.state.hits == world.n
    summary = filter_stage.run(cfg)
    assert summary["judge_failures"] == {"pairs": world.n, "failed": 0, "fraction": 0.0, "by_kind": {}}


def test_a_recipe_without_a_judge_filters_on_similarity(world):
    """U-MARVEL's recipe has no judge section: the DAG plans mine -> filter, and filter reads no judge scores."""
    cfg = compose_config(["recipe=umarvel_qwen2vl_7b", "recipe.filters.umarvel.params.threshold=0.975",  # keeps ranks 3, 4
                          "stage.name=umarvel", f"stage.curated_dir={hydra_quote(world.curated)}",
                          f"stage.mining_dir={hydra_quote(world.out)}", f"stage.out_dir={hydra_quote(world.out)}"],
                         ROOT / "config")
    assert "judge" not in cfg.recipe and cfg.recipe.filters.umarvel.params.score_column == "similarity"
    summary = filter_stage.run(cfg)
    negatives = pq.read_table(world.out / "hard_negatives.parquet")
    assert summary["queries_in"] == 6 and "judge_failures" not in summary and not world.scores.exists()
    assert all(len(ids) == 2 for ids in negatives["negative_ids"].to_pylist())
