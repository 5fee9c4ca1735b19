"""Stage ``mine``: the potential hard-negative set of every training query (UniME-V2 eq. 1).

    python -m uniembed.stages.mine [--config-dir config] stage.model_dir=EMBEDDER stage.curated_dir=DIR \\
        stage.cache_dir=DIR stage.out_dir=DIR

Embeds ``recipe.mine.split`` queries of ``recipe.mine.source`` and their pool with the given
embedder (any stage's model, or any local checkpoint) through the embedding cache, retrieves
with FAISS, drops positives, keeps the top ``top_k`` below ``delta``. Writes ``mined.parquet``
(schema MINED) and ``mined_summary.json``. With ``recipe.mine.parts`` N > 1 the workflow runs N encode
parts (``stage.part`` P of ``stage.parts`` N: whole shards of every cache entry, a record in
``stage.part_dir/part-P-of-N.json``) and this stage then mines from their shards, encoding nothing.
"""
from __future__ import annotations

import json
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
from ..parts import part_path
from .common import cached_embedder, require

log = logging.getLogger("uniembed.mine")


def _groups(cfg, queries: pa.Table) -> tuple[dict, dict]:
    """(the pools' members, the mined queries' rows by the pool each is searched against)."""
    m = cfg.recipe.mine
    cdir = Path(cfg.stage.curated_dir) / m.source
    members = pool_members(read_parquet(cdir / "pools.parquet", POOLS))
    if m.pool == "global":
        groups = {global_pool_name(members, m.split): queries.to_pylist()}
    elif m.pool == "own":
        groups = defaultdict(list)
        for r in queries.to_pylist():
            groups[r["pool"]].append(r)
    else:
        raise SystemExit(f"recipe.mine.pool must be 'global' or 'own', got {m.pool!r}")
    for pool, rows in groups.items():
        if not members.get(pool):
            raise SystemExit(f"pool {pool!r} of {len(rows)} queries is empty or unknown in {cdir / 'pools.parquet'}")
    return members, groups


def encode_entries(cfg, queries: pa.Table) -> list[tuple[str, list[str]]]:
    """Every (table kind, ids) the mine encodes, in its order: each pool's queries, then the pool."""
    members, groups = _groups(cfg, queries)
    return [entry for pool, rows in groups.items()
            for entry in (("queries", [r["query_id"] for r in rows]), ("candidates", members[pool]))]


def mine_table(cfg, model_dir: str, queries: pa.Table, top_k: int, progress: bool = True, cached=None) -> pa.Table:
    """The MINED table of ``queries`` (curated rows of ``recipe.mine.source``): each query's ``top_k`` most
    similar ``recipe.mine.pool`` candidates below ``delta``, positives removed, by the embedder ``model_dir``
    (``cached``: its :func:`cached_embedder`, when the caller has one)."""
    m = cfg.recipe.mine
    cdir = Path(cfg.stage.curated_dir) / m.source
    members, groups = _groups(cfg, queries)
    cached = cached or cached_embedder(cfg, model_dir)

    def embed(kind, ids):
        return np.asarray(cached(cdir, kind, ids).embeddings, dtype=np.float32)

    tables = []
    for pool, rows in groups.items():
        qids = [r["query_id"] for r in rows]
        log.info("mining %d queries against pool %s (%d candidates)", len(qids), pool, len(members[pool]))
        tables.append(mine_candidates(embed("queries", qids), qids, [set(r["positive_ids"]) for r in rows],
                                      embed("candidates", members[pool]), members[pool], top_k=top_k, delta=m.delta,
                                      index_kind=m.index, device=cfg.recipe.device, progress=progress))
    return pa.concat_tables(tables)


def encode_part(cfg, queries: pa.Table, part: int, parts: int) -> dict:
    """Encode part ``part`` of ``parts`` of every cache entry the mine reads; write and return the part's record."""
    s = cfg.stage
    cdir = Path(s.curated_dir) / cfg.recipe.mine.source
    cached = cached_embedder(cfg, s.model_dir)
    record = {"part": part, "parts": parts,
              "entries": [cached(cdir, kind, ids, part=(part, parts)) for kind, ids in encode_entries(cfg, queries)]}
    write_json(record, part_path(s.part_dir, part, parts, ".json"))
    return record


def gathered_embedder(cfg, queries: pa.Table, parts: int):
    """The cached embedder of a gather: every part's record checked against the plan these inputs give (each
    entry's key, rows and part), then the entries assembled from the parts' shards, nothing encoded."""
    s = cfg.stage
    cdir = Path(s.curated_dir) / cfg.recipe.mine.source
    cached = cached_embedder(cfg, s.model_dir, gather_only=True)
    entries = encode_entries(cfg, queries)
    for part in range(parts):
        path = part_path(s.part_dir, part, parts, ".json")
        expected = {"part": part, "parts": parts,
                    "entries": [cached.plan(cdir, kind, ids, (part, parts)) for kind, ids in entries]}
        found = json.loads(path.read_text()) if path.is_file() else None
        if found != expected:
            raise SystemExit(f"{path}: mine encode part {part} of {parts} is missing or not the piece these inputs need "
                             f"(found {found}, expected {expected}); delete it to encode that part again")
    return cached

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
    """Mine (``stage.parts`` 1 or unset); encode part ``stage.part`` of ``stage.parts`` of the cache entries (its
    record in ``stage.part_dir``); or, with ``stage.parts`` > 1 and no part, mine from the parts' shards."""
    s, m = cfg.stage, cfg.recipe.mine
    require(s, "model_dir", "curated_dir", "cache_dir", "out_dir")
    queries = split_queries(cfg)
    parts, part = int(s.get("parts") or 1), s.get("part")
    if parts > 1:
        require(s, "part_dir")
        if part is not None:
            return encode_part(cfg, queries, int(part), parts)
    cached = gathered_embedder(cfg, queries, parts) if parts > 1 else None
    mined = mine_table(cfg, s.model_dir, queries, m.top_k, s.progress, cached=cached)
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
