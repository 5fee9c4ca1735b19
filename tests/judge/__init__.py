"""Tests of the judge library; :func:`mined_table` builds a MINED table over a curated world."""
from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from uniembed.mine.schemas import MINED


def mined_table(curated: Path, query_ids: list[str], per_query: int = 4, seed: int = 0) -> pa.Table:
    """``per_query`` random non-positive candidates per query, ranks 1..per_query, rows shuffled."""
    positives = {r["query_id"]: set(r["positive_ids"])
                 for r in pq.read_table(curated / "queries.parquet", columns=["query_id", "positive_ids"]).to_pylist()}
    pool = pq.read_table(curated / "candidates.parquet", columns=["candidate_id"])["candidate_id"].to_pylist()
    rng = random.Random(seed)
    rows = []
    for qid in query_ids:
        chosen = rng.sample([c for c in pool if c not in positives[qid]], per_query)
        rows += [{"query_id": qid, "rank": rank, "candidate_id": cid, "similarity": 1.0 - rank / 100}
                 for rank, cid in enumerate(chosen, 1)]
    rng.shuffle(rows)
    return pa.Table.from_pylist(rows, schema=MINED)
