"""Scatter-gather of the judge's pairs over N cluster jobs (docs/slurm.md "Parts").

The pairs are cut into the same shards of ``queries_per_shard`` whole queries as a one-job run
(:func:`uniembed.judge.scoring.shard_pairs`); part ``p`` of ``N`` scores the contiguous shards
``[p S / N, (p + 1) S / N)`` of ``S`` into a Parquet file of its own, its plan in the file's metadata (the digest
of all pairs, the part, the shard range, the digest of its own pairs). The gather verifies that every part
belongs to these pairs and this N, that the parts cover every shard exactly once and hold exactly their pairs
in order, and concatenates them: with the same shards scored in the same batches, the result is the one-job
run's table, byte for byte once written.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from ..artifacts import atomic_path
from ..mine.schemas import JUDGE_SCORES
from .pairs import JudgePair, pairs_digest
from .scoring import shard_pairs

PART_META = b"uniembed.judge_part"


def part_path(directory: str | Path, part: int, parts: int) -> Path:
    return Path(directory) / f"part-{part}-of-{parts}.parquet"


def part_pairs(pairs: Sequence[JudgePair], queries_per_shard: int, part: int, parts: int) -> tuple[list, dict]:
    """(the pairs of part ``part`` of ``parts``, its plan)."""
    if not 0 <= part < parts:
        raise ValueError(f"part {part} of {parts}: a part is 0 .. {parts - 1}")
    shards = shard_pairs(pairs, queries_per_shard)
    start, stop = len(shards) * part // parts, len(shards) * (part + 1) // parts
    subset = [pair for shard in shards[start:stop] for pair in shard]
    return subset, {"pairs_digest": pairs_digest(pairs), "num_pairs": len(pairs), "queries_per_shard": queries_per_shard,
                    "num_shards": len(shards), "part": part, "parts": parts, "shards": [start, stop],
                    "part_digest": pairs_digest(subset), "part_pairs": len(subset)}


def write_part(table: pa.Table, path: str | Path, plan: dict) -> None:
    table = table.select(JUDGE_SCORES.names).cast(JUDGE_SCORES)
    with atomic_path(path) as tmp:
        pq.write_table(table.replace_schema_metadata({PART_META: json.dumps(plan).encode()}), tmp)


def gather(paths: Sequence[str | Path], pairs: Sequence[JudgePair], queries_per_shard: int) -> pa.Table:
    """The parts at ``paths`` (part 0 first) as one table, or ValueError naming the part that does not fit."""
    parts = len(paths)
    tables = []
    for part, path in enumerate(paths):
        subset, expected = part_pairs(pairs, queries_per_shard, part, parts)
        table = pq.read_table(path)
        meta = (table.schema.metadata or {}).get(PART_META)
        found = json.loads(meta) if meta else {}
        differ = [f"{key} is {found.get(key)!r}, expected {value!r}" for key, value in expected.items()
                  if found.get(key) != value]
        if not differ and table.num_rows != len(subset):
            differ.append(f"it has {table.num_rows} rows, expected {len(subset)}")
        if not differ:
            ids = list(zip(table["query_id"].to_pylist(), table["candidate_id"].to_pylist()))
            wrong = next((i for i, (got, pair) in enumerate(zip(ids, subset))
                          if got != (pair.query_id, pair.candidate_id)), None)
            if wrong is not None:
                differ.append(f"row {wrong} is {ids[wrong]}, expected {(subset[wrong].query_id, subset[wrong].candidate_id)}")
        if differ:
            raise ValueError(f"{path}: judge part {part} of {parts} is not the piece these pairs need: "
                             f"{'; '.join(differ)}. Delete it to score that part again.")
        tables.append(table.replace_schema_metadata(None))
    return pa.concat_tables(tables)
