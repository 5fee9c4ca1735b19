"""Scatter-gather over N cluster jobs (docs/slurm.md "Parts"): which units a part owns, and the verified gather.

A stage's work is cut into units that a one-job run also processes whole (the judge's and the reranker's shards
of ``queries_per_shard`` queries, the listwise reranker's lists, the embedding cache's shards); part ``p`` of
``N`` owns the contiguous units ``[p U / N, (p + 1) U / N)`` of ``U``. A part writes its table with its plan in
the Parquet metadata (the digest of everything, the part, its unit range and the digest of its own rows); the
gather recomputes each part's plan and rows from the same inputs, refuses a part whose plan or rows differ
(naming the file and the first difference) and concatenates them in part order. With the same units processed
the same way the gathered table is the one-job run's, byte for byte once written.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from .artifacts import atomic_path

PART_META = b"uniembed.part"


def part_range(units: int, part: int, parts: int) -> tuple[int, int]:
    """The units ``[start, stop)`` of part ``part`` of ``parts`` (some parts are empty when units < parts)."""
    if parts < 1 or not 0 <= part < parts:
        raise ValueError(f"part {part} of {parts}: a part is 0 .. {parts - 1}")
    return units * part // parts, units * (part + 1) // parts


def part_path(directory: str | Path, part: int, parts: int, suffix: str = ".parquet") -> Path:
    return Path(directory) / f"part-{part}-of-{parts}{suffix}"


def write_part(table: pa.Table, path: str | Path, plan: dict, schema: pa.Schema) -> None:
    """Write one part's rows (cast to ``schema``) atomically, its ``plan`` in the file's metadata."""
    table = table.select(schema.names).cast(schema)
    with atomic_path(path) as tmp:
        pq.write_table(table.replace_schema_metadata({PART_META: json.dumps(plan).encode()}), tmp)


def gather_parts(paths: Sequence[str | Path], expected: Sequence[tuple[dict, list[tuple]]],
                 key_columns: Sequence[str], what: str) -> pa.Table:
    """The parts at ``paths`` (part 0 first) as one table, each checked against its ``expected`` (plan, row keys:
    the ``key_columns`` of every row in order); a part that does not fit is a ValueError naming it."""
    if len(paths) != len(expected):
        raise ValueError(f"{what}: {len(paths)} part files for {len(expected)} parts")
    tables = []
    for part, (path, (plan, keys)) in enumerate(zip(paths, expected)):
        table = pq.read_table(path)
        meta = (table.schema.metadata or {}).get(PART_META)
        found = json.loads(meta) if meta else {}
        differ = [f"{key} is {found.get(key)!r}, expected {value!r}" for key, value in plan.items()
                  if found.get(key) != value]
        if not differ and table.num_rows != len(keys):
            differ.append(f"it has {table.num_rows} rows, expected {len(keys)}")
        if not differ:
            got = list(zip(*(table[c].to_pylist() for c in key_columns))) if table.num_rows else []
            wrong = next((i for i, (a, b) in enumerate(zip(got, keys)) if tuple(a) != tuple(b)), None)
            if wrong is not None:
                differ.append(f"row {wrong} is {got[wrong]}, expected {tuple(keys[wrong])}")
        if differ:
            raise ValueError(f"{path}: {what} part {part} of {len(paths)} is not the piece these inputs need: "
                             f"{'; '.join(differ)}. Delete it to run that part again.")
        tables.append(table.replace_schema_metadata(None))
    return pa.concat_tables(tables)
