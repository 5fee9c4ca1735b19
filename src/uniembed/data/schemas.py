"""Explicit pyarrow schemas of the curated artifacts (docs/curation.md).

Every curated source directory holds ``queries.parquet``, ``candidates.parquet``,
``pools.parquet``, ``datasets.parquet`` and ``quarantine.parquet`` with these schemas, whatever
the source format (M-BEIR, MMEB, NLI triplets, image-caption pairs).

Task ids follow M-BEIR (UniIR): 0 t->i, 1 t->t, 2 t->(i,t), 3 i->t, 4 i->i, 5 i->(t,i),
6 (i,t)->t, 7 (i,t)->i, 8 (i,t)->(i,t). Sources without task ids get the id of their
(query modality, candidate modality) pair.
"""
from __future__ import annotations

import pyarrow as pa

TEXT, IMAGE, IMAGE_TEXT = "text", "image", "image,text"
MODALITIES = (TEXT, IMAGE, IMAGE_TEXT)

#: M-BEIR task id -> (query modality, candidate modality).
TASKS: dict[int, tuple[str, str]] = {
    0: (TEXT, IMAGE),
    1: (TEXT, TEXT),
    2: (TEXT, IMAGE_TEXT),
    3: (IMAGE, TEXT),
    4: (IMAGE, IMAGE),
    5: (IMAGE, IMAGE_TEXT),
    6: (IMAGE_TEXT, TEXT),
    7: (IMAGE_TEXT, IMAGE),
    8: (IMAGE_TEXT, IMAGE_TEXT),
}
TASK_OF_MODALITIES = {pair: task for task, pair in TASKS.items()}

_ids = pa.list_(pa.string())

QUERIES = pa.schema(
    [
        pa.field("query_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("task_id", pa.int8(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("instruction", pa.string()),
        # Every prompt the query may be given (M-BEIR: its task's four; others: [] or [instruction]),
        # so a trainer can draw one per (query, step) as UniIR does; `instruction` is the seeded choice.
        pa.field("instruction_options", pa.list_(pa.string()), nullable=False),
        pa.field("text", pa.string()),
        pa.field("original_text", pa.string()),  # the text as the source wrote it (MMEB: instruction included)
        pa.field("image_path", pa.string()),
        pa.field("modality", pa.string(), nullable=False),
        pa.field("positive_ids", _ids, nullable=False),
        pa.field("negative_ids", _ids, nullable=False),
        # Per-query candidate set (MMEB eval: the query's own candidates); empty = use `pool`.
        pa.field("candidate_ids", _ids, nullable=False),
        pa.field("pool", pa.string()),
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("source_line", pa.int64(), nullable=False),
    ]
)

CANDIDATES = pa.schema(
    [
        pa.field("candidate_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("dataset", pa.string()),
        pa.field("text", pa.string()),
        pa.field("original_text", pa.string()),
        pa.field("image_path", pa.string()),
        pa.field("modality", pa.string(), nullable=False),
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("source_line", pa.int64(), nullable=False),
    ]
)

#: Pool membership: M-BEIR local pools (``<ds>_task<id>``) and global pools (``union_<split>``).
POOLS = pa.schema(
    [
        pa.field("pool", pa.string(), nullable=False),
        pa.field("candidate_id", pa.string(), nullable=False),
    ]
)

#: Per-dataset metadata the evaluation needs (MMEB meta-task and IND/OOD group).
DATASETS = pa.schema(
    [
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("meta_task", pa.string()),
        pa.field("eval_group", pa.string()),
    ]
)

QUARANTINE = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("table", pa.string(), nullable=False),
        pa.field("record_id", pa.string()),
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("source_line", pa.int64(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string()),
    ]
)

ARTIFACTS = {
    "queries": QUERIES,
    "candidates": CANDIDATES,
    "pools": POOLS,
    "datasets": DATASETS,
    "quarantine": QUARANTINE,
}
