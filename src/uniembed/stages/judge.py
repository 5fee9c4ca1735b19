"""Stage ``judge``: UniME-V2's MLLM-as-a-judge scores for every mined candidate and positive.

    python -m uniembed.stages.judge [--config-dir config] stage.curated_dir=DIR stage.out_dir=DIR \\
        stage.checkpoint_dir=SHARDS

Reads ``out_dir/mined.parquet`` (or ``stage.mined``), builds the (query, candidate) pairs (candidates with missing
images fail up front), scores them with ``recipe.judge.backend`` — transformers (any machine),
a vLLM offline engine, or a vLLM OpenAI-compatible server (a given URL, or a ``vllm serve``
started for the job's lifetime), or, for studies on the synthetic world only, ``simulated`` (the
world's truth plus noise of the ROC-AUC ``recipe.judge.simulated.auc``, :mod:`uniembed.judge.simulated`)
— shard by shard into ``stage.checkpoint_dir/<resume key>/`` (a
rerun of a killed job skips finished shards and retries failed pairs; a rerun of a finished one,
e.g. ``--forcerun judge``, scores again), and writes ``judge_scores.parquet``. More failed pairs
than ``recipe.judge.max_failed_fraction`` is an error (exit 1, counts by error kind; no output).
With ``recipe.judge.parts`` N > 1 the workflow runs N part jobs (``stage.part`` P of ``stage.parts`` N, each
scoring its own shards into the run's ``checkpoint_dir/<resume key>/``, where any N, or one job, resumes them, and
writing its own ``stage.part_dir/part-P-of-N.parquet``) and one gather (no ``stage.part``) that verifies and
concatenates them (:mod:`uniembed.judge.parts`).
A server's API key is read from the environment variable ``recipe.judge.server.api_key_env``.
``recipe.judge.engine`` sets the vLLM engine (dtype, max_model_len, tensor_parallel_size,
gpu_memory_utilization, enforce_eager, cpu_kvcache_space; :mod:`uniembed.judge.engine`) of both vLLM
backends. vLLM spawns its engine in a new process, which imports this module again: the
``__main__`` guard at the bottom keeps that import from running the stage a second time.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from omegaconf import OmegaConf

from ..artifacts import read_parquet, verify_artifact, write_parquet
from ..config import stage_config
from ..data.loader import LoaderSettings
from ..judge.failures import DEFAULT_MAX_FAILED_FRACTION, JudgeFailureError, check_failures, check_limit
from ..judge.pairs import build_judge_pairs
from ..judge.parts import gather, part_pairs, part_path, write_part
from ..judge.scoring import score_pairs
from ..mine.schemas import JUDGE_SCORES, MINED
from .common import loader_settings, require

log = logging.getLogger("uniembed.judge")
DEFAULT_API_KEY_ENV = "UNIEMBED_JUDGE_API_KEY"


def api_key(j) -> str | None:
    """The server API key from the environment variable ``recipe.judge.server.api_key_env`` (None: no key)."""
    name = OmegaConf.select(j, "server.api_key_env", default=DEFAULT_API_KEY_ENV)
    key = os.environ.get(name) if name else None
    log.info("judge server API key: %s", f"from ${name}" if key else f"none (${name} unset)" if name else "none")
    return key or None


def subset_queries(mined, max_queries: int | None, seed: int):
    """A seeded subset of the mined queries (all when ``max_queries`` is None)."""
    ids = sorted(set(mined["query_id"].to_pylist()))
    if max_queries is None or max_queries >= len(ids):
        return mined
    keep = np.random.default_rng(seed).choice(len(ids), size=max_queries, replace=False)
    return mined.filter(pc.is_in(mined["query_id"], value_set=pa.array([ids[i] for i in sorted(keep)], type=pa.string())))


def simulated_judge(j, data_root: str | None):
    """The study-only judge (:mod:`uniembed.judge.simulated`) over the generated world's truth under ``data_root``
    (the judge stage's; a reranker's scoring has no truth to read)."""
    from ..evaluate.judge_quality import read_truth
    from ..judge.simulated import SimulatedJudge

    if data_root is None:
        raise SystemExit("the simulated backend scores the judge stage's pairs only (recipe.judge.backend)")
    path = Path(data_root) / "truth" / "mbeir_truth.parquet"   # written by uniembed.data.synthetic.generate
    if j.get("simulated") is None or not path.is_file():
        raise SystemExit(f"recipe.judge.backend = simulated needs recipe.judge.simulated {{auc, seed}} and the world's "
                         f"truth at {path} (the synthetic world only)")
    return SimulatedJudge(read_truth(path), j.simulated.auc, j.simulated.get("seed", 0),
                          truth_digest=hashlib.sha256(path.read_bytes()).hexdigest())


@contextlib.contextmanager
def open_backend(j, model: str, device: str, server_log: Path | None = None, max_images: int = 2,
                 data_root: str | None = None, loader: LoaderSettings = LoaderSettings()):
    """The configured judge backend (a started server is stopped when the block ends); vLLM engines accept
    up to ``max_images`` images per prompt (a pair: 2; a listwise prompt: its candidates + the query).
    A local ``model`` directory with an artifact manifest is verified before any backend reads it;
    ``simulated`` reads the world's truth under ``data_root`` instead of a model. ``loader`` (``recipe.loader``) sets
    the transformers backend's input workers."""
    if j.backend == "simulated":
        yield simulated_judge(j, data_root)
        return
    if Path(model).is_dir():
        verify_artifact(model)
    trust_remote_code = bool(OmegaConf.select(j, "trust_remote_code", default=False))
    engine = OmegaConf.select(j, "engine", default=None)
    if j.backend in ("vllm_offline", "vllm_server"):
        from ..judge.engine import engine_settings
        engine = engine_settings(OmegaConf.to_container(engine, resolve=True) if engine is not None else None)
    if j.backend == "transformers":
        from ..judge.transformers_backend import TransformersJudge
        yield TransformersJudge(model, batch_size=j.batch_size, device=device, loader=loader)
    elif j.backend == "vllm_offline":
        from ..judge.engine import engine_env, llm_kwargs
        from ..judge.vllm_backend import VllmOfflineJudge
        yield VllmOfflineJudge(model, top_logprobs=j.top_logprobs, trust_remote_code=trust_remote_code,
                               max_images_per_prompt=max_images, engine_env=engine_env(engine), **llm_kwargs(engine))
    elif j.backend == "vllm_server":
        from ..judge.vllm_client import VllmClientJudge, VllmServer
        key = api_key(j)
        client = dict(concurrency=j.server.concurrency, timeout=j.server.timeout, retries=j.server.retries,
                      top_logprobs=j.top_logprobs, model_id=model, api_key=key)
        if j.server.url:
            yield VllmClientJudge(j.server.url, model, **client)
        else:
            command = OmegaConf.select(j, "server.command", default=None)
            with VllmServer(model, extra_args=list(j.server.extra_args), top_logprobs=j.top_logprobs,
                            host=OmegaConf.select(j, "server.host", default="127.0.0.1"), api_key=key,
                            trust_remote_code=trust_remote_code, log_path=server_log, max_images_per_prompt=max_images,
                            command=list(command) if command else None, engine=engine) as server:
                yield VllmClientJudge(server.base_url, model, server_settings=server.settings, **client)
    else:
        raise SystemExit(f"recipe.judge.backend must be transformers, vllm_offline, vllm_server or simulated; "
                         f"got {j.backend!r}")


def run(cfg):
    """Score every pair (``stage.parts`` 1 or unset); score part ``stage.part`` of ``stage.parts`` into
    ``stage.part_dir``; or, with ``stage.parts`` > 1 and no part, gather the parts from ``stage.part_dir``."""
    s, j = cfg.stage, cfg.recipe.judge
    require(s, "curated_dir", "out_dir", "checkpoint_dir")
    out = Path(s.out_dir)
    cdir = Path(s.curated_dir) / cfg.recipe.mine.source
    limit = check_limit(OmegaConf.select(j, "max_failed_fraction", default=DEFAULT_MAX_FAILED_FRACTION))
    mined_path = Path(s.mined) if s.get("mined") else out / "mined.parquet"
    mined = subset_queries(read_parquet(mined_path, MINED), j.max_queries, j.seed)
    pairs = build_judge_pairs(cdir / "queries.parquet", cdir / "candidates.parquet", mined)
    parts, part = int(s.get("parts") or 1), s.get("part")
    if parts > 1:
        require(s, "part_dir")
    model = "simulated" if j.backend == "simulated" else j.model or cfg.judge_model.path

    def scorer(log_dir: Path):
        return open_backend(j, model, cfg.recipe.device, log_dir / "vllm-serve.log", data_root=cfg.data.root,
                            loader=loader_settings(cfg))
    try:
        table, target = score_in_parts(pairs, scorer, out / "judge_scores.parquet", s.checkpoint_dir,
                                       queries_per_shard=j.queries_per_shard, limit=limit, progress=s.progress,
                                       part=part, parts=parts, part_dir=s.part_dir, what="judge",
                                       using=f"{model} ({j.backend})")
    except JudgeFailureError as error:
        log.error("%s", error)
        raise SystemExit(f"judge failed: {error}") from error
    failed = int(pc.sum(pc.equal(table["status"], "failed")).as_py() or 0)
    log.info("judged %d pairs (%d failed) -> %s", table.num_rows, failed, target)
    return table


def score_in_parts(pairs, scorer, target: Path, checkpoint_dir, *, queries_per_shard: int, limit: float,
                   progress: bool, part, parts: int, part_dir, what: str, using: str) -> tuple[pa.Table, Path]:
    """(scores of ``pairs``, where they went): scored by one job into ``target`` (``parts`` 1), part ``part`` of
    ``parts`` scored into ``part_dir`` (:mod:`uniembed.judge.parts`), or, with ``parts`` > 1 and no part, the parts
    gathered into ``target``. ``scorer(log_dir)`` opens the backend (``using`` names it in the log; a server logs
    into ``log_dir``: a part's own ``part-P-of-N/``). Shards resume from ``checkpoint_dir``, keyed by all the pairs:
    every part scores its shards into the one directory (:func:`uniembed.judge.resume.open_run_dir`), so another N
    resumes them. The judge's and the reranker's scoring both run through here."""
    if parts > 1 and part is None:
        table = gather([part_path(part_dir, p, parts) for p in range(parts)], pairs, queries_per_shard, what=what)
        check_failures(table, limit, f"{what} ({part_dir})", "Each part keeps its shards: rerun the part.")
        write_parquet(table, target, JUDGE_SCORES)
        log.info("gathered %d parts, %d pairs -> %s", parts, table.num_rows, target)
        return table, target
    shard_dir, log_dir, plan, shard_range, todo = Path(checkpoint_dir), Path(checkpoint_dir), None, None, pairs
    if parts > 1:
        todo, plan = part_pairs(pairs, queries_per_shard, int(part), parts)
        target, log_dir = part_path(part_dir, int(part), parts), part_path(shard_dir, int(part), parts, suffix="")
        shard_range = tuple(plan["shards"])
        if not todo:   # more parts than shards: this one has none
            write_part(JUDGE_SCORES.empty_table(), target, plan)
            log.info("part %s of %d holds no shard (%d shards in all) -> %s", part, parts, plan["num_shards"], target)
            return JUDGE_SCORES.empty_table(), target
        log_dir.mkdir(parents=True, exist_ok=True)
    log.info("%s: scoring %d pairs of %d queries with %s%s", what, len(todo), len({p.query_id for p in todo}),
             using, f", part {part} of {parts}" if plan else "")
    with scorer(log_dir) as backend:
        table = score_pairs(pairs, backend, target, shard_dir, queries_per_shard=queries_per_shard, progress=progress,
                            max_failed_fraction=limit, part_plan=plan, shard_range=shard_range)
    return table, target


def main(argv=None) -> None:
    run(stage_config(argv, __doc__))


if __name__ == "__main__":
    main(sys.argv[1:])
