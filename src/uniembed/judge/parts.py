"""Scatter-gather of scored pairs over N cluster jobs (docs/slurm.md "Parts"): the judge's and the reranker's.

The pairs are cut into the same shards of ``queries_per_shard`` whole queries as a one-job run
(:func:`uniembed.judge.scoring.shard_pairs`); part ``p`` of ``N`` scores its contiguous shards
(:func:`uniembed.parts.part_range`) into a Parquet file of its own, its plan in the file's metadata (the digest
of all pairs, the part, the shard range, the digest of its own pairs). The gather verifies that every part
belongs to these pairs and this N, that the parts cover every shard exactly once and hold exactly their pairs
in order, and concatenates them (:func:`uniembed.parts.gather_parts`): with the same shards scored in the same
batches, the result is the one-job run's table, byte for byte once written.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pyarrow as pa

from ..mine.schemas import JUDGE_SCORES
from ..parts import gather_parts, part_path, part_range
from ..parts import write_part as _write_part
from .pairs import JudgePair, pairs_digest
from .scoring import shard_pairs

__all__ = ["part_path", "part_pairs", "write_part", "gather"]


def part_pairs(pairs: Sequence[JudgePair], queries_per_shard: int, part: int, parts: int) -> tuple[list, dict]:
    """(the pairs of part ``part`` of ``parts``, its plan)."""
    shards = shard_pairs(pairs, queries_per_shard)
    start, stop = part_range(len(shards), part, parts)
    subset = [pair for shard in shards[start:stop] for pair in shard]
    return subset, {"pairs_digest": pairs_digest(pairs), "num_pairs": len(pairs), "queries_per_shard": queries_per_shard,
                    "num_shards": len(shards), "part": part, "parts": parts, "shards": [start, stop],
                    "part_digest": pairs_digest(subset), "part_pairs": len(subset)}


def write_part(table: pa.Table, path: str | Path, plan: dict) -> None:
    _write_part(table, path, plan, JUDGE_SCORES)


def gather(paths: Sequence[str | Path], pairs: Sequence[JudgePair], queries_per_shard: int,
           what: str = "judge") -> pa.Table:
    """The parts at ``paths`` (part 0 first) as one table, or ValueError naming the ``what`` part that does not fit."""
    expected = []
    for part in range(len(paths)):
        subset, plan = part_pairs(pairs, queries_per_shard, part, len(paths))
        expected.append((plan, [(p.query_id, p.candidate_id) for p in subset]))
    return gather_parts(paths, expected, ("query_id", "candidate_id"), what)
