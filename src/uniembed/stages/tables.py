"""Stage ``tables``: put every evaluated model side by side (U-MARVEL Table 13 layout per stage).

    python -m uniembed.stages.tables [--config-dir config] 'stage.scores=[a/scores.parquet,...]' stage.out_dir=DIR

Columns follow the order of ``stage.scores`` (the DAG order: zero-shot, then each stage).
Writes ``per_stage.md``, ``per_stage.tex`` and ``per_stage.csv``, and the report's figures
``per_stage.png`` (headline scores per model), ``temperature.png`` (tau per step of every
training stage in ``stage.summaries``, a list of training_summary.json in stage order) and
``training_curves.png`` (the loss per step of the same stages, rerankers included); and
``papers.md`` / ``papers.tex``: U-MARVEL Tables 7, 13, 14 and UniME-V2 Tables 1, 3 in the papers'
layouts, the published numbers beside ours where they compare (:mod:`uniembed.evaluate.paper_tables`).
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from ..artifacts import atomic_path, read_parquet
from ..config import stage_config
from ..evaluate.figures import per_stage_figure, temperature_figure, training_curves_figure
from ..evaluate.paper_tables import paper_tables
from ..evaluate.published import read_published
from ..evaluate.results import SCORES
from ..evaluate.tables import render_tables

log = logging.getLogger("uniembed.tables")


def _roles(recipe) -> dict:
    """Which evaluated tags play which part in the papers' tables, from the recipe's sections."""
    rerank, distill = recipe.get("rerank"), recipe.get("distill")
    recall = rerank.recall if rerank else (distill["from"] if distill else None)
    reranked = {f"{recall}+{name}": name for name in (rerank.rerankers if rerank else {})}
    stages = [recipe.train_hn["from"], distill["from"], "distill"] if distill and recipe.get("train_hn") else []
    return {"recall": recall, "reranked": reranked, "stages": stages}


def run(cfg) -> pa.Table:
    if not cfg.stage.scores or not cfg.stage.out_dir:
        raise SystemExit("stage.scores (a list of scores.parquet) and stage.out_dir are required")
    table = pa.concat_tables([read_parquet(p, SCORES) for p in cfg.stage.scores])
    rows = table.to_pylist()
    out = Path(cfg.stage.out_dir)
    for fmt, suffix in (("markdown", "md"), ("latex", "tex")):
        with atomic_path(out / f"per_stage.{suffix}") as tmp:
            tmp.write_text(render_tables(rows, fmt, "per stage"))
    with atomic_path(out / "per_stage.csv") as tmp:
        pacsv.write_csv(table, tmp)
    roles = _roles(cfg.recipe)
    published = read_published(files=cfg.stage.get("published") or None)
    for fmt, suffix in (("markdown", "md"), ("latex", "tex")):
        with atomic_path(out / f"papers.{suffix}") as tmp:
            tmp.write_text(paper_tables(rows, published, fmt=fmt, **roles))
    by_tag = {}
    for r in rows:
        by_tag.setdefault(r["tag"], []).append(r)
    per_stage_figure(by_tag, out / "per_stage.png")
    histories = {Path(p).parent.name: json.loads(Path(p).read_text()).get("history", [])
                 for p in cfg.stage.get("summaries") or []}
    temperature_figure(histories, out / "temperature.png")
    training_curves_figure(histories, out / "training_curves.png")
    log.info("tables for %d models -> %s", len({r['tag'] for r in rows}), out)
    return table


def main(argv=None) -> None:
    run(stage_config(argv, __doc__))


if __name__ == "__main__":
    main(sys.argv[1:])
