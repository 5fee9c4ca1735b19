"""Stage ``evaluate``: any model directory (base, or base + adapter) on M-BEIR local/global and MMEB.

    python -m uniembed.stages.evaluate [--config-dir config] stage.tag=zero_shot stage.curated_dir=DIR \\
        stage.cache_dir=DIR stage.out_dir=DIR [stage.model_dir=...] [stage.adapter_dir=...]

Embeds the test queries and the candidates they are ranked against (through the embedding
cache), scores every curated source of format ``mbeir`` or ``mmeb`` and every zero-shot source (all its queries:
:mod:`uniembed.evaluate.zeroshot`), and writes
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
from ..data.schemas import CANDIDATES, DATASETS, POOLS, QUERIES
from ..evaluate.mbeir import evaluate_mbeir, global_pool_name
from ..evaluate.mmeb import evaluate_mmeb
from ..evaluate.results import SCORES
from ..evaluate.sources import evaluation_split
from ..evaluate.tables import render_tables
from ..evaluate.zeroshot import COMPOSED, ZEROSHOT_FORMATS, evaluate_zeroshot, reference_ids
from .common import cached_embedder, require

log = logging.getLogger("uniembed.evaluate")


def _vectors(cached) -> dict:
    return dict(zip(cached.ids, cached.embeddings))


def embedded_sources(cfg, cached, mbeir_split: str | None = None, formats=("mbeir", "mmeb")):
    """Per evaluation source of ``formats``: its test queries (M-BEIR: ``mbeir_split`` instead of
    ``recipe.evaluate.mbeir_split`` when given; a zero-shot source: all its queries), the tables ranking needs and
    the query and candidate
    embeddings (through the cache): dicts with keys ``format, queries, pools, datasets, qv, cv, split``."""
    s, ev = cfg.stage, cfg.recipe.evaluate
    for source, spec in cfg.data.sources.items():
        split = evaluation_split(spec, ev)
        if spec.format not in formats or split is None:
            continue
        split = mbeir_split if mbeir_split and spec.format == "mbeir" else split
        cdir = Path(s.curated_dir) / source
        queries = read_parquet(cdir / "queries.parquet", QUERIES)
        zeroshot = spec.format in ZEROSHOT_FORMATS   # an unseen set: every query it holds is a test query
        split = "+".join(sorted(set(queries["split"].to_pylist()))) if zeroshot else split
        test = queries if zeroshot else queries.filter(pc.equal(queries["split"], split))
        if mbeir_split and spec.format == "mbeir" and not test.num_rows:
            raise SystemExit(f"{source}: no {split!r} queries in {cdir / 'queries.parquet'} "
                             f"(the data config's sources.{source}.splits must include {split!r})")
        pools = datasets = None
        if spec.format == "mbeir":
            pools = read_parquet(cdir / "pools.parquet", POOLS)
            used = set(test["pool"].to_pylist()) | {global_pool_name(set(pools["pool"].to_pylist()), split)}
            pools = pools.filter(pc.is_in(pools["pool"], value_set=pa.array(sorted(used))))
            cand_ids = sorted(set(pools["candidate_id"].to_pylist()))
        elif zeroshot:
            pools = read_parquet(cdir / "pools.parquet", POOLS)
            pools = pools.filter(pc.is_in(pools["pool"], value_set=pa.array(sorted(
                {p for p in test["pool"].to_pylist() if p}), type=pa.string())))
            cand_ids = sorted(set(pools["candidate_id"].to_pylist())
                              | {c for ids in test["candidate_ids"].to_pylist() for c in ids})
        else:
            datasets = read_parquet(cdir / "datasets.parquet", DATASETS)
            cand_ids = sorted({c for ids in test["candidate_ids"].to_pylist() for c in ids})
        log.info("%s: %d %s queries, %d candidates", source, test.num_rows, split, len(cand_ids))
        yield {"source": source, "format": spec.format, "queries": test, "pools": pools, "datasets": datasets,
               "split": split, "curated": cdir,
               "qv": _vectors(cached(cdir, "queries", test["query_id"].to_pylist())),
               "cv": _vectors(cached(cdir, "candidates", cand_ids))}


def run(cfg) -> list[dict]:
    s, ev = cfg.stage, cfg.recipe.evaluate
    require(s, "tag", "curated_dir", "cache_dir", "out_dir")
    cached = cached_embedder(cfg, s.model_dir or cfg.model.path, s.adapter_dir)
    rows: list[dict] = []
    for src in embedded_sources(cfg, cached, formats=("mbeir", "mmeb", *ZEROSHOT_FORMATS)):
        if src["format"] == "mbeir":
            for setting in ev.mbeir_settings:
                rows += evaluate_mbeir(src["queries"], src["pools"], src["qv"], src["cv"], setting, src["split"])
        elif src["format"] in ZEROSHOT_FORMATS:
            references = (reference_ids(src["queries"], read_parquet(src["curated"] / "candidates.parquet", CANDIDATES))
                          if src["format"] in COMPOSED else None)
            rows += evaluate_zeroshot(src["format"], src["queries"], src["pools"], src["qv"], src["cv"], references)
        else:
            rows += evaluate_mmeb(src["queries"], src["datasets"], src["qv"], src["cv"], src["split"])
    if not rows:
        raise SystemExit(f"data config {cfg.data.name!r} has no source of format mbeir, mmeb or a zero-shot format "
                         f"({', '.join(ZEROSHOT_FORMATS)}) to evaluate")
    for r in rows:
        r["tag"] = s.tag
    write_outputs(rows, Path(s.out_dir), s.tag)
    return rows


def write_outputs(rows: list[dict], out_dir: Path, title: str, scores: str = "scores", tables: str = "tables") -> None:
    """``<scores>.parquet`` / ``.csv`` (the evaluation schema) and ``<tables>.md`` / ``.tex`` (every table the rows
    support, :func:`uniembed.evaluate.tables.render_tables`)."""
    table = pa.Table.from_pylist(rows, schema=SCORES)
    write_parquet(table, out_dir / f"{scores}.parquet", SCORES)
    with atomic_path(out_dir / f"{scores}.csv") as tmp:
        pacsv.write_csv(table, tmp)
    for fmt, suffix in (("markdown", "md"), ("latex", "tex")):
        with atomic_path(out_dir / f"{tables}.{suffix}") as tmp:
            tmp.write_text(render_tables(rows, fmt, title))


def main(argv=None) -> None:
    rows = run(stage_config(argv, __doc__))
    log.info("evaluated %d (benchmark, setting, dataset) rows", len(rows))


if __name__ == "__main__":
    main(sys.argv[1:])
