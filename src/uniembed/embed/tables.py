"""Embed a curated table (queries or candidates) through the cache."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from ..artifacts import read_parquet
from ..data.schemas import CANDIDATES, QUERIES
from .cache import CachedEmbeddings, cache_key, encode_cached
from .cache_parts import encode_part, part_plan
from .embedder import EmbedItem, Embedder

_ID = {"queries": "query_id", "candidates": "candidate_id"}
_SCHEMA = {"queries": QUERIES, "candidates": CANDIDATES}


def table_items(table_path: str | os.PathLike, kind: str, ids: Sequence[str] | None = None) -> tuple[list[str], list[EmbedItem]]:
    """Ids and items of a curated table (all rows, or ``ids`` in that order; unknown ids are an error)."""
    table = read_parquet(table_path, _SCHEMA[kind])
    if ids is not None:
        table = table.filter(pc.is_in(table[_ID[kind]], value_set=pa.array(list(ids), type=pa.string())))
        position = {rid: i for i, rid in enumerate(table[_ID[kind]].to_pylist())}
        missing = [i for i in ids if i not in position]
        if missing:
            raise KeyError(f"{table_path}: {len(missing)} ids not in the table, e.g. {missing[:3]}")
        table = table.take([position[i] for i in ids])
    rows = table.select([_ID[kind], "text", "image_path"] + (["instruction"] if kind == "queries" else [])).to_pylist()
    return ([r[_ID[kind]] for r in rows],
            [EmbedItem(r["text"], r["image_path"], r.get("instruction")) for r in rows])


def compute_setting(embedder: Embedder) -> dict:
    """Device type and weight dtype the embedder runs with (bfloat16 on CUDA vs float32 on CPU differ)."""
    weight = next(embedder.model.parameters(), None)
    return {"device": embedder.device.type, "torch_dtype": str(weight.dtype) if weight is not None else None}


def _keyed(embedder: Embedder, table_path, kind: str, ids, model_dir, adapter_dir, dtype: str):
    """(row ids, items, cache key) of a curated table's rows (or ``ids``) for ``embedder``."""
    row_ids, items = table_items(table_path, kind, ids)
    key = cache_key(model_dir, adapter_dir, Path(table_path), row_ids, embedder.mode.as_dict(), dtype,
                    compute=compute_setting(embedder))
    return row_ids, items, key


def embed_table(embedder: Embedder, table_path: str | os.PathLike, kind: str, cache_root: str | os.PathLike, *,
                model_dir, adapter_dir=None, ids: Sequence[str] | None = None, dtype: str = "float32",
                shard_size: int = 4096, batch_size: int = 32, progress: bool = True, part: tuple[int, int] | None = None,
                gather_only: bool = False) -> CachedEmbeddings | dict:
    """Embeddings of a curated table's rows (or ``ids``) through the cache entry keyed by what makes them.

    ``part=(p, N)`` encodes only part p of N of the entry and returns its plan (:mod:`uniembed.embed.cache_parts`);
    ``gather_only`` assembles the entry from the parts' shards and encodes nothing (a missing shard is an error).
    """
    row_ids, items, key = _keyed(embedder, table_path, kind, ids, model_dir, adapter_dir, dtype)

    def encode(rows):
        return embedder.encode([items[i] for i in rows], batch_size=batch_size, progress=progress)
    if part is not None:
        return encode_part(encode, row_ids, key, cache_root, shard_size, *part)
    return encode_cached(None if gather_only else encode, row_ids, key, cache_root, shard_size=shard_size)


def table_part_plan(embedder: Embedder, table_path: str | os.PathLike, kind: str, *, model_dir, adapter_dir=None,
                    ids: Sequence[str] | None = None, dtype: str = "float32", shard_size: int = 4096,
                    part: tuple[int, int]) -> dict:
    """The plan :func:`embed_table` with ``part`` returns, computed without encoding (the gather checks against it)."""
    row_ids, _, key = _keyed(embedder, table_path, kind, ids, model_dir, adapter_dir, dtype)
    return part_plan(len(row_ids), key, shard_size, *part)
