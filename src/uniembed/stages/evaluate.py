"""Stage ``evaluate``: any model directory (base, or base + adapter) on M-BEIR local/global and MMEB.

    python -m uniembed.stages.evaluate [--config-dir config] stage.tag=zero_shot stage.curated_dir=DIR \\
        stage.cache_dir=DIR stage.out_dir=DIR [stage.model_dir=...] [stage.adapter_dir=...]

Embeds the test queries and the candidates they are ranked against (through the embedding
cache), scores every curated source of format ``mbeir`` or ``mmeb``, and writes
``scores.parquet`` / ``scores.csv`` and the paper-layout tables ``tables.md`` / ``tables.tex``.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ..artifacts import atomic_path, read_parquet, write_parquet
from ..config import stage_config
from ..data.schemas import DATASETS, POOLS, QUERIES
from ..evaluate.mbeir import evaluate_mbeir, global_pool_name
from ..evaluate.mmeb import evaluate_mmeb
from ..evaluate.results import SCORES
from ..evaluate.tables import render_tables
from .common import cached_embedder, require

log = logging.getLogger("uniembed.evaluate")


def _vectors(cached) -> dict:
    return dict(zip(cached.ids, cached.embeddings))


def run(cfg) -> list[dict]:
    s, ev = cfg.stage, cfg.recipe.evaluate
    require(s, "tag", "curated_dir", "cache_dir", "out_dir")
    cached = cached_embedder(cfg, s.model_dir or cfg.model.path, s.adapter_dir)

    def embed(cdir: Path, kind: str, ids: list[str]) -> dict:
        return _vectors(cached(cdir, kind, ids))

    rows: list[dict] = []
    for source, spec in cfg.data.sources.items():
        if spec.format not in ("mbeir", "mmeb"):
            continue
        cdir = Path(s.curated_dir) / source
        queries = read_parquet(cdir / "queries.parquet", QUERIES)
        if spec.format == "mbeir":
            test = queries.filter(pc.equal(queries["split"], ev.mbeir_split))
            pools = read_parquet(cdir / "pools.parquet", POOLS)
            used = set(test["pool"].to_pylist()) | {global_pool_name(set(pools["pool"].to_pylist()), ev.mbeir_split)}
            pools = pools.filter(pc.is_in(pools["pool"], value_set=pa.array(sorted(used))))
            cand_ids = sorted(set(pools["candidate_id"].to_pylist()))
            log.info("%s: %d %s queries, %d candidates", source, test.num_rows, ev.mbeir_split, len(cand_ids))
            qv, cv = embed(cdir, "queries", test["query_id"].to_pylist()), embed(cdir, "candidates", cand_ids)
            for setting in ev.mbeir_settings:
                rows += evaluate_mbeir(test, pools, qv, cv, setting, ev.mbeir_split)
        else:
            test = queries.filter(pc.equal(queries["split"], ev.mmeb_split))
            cand_ids = sorted({c for ids in test["candidate_ids"].to_pylist() for c in ids})
            log.info("%s: %d %s queries, %d candidates", source, test.num_rows, ev.mmeb_split, len(cand_ids))
            qv, cv = embed(cdir, "queries", test["query_id"].to_pylist()), embed(cdir, "candidates", cand_ids)
            rows += evaluate_mmeb(test, read_parquet(cdir / "datasets.parquet", DATASETS), qv, cv, ev.mmeb_split)
    if not rows:
        raise SystemExit(f"data config {cfg.data.name!r} has no source of format mbeir or mmeb to evaluate")
    for r in rows:
        r["tag"] = s.tag
    write_outputs(rows, Path(s.out_dir), s.tag)
    return rows


def write_outputs(rows: list[dict], out_dir: Path, title: str) -> None:
    table = pa.Table.from_pylist(rows, schema=SCORES)
    write_parquet(table, out_dir / "scores.parquet", SCORES)
    with atomic_path(out_dir / "scores.csv") as tmp:
        pacsv.write_csv(table, tmp)
    for fmt, suffix in (("markdown", "md"), ("latex", "tex")):
        with atomic_path(out_dir / f"tables.{suffix}") as tmp:
            tmp.write_text(render_tables(rows, fmt, title))


def main(argv=None) -> None:
    rows = run(stage_config(argv, __doc__))
    log.info("evaluated %d (benchmark, setting, dataset) rows", len(rows))


if __name__ == "__main__":
    main(sys.argv[1:])
