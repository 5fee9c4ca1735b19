"""On-disk embedding cache: sharded, resumable, keyed by exactly what produced it (design.md §3.3).

``<cache_root>/<key digest>/`` holds ``shard_00000.npy``... while encoding, then
``embeddings.npy`` (memory-mappable, float16 or float32), ``ids.txt`` and ``meta.json``, written
last, which marks the entry complete. A killed job leaves finished shards (each written
atomically); rerunning the same call encodes only the missing ones. The key covers the model
and adapter files, the data table and the exact id list, the embedding mode and the dtype, so
the same key is free to reuse and any change re-encodes into a new entry.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..artifacts import atomic_path, write_json

log = logging.getLogger(__name__)
DTYPES = {"float16": np.float16, "float32": np.float32}
_EDGE = 4 << 20  # bytes hashed at each end of large weight files


def file_digest(path: str | os.PathLike, full: bool = True) -> str:
    """``size:sha256`` of a file; ``full=False`` hashes only both ends of large files (weights)."""
    path = Path(path)
    h = hashlib.sha256()
    size = path.stat().st_size
    with open(path, "rb") as f:
        if full or size <= 2 * _EDGE:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        else:  # weights: size + both ends (a changed tensor changes them; cheap for 15 GB checkpoints)
            h.update(f.read(_EDGE))
            f.seek(size - _EDGE)
            h.update(f.read(_EDGE))
    return f"{size}:{h.hexdigest()}"


def fingerprint_model_dir(path: str | os.PathLike | None) -> str | None:
    """Digest of a model or adapter directory's configs and weights (None for None)."""
    if path is None:
        return None
    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.suffix in (".json", ".safetensors", ".bin", ".model"))
    if not files:
        raise FileNotFoundError(f"{path}: no model files to fingerprint")
    h = hashlib.sha256()
    for p in files:
        h.update(f"{p.name}={file_digest(p, full=p.suffix == '.json')}\n".encode())
    return h.hexdigest()


def fingerprint_table(path: str | os.PathLike, ids: Sequence[str]) -> str:
    h = hashlib.sha256(file_digest(path).encode())
    for i in ids:
        h.update(i.encode() + b"\0")
    return h.hexdigest()


def cache_key(model_dir, adapter_dir, table_path, ids: Sequence[str], mode: dict, dtype: str) -> dict:
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    return {"model": fingerprint_model_dir(model_dir), "adapter": fingerprint_model_dir(adapter_dir),
            "data": fingerprint_table(table_path, ids), "n": len(ids), "mode": mode, "dtype": dtype}


def key_digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]


@dataclass
class CachedEmbeddings:
    path: Path
    ids: list[str]
    embeddings: np.ndarray  # memory-mapped, read-only


def load_cached(path: str | os.PathLike, expected_key: dict | None = None) -> CachedEmbeddings:
    """Open a complete cache entry; a different key than ``expected_key`` is an error, never reused."""
    path = Path(path)
    meta_file = path / "meta.json"
    if not meta_file.is_file():
        raise FileNotFoundError(f"{path}: not a complete embedding cache entry (no meta.json)")
    meta = json.loads(meta_file.read_text())
    if expected_key is not None and meta["key"] != expected_key:
        diff = sorted(k for k in expected_key if meta["key"].get(k) != expected_key[k])
        raise ValueError(f"{path}: embedding cache was made with a different {diff}; refusing to reuse it")
    ids = (path / "ids.txt").read_text().split("\n")[:-1]
    array = np.load(path / "embeddings.npy", mmap_mode="r")
    if array.shape[0] != len(ids) or len(ids) != meta["key"]["n"]:
        raise ValueError(f"{path}: {array.shape[0]} embeddings for {len(ids)} ids; entry is corrupt")
    return CachedEmbeddings(path, ids, array)


def encode_cached(encode: Callable[[range], np.ndarray], ids: Sequence[str], key: dict, cache_root: str | os.PathLike,
                  shard_size: int = 4096) -> CachedEmbeddings:
    """Encode rows ``0..len(ids)`` with ``encode(row_range)`` into the entry for ``key``, resuming shards."""
    if not ids:
        raise ValueError("nothing to encode: empty id list")
    entry = Path(cache_root) / key_digest(key)
    if (entry / "meta.json").is_file():
        log.info("embedding cache hit: %s", entry)
        return load_cached(entry, key)
    entry.mkdir(parents=True, exist_ok=True)
    write_json(key, entry / "key.json")
    dtype = DTYPES[key["dtype"]]
    shards = []
    for n, start in enumerate(range(0, len(ids), shard_size)):
        shard = entry / f"shard_{n:05d}.npy"
        shards.append(shard)
        if shard.is_file():
            continue
        rows = range(start, min(start + shard_size, len(ids)))
        with atomic_path(shard) as tmp, open(tmp, "wb") as f:
            np.save(f, np.asarray(encode(rows), dtype=dtype))
    first = np.load(shards[0], mmap_mode="r")
    with atomic_path(entry / "embeddings.npy") as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=(len(ids), first.shape[1]))
        for n, shard in enumerate(shards):
            block = np.load(shard)
            out[n * shard_size: n * shard_size + len(block)] = block
        out.flush()
        del out
    with atomic_path(entry / "ids.txt") as tmp:
        tmp.write_text("".join(f"{i}\n" for i in ids))
    write_json({"key": key, "shape": [len(ids), int(first.shape[1])]}, entry / "meta.json")
    for shard in shards:
        shard.unlink()
    return load_cached(entry, key)
