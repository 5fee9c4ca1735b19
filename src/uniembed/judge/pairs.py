"""The (query, candidate) pairs the judge scores (UniME-V2, "MLLM-as-a-Judge for Hard Negatives Mining").

For every query of the mined table: each of its positives (the paper's threshold
alpha = s(q, positive) - beta needs the positive's score) and every mined candidate (the
potential hard negative set Omega_p, eq. 1). Inputs:

* ``queries.parquet`` / ``candidates.parquet``: curated tables (``data/schemas.py``);
* the mined table (``mine/schemas.py`` ``MINED``): ``query_id, rank, candidate_id, similarity``.

Order: queries in ``queries.parquet`` order (those present in the mined table), and within a
query its positives first (in ``positive_ids`` order, ``rank`` null) then its mined candidates by
rank. A query's pairs are contiguous, which the sharded scorer and prefix caching rely on.

Errors (raised before any scoring): a mined query or candidate id that the curated tables do not
have, a mined candidate that is one of the query's positives, a duplicate (query, candidate), and
an image file missing on disk (naming the query or candidate and the path).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pyarrow as pa

from ..artifacts import read_parquet
from ..data.schemas import CANDIDATES, QUERIES
from ..embed.embedder import EmbedItem
from ..mine.schemas import MINED


@dataclass(frozen=True, slots=True)
class JudgePair:
    query_id: str
    candidate_id: str
    is_positive: bool
    rank: int | None          # mined rank (1 = most similar); None for positives
    query: EmbedItem
    candidate: EmbedItem


def _table(source: str | os.PathLike | pa.Table, schema: pa.Schema) -> pa.Table:
    return source if isinstance(source, pa.Table) else read_parquet(source, schema)


def build_judge_pairs(queries: str | os.PathLike | pa.Table, candidates: str | os.PathLike | pa.Table,
                      mined: str | os.PathLike | pa.Table, check_images: bool = True) -> list[JudgePair]:
    """All pairs to judge, grouped by query (see the module docstring for the order and the errors)."""
    mined_rows = _table(mined, MINED).select(["query_id", "rank", "candidate_id"]).to_pylist()
    by_query: dict[str, list[tuple[int, str]]] = {}
    for row in mined_rows:
        by_query.setdefault(row["query_id"], []).append((row["rank"], row["candidate_id"]))

    query_rows = _table(queries, QUERIES).select(
        ["query_id", "instruction", "text", "image_path", "positive_ids"]).to_pylist()
    known_queries = {row["query_id"] for row in query_rows}
    unknown = [qid for qid in by_query if qid not in known_queries]
    if unknown:
        raise ValueError(f"the mined table has {len(unknown)} query ids not in the queries table, e.g. {unknown[:3]}")

    pool = {row["candidate_id"]: EmbedItem(row["text"], row["image_path"])
            for row in _table(candidates, CANDIDATES).select(["candidate_id", "text", "image_path"]).to_pylist()}
    pairs: list[JudgePair] = []
    for row in query_rows:
        mined_of_query = by_query.get(row["query_id"])
        if mined_of_query is None:
            continue
        qid = row["query_id"]
        query = EmbedItem(row["text"], row["image_path"], row["instruction"])
        positives = list(row["positive_ids"])
        ranked = sorted(mined_of_query)
        for cid in positives + [cid for _, cid in ranked]:
            if cid not in pool:
                raise ValueError(f"query {qid}: candidate {cid} is not in the candidates table")
        clash = set(positives) & {cid for _, cid in ranked}
        if clash:
            raise ValueError(f"query {qid}: mined candidates include its positives {sorted(clash)} "
                             "(mining must drop a query's positives)")
        seen = [cid for _, cid in ranked]
        if len(set(seen)) != len(seen) or len(set(positives)) != len(positives):
            raise ValueError(f"query {qid}: a candidate is listed twice (positives {positives}, mined {seen})")
        pairs += [JudgePair(qid, cid, True, None, query, pool[cid]) for cid in positives]
        pairs += [JudgePair(qid, cid, False, int(rank), query, pool[cid]) for rank, cid in ranked]
    if check_images:
        check_pair_images(pairs)
    return pairs


def check_pair_images(pairs: Sequence[JudgePair]) -> None:
    """Raise FileNotFoundError naming the first query or candidate whose image file is missing."""
    checked: set[str] = set()
    for pair in pairs:
        for role, rid, item in (("query", pair.query_id, pair.query), ("candidate", pair.candidate_id, pair.candidate)):
            path = item.image_path
            if path and path not in checked:
                if not Path(path).is_file():
                    raise FileNotFoundError(f"{role} {rid}: image file not found: {path}")
                checked.add(path)


def pairs_digest(pairs: Sequence[JudgePair]) -> str:
    """sha256 over every pair's ids, positive flag, rank and both items' contents, in order."""
    digest = hashlib.sha256()
    for p in pairs:
        fields = (p.query_id, p.candidate_id, p.is_positive, p.rank, p.query.instruction, p.query.text,
                  p.query.image_path, p.candidate.text, p.candidate.image_path)
        digest.update(repr(fields).encode())
        digest.update(b"\n")
    return digest.hexdigest()
