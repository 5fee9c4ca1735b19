"""Stage ``judge``: UniME-V2's MLLM-as-a-judge scores for every mined candidate and positive.

    python -m uniembed.stages.judge [--config-dir config] stage.curated_dir=DIR stage.out_dir=DIR \\
        stage.checkpoint_dir=SHARDS

Reads ``out_dir/mined.parquet``, builds the (query, candidate) pairs (candidates with missing
images fail up front), scores them with ``recipe.judge.backend`` — transformers (any machine),
a vLLM offline engine, or a vLLM OpenAI-compatible server (a given URL, or a ``vllm serve``
started for the job's lifetime) — shard by shard into ``stage.checkpoint_dir`` (a rerun skips
finished shards and retries failed pairs), and writes ``judge_scores.parquet``.
"""
from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..artifacts import read_parquet
from ..config import stage_config
from ..judge.pairs import build_judge_pairs
from ..judge.scoring import score_pairs
from ..mine.schemas import MINED
from .common import require

log = logging.getLogger("uniembed.judge")


def subset_queries(mined, max_queries: int | None, seed: int):
    """A seeded subset of the mined queries (all when ``max_queries`` is None)."""
    ids = sorted(set(mined["query_id"].to_pylist()))
    if max_queries is None or max_queries >= len(ids):
        return mined
    keep = np.random.default_rng(seed).choice(len(ids), size=max_queries, replace=False)
    return mined.filter(pc.is_in(mined["query_id"], value_set=pa.array([ids[i] for i in sorted(keep)], type=pa.string())))


@contextlib.contextmanager
def open_backend(j, model: str, device: str):
    """The configured judge backend (a started server is stopped when the block ends)."""
    if j.backend == "transformers":
        from ..judge.transformers_backend import TransformersJudge
        yield TransformersJudge(model, batch_size=j.batch_size, device=device)
    elif j.backend == "vllm_offline":
        from ..judge.vllm_backend import VllmOfflineJudge
        yield VllmOfflineJudge(model, top_logprobs=j.top_logprobs)
    elif j.backend == "vllm_server":
        from ..judge.vllm_client import VllmClientJudge, VllmServer
        client = dict(concurrency=j.server.concurrency, timeout=j.server.timeout, retries=j.server.retries,
                      top_logprobs=j.top_logprobs, model_id=model)
        if j.server.url:
            yield VllmClientJudge(j.server.url, model, **client)
        else:
            with VllmServer(model, extra_args=list(j.server.extra_args), top_logprobs=j.top_logprobs) as server:
                yield VllmClientJudge(server.base_url, model, **client)
    else:
        raise SystemExit(f"recipe.judge.backend must be transformers, vllm_offline or vllm_server; got {j.backend!r}")


def run(cfg):
    s, j = cfg.stage, cfg.recipe.judge
    require(s, "curated_dir", "out_dir", "checkpoint_dir")
    out = Path(s.out_dir)
    cdir = Path(s.curated_dir) / cfg.recipe.mine.source
    mined = subset_queries(read_parquet(out / "mined.parquet", MINED), j.max_queries, j.seed)
    pairs = build_judge_pairs(cdir / "queries.parquet", cdir / "candidates.parquet", mined)
    model = j.model or cfg.model.path
    log.info("judging %d pairs of %d queries with %s (%s)", len(pairs), len(set(mined["query_id"].to_pylist())),
             model, j.backend)
    with open_backend(j, model, cfg.recipe.device) as backend:
        table = score_pairs(pairs, backend, out / "judge_scores.parquet", s.checkpoint_dir,
                            queries_per_shard=j.queries_per_shard, progress=s.progress)
    failed = int(pc.sum(pc.equal(table["status"], "failed")).as_py() or 0)
    log.info("judged %d pairs (%d failed) -> %s", table.num_rows, failed, out / "judge_scores.parquet")
    return table


def main(argv=None) -> None:
    run(stage_config(argv, __doc__))


if __name__ == "__main__":
    main(sys.argv[1:])
