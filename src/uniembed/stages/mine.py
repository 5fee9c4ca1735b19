"""Stage ``mine``: the potential hard-negative set of every training query (UniME-V2 eq. 1).

    python -m uniembed.stages.mine [--config-dir config] stage.model_dir=EMBEDDER stage.curated_dir=DIR \\
        stage.cache_dir=DIR stage.out_dir=DIR

Embeds ``recipe.mine.split`` queries of ``recipe.mine.source`` and their pool with the given
embedder (any stage's model, or any local checkpoint) through the embedding cache, retrieves
with FAISS, drops positives, keeps the top ``top_k`` below ``delta``. Writes ``mined.parquet``
(schema MINED) and ``mined_summary.json``.
"""
from __future__ import annotations

import logging
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..artifacts import read_parquet, write_json, write_parquet
from ..config import stage_config
from ..data.schemas import POOLS, QUERIES
from ..evaluate.mbeir import global_pool_name, pool_members
from ..mine.candidates import mine_candidates
from ..mine.schemas import MINED
from .common import cached_embedder, require

log = logging.getLogger("uniembed.mine")


def mine_table(cfg, model_dir: str, queries: pa.Table, top_k: int, progress: bool = True, cached=None) -> pa.Table:
    """The MINED table of ``queries`` (curated rows of ``recipe.mine.source``): each query's ``top_k`` most
    similar ``recipe.mine.pool`` candidates below ``delta``, positives removed, by the embedder ``model_dir``
    (``cached``: its :func:`cached_embedder`, when the caller has one)."""
    s, m = cfg.stage, cfg.recipe.mine
    cdir = Path(s.curated_dir) / m.source
    pools = read_parquet(cdir / "pools.parquet", POOLS)
    members = pool_members(pools)
    if m.pool == "global":
        groups = {global_pool_name(members, m.split): queries.to_pylist()}
    elif m.pool == "own":
        groups = defaultdict(list)
        for r in queries.to_pylist():
            groups[r["pool"]].append(r)
    else:
        raise SystemExit(f"recipe.mine.pool must be 'global' or 'own', got {m.pool!r}")
    cached = cached or cached_embedder(cfg, model_dir)

    def embed(kind, ids):
        return np.asarray(cached(cdir, kind, ids).embeddings, dtype=np.float32)

    tables = []
    for pool, rows in groups.items():
        if not members.get(pool):
            raise SystemExit(f"pool {pool!r} of {len(rows)} queries is empty or unknown in {cdir / 'pools.parquet'}")
        qids = [r["query_id"] for r in rows]
        log.info("mining %d queries against pool %s (%d candidates)", len(qids), pool, len(members[pool]))
        tables.append(mine_candidates(embed("queries", qids), qids, [set(r["positive_ids"]) for r in rows],
                                      embed("candidates", members[pool]), members[pool], top_k=top_k, delta=m.delta,
                                      index_kind=m.index, device=cfg.recipe.device, progress=progress))
    return pa.concat_tables(tables)


def split_queries(cfg) -> pa.Table:
    """The ``recipe.mine.split`` queries of ``recipe.mine.source`` (curated), or an error naming the file."""
    m = cfg.recipe.mine
    cdir = Path(cfg.stage.curated_dir) / m.source
    queries = read_parquet(cdir / "queries.parquet", QUERIES)
    queries = queries.filter(pc.equal(queries["split"], m.split))
    if queries.num_rows == 0:
        raise SystemExit(f"{cdir}: no {m.split!r} queries to mine for")
    return queries


def run(cfg) -> dict:
    s, m = cfg.stage, cfg.recipe.mine
    require(s, "model_dir", "curated_dir", "cache_dir", "out_dir")
    queries = split_queries(cfg)
    mined = mine_table(cfg, s.model_dir, queries, m.top_k, s.progress)
    counts = np.bincount(pc.value_counts(mined["query_id"]).field("counts").to_numpy(), minlength=m.top_k + 1)
    summary = {"queries": queries.num_rows, "rows": mined.num_rows, "top_k": m.top_k, "delta": m.delta,
               "queries_with_fewer_than_top_k": int(queries.num_rows - counts[m.top_k]),
               "mean_similarity_rank1": float(pc.mean(mined.filter(pc.equal(mined["rank"], 1))["similarity"]).as_py()),
               "embedder": s.model_dir}
    out = Path(s.out_dir)
    write_parquet(mined, out / "mined.parquet", MINED)
    write_json(summary, out / "mined_summary.json")
    log.info("mined %d rows for %d queries -> %s", mined.num_rows, queries.num_rows, out)
    return summary


def main(argv=None) -> None:
    run(stage_config(argv, __doc__))


if __name__ == "__main__":
    main(sys.argv[1:])
