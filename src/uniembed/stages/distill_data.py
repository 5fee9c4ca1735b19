"""Stage ``distill_data``: the teacher's table for U-MARVEL's distillation (§3.3, Finding 6).

    python -m uniembed.stages.distill_data --stage model_dir RECALL_MODEL --stage reranker_dir RERANKER \\
        --stage curated_dir DIR --stage cache_dir DIR --stage out_dir DIR --stage checkpoint_dir DIR

Samples ``recipe.distill.fraction`` (paper: 10%) of the ``recipe.mine`` training queries with
``recipe.distill.seed`` (``--stage seed N`` instead: an ablation's repetition); retrieves each one's top ``recipe.distill.candidates`` with the recall model
(the model distillation continues from; ``recipe.mine``'s pool and delta, positives removed);
scores every (query, candidate) and (query, positive) pair with the reranker's P(Yes) through
``recipe.rerank.scoring`` (the judge's backends, resumable shards in ``checkpoint_dir``); fuses
S = alpha * cos + (1 - alpha) * P(Yes) (``recipe.distill.alpha``) and writes
``out_dir/hard_negatives.parquet`` (HARD_NEGATIVES schema, strategy ``distill``, read by the
``distill`` objective) and ``out_dir/distill_summary.json``.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from omegaconf import OmegaConf

from ..artifacts import write_json, write_parquet
from ..config import stage_config
from ..judge.failures import DEFAULT_MAX_FAILED_FRACTION, JudgeFailureError, check_limit
from ..judge.pairs import build_judge_pairs
from ..judge.scoring import score_pairs
from ..mine.schemas import HARD_NEGATIVES
from ..rerank.teacher import sample_queries, teacher_table
from .common import cached_embedder, loader_settings, require
from .judge import open_backend
from .mine import mine_table, split_queries

log = logging.getLogger("uniembed.distill_data")


def positive_cosines(cfg, cached, queries: pa.Table) -> dict[tuple[str, str], float]:
    """cos(query, positive) of every (query, positive) with the recall model's ``cached`` embedder."""
    cdir = Path(cfg.stage.curated_dir) / cfg.recipe.mine.source
    rows = queries.to_pylist()
    embedded = cached(cdir, "queries", [r["query_id"] for r in rows])
    qv = dict(zip(embedded.ids, embedded.embeddings))
    embedded = cached(cdir, "candidates", sorted({p for r in rows for p in r["positive_ids"]}))
    pv = dict(zip(embedded.ids, embedded.embeddings))
    return {(r["query_id"], p): float(np.dot(qv[r["query_id"]], pv[p])) for r in rows for p in r["positive_ids"]}


def run(cfg) -> dict:
    s, d, scoring = cfg.stage, cfg.recipe.distill, cfg.recipe.rerank.scoring
    require(s, "model_dir", "reranker_dir", "curated_dir", "cache_dir", "out_dir", "checkpoint_dir")
    limit = check_limit(OmegaConf.select(scoring, "max_failed_fraction", default=DEFAULT_MAX_FAILED_FRACTION))
    cdir = Path(s.curated_dir) / cfg.recipe.mine.source
    queries = split_queries(cfg)
    n_train = queries.num_rows
    seed = d.seed if s.get("seed") is None else int(s.seed)
    sampled = sample_queries(queries["query_id"].to_pylist(), d.fraction, seed)
    queries = queries.filter(pc.is_in(queries["query_id"], value_set=pa.array(sampled, type=pa.string())))
    cached = cached_embedder(cfg, s.model_dir)
    mined = mine_table(cfg, s.model_dir, queries, d.candidates, s.progress, cached)
    pairs = build_judge_pairs(queries, cdir / "candidates.parquet", mined)
    log.info("distillation: %d of the training queries sampled, %d pairs to rerank with %s", len(sampled), len(pairs),
             s.reranker_dir)
    out = Path(s.out_dir)
    try:
        with open_backend(scoring, s.reranker_dir, cfg.recipe.device, Path(s.checkpoint_dir) / "vllm-serve.log",
                          loader=loader_settings(cfg)) as backend:
            scores = score_pairs(pairs, backend, out / "rerank_scores.parquet", s.checkpoint_dir,
                                 queries_per_shard=scoring.queries_per_shard, progress=s.progress,
                                 max_failed_fraction=limit)
    except JudgeFailureError as error:
        raise SystemExit(f"distill_data: {error}") from None
    failed = pc.sum(pc.not_equal(scores["status"], "ok")).as_py() or 0
    if failed:
        raise SystemExit(f"distill_data: {failed} pairs have no reranker score; rerun to retry them ({s.checkpoint_dir})")
    table = teacher_table(mined, positive_cosines(cfg, cached, queries), scores, d.alpha, d.candidates)
    write_parquet(table, out / "hard_negatives.parquet", HARD_NEGATIVES)
    summary = {"training_queries": n_train, "sampled_fraction": d.fraction, "seed": seed, "queries": table.num_rows,
               "candidates_per_query": d.candidates, "alpha": d.alpha, "pairs_scored": len(pairs),
               "mean_positive_teacher_score": float(pc.mean(table["positive_score"]).as_py()),
               "recall_model": s.model_dir, "reranker": s.reranker_dir}
    write_json(summary, out / "distill_summary.json")
    return summary


def main(argv=None) -> None:
    log.info("distill_data: %s", run(stage_config(argv, __doc__)))


if __name__ == "__main__":
    main(sys.argv[1:])
