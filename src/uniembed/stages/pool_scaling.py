"""Stage ``pool_scaling``: VisME's candidate-pool scaling study (supplement §D, Table 7) on the world's identities.

    python -m uniembed.stages.pool_scaling stage.models='{"zero_shot": DIR, "hn_umarvel": DIR}' stage.cache_dir=DIR
        stage.out_dir=DIR

For every model of ``stage.models`` the identity meta-tasks against pools of ``recipe.visme.pool_sizes`` candidates
(:mod:`uniembed.evaluate.pool_scaling`; the distractors encoded once through the embedding cache). Writes
``pool_scaling.parquet`` (one row per model, task and size), ``pool_scaling.md`` / ``.tex`` (Table 7 layout, then
time and memory) and ``pool_scaling.png`` (Recall@1 against the pool size).
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pyarrow as pa

from ..artifacts import atomic_path, write_parquet
from ..config import stage_config
from ..data.synthetic.identity import draw_identities
from ..data.synthetic.identity_tasks import EVAL_IDENTITIES, build_tasks
from ..evaluate.identity_figures import pool_scaling_figure
from ..evaluate.pool_scaling import POOL_SCALING, pool_scaling, pool_scaling_table
from .common import load_embedder, require

log = logging.getLogger("uniembed.pool_scaling")


def run(cfg) -> list[dict]:
    s, visme = cfg.stage, cfg.recipe.visme
    require(s, "models", "cache_dir", "out_dir")
    tasks, evaluated = build_tasks(), draw_identities(**EVAL_IDENTITIES)
    rows = []
    for tag, model_dir in json.loads(s.models).items():
        rows += pool_scaling(load_embedder(cfg, model_dir), tasks, evaluated, list(visme.pool_sizes), s.cache_dir,
                             model_dir=model_dir, tag=tag, batch_size=visme.get("batch_size", 64),
                             dtype=cfg.recipe.evaluate.cache_dtype)
        log.info("%s: %s", tag, [(r["task"], r["candidates"], round(r["recall_at_1"], 1)) for r in rows if r["tag"] == tag])
    out = Path(s.out_dir)
    write_parquet(pa.Table.from_pylist(rows, schema=POOL_SCALING), out / "pool_scaling.parquet", POOL_SCALING)
    for fmt, suffix in (("markdown", "md"), ("latex", "tex")):
        with atomic_path(out / f"pool_scaling.{suffix}") as tmp:
            tmp.write_text(pool_scaling_table(rows, fmt))
    recall = {tag: {task: {r["candidates"]: r["recall_at_1"] for r in rows if r["tag"] == tag and r["task"] == task}
                    for task in tasks} for tag in dict.fromkeys(r["tag"] for r in rows)}
    pool_scaling_figure(recall, out / "pool_scaling.png")
    return rows


def main(argv=None) -> None:
    run(stage_config(argv, __doc__))


if __name__ == "__main__":
    main(sys.argv[1:])
