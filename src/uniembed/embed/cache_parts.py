"""One part of an embedding-cache entry, encoded by its own cluster job (docs/slurm.md "Parts").

An entry of ``n`` rows is tiled by shards of ``shard_size`` rows from row 0, as a one-job encode tiles it
(:func:`uniembed.embed.cache.encode_cached`); part ``p`` of ``N`` encodes its contiguous whole shards
(:func:`uniembed.parts.part_range`) into the entry's directory and returns its plan (the key's digest, n, the
shard size, the part and its rows). Parts of one entry run side by side (a shared lock: a whole-entry encode
waits for them); each resumes its own verified shards. The gather is :func:`encode_cached` with no encoder: it
verifies every shard (range, ids, dtype, width), requires every row covered exactly once, and assembles the
entry, so the parts give the one-job run's embeddings byte for byte (same shards, same batches).
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import os
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ..parts import part_range
from .cache import DTYPES, ShardError, claim_entry, encode_shard, key_digest, read_shard, shard_name

log = logging.getLogger(__name__)


def part_plan(n: int, key: dict, shard_size: int, part: int, parts: int) -> dict:
    """What part ``part`` of ``parts`` of the entry for ``key`` encodes: rows ``[start, stop)`` of whole shards."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be positive, got {shard_size}")
    first, last = part_range(math.ceil(n / shard_size), part, parts)
    return {"entry": key_digest(key), "n": n, "shard_size": shard_size, "part": part, "parts": parts,
            "rows": [first * shard_size, min(last * shard_size, n)]}


@contextlib.contextmanager
def _shared(entry: Path) -> Iterator[None]:
    """A shared lock on the entry: parts run side by side, a whole-entry encode (exclusive) waits for them."""
    with open(entry / ".lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH)
        except OSError as error:
            log.warning("%s: cannot lock (%s)", entry, error)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(handle, fcntl.LOCK_UN)


def encode_part(encode: Callable[[range], np.ndarray], ids: Sequence[str], key: dict, cache_root: str | os.PathLike,
                shard_size: int, part: int, parts: int) -> dict:
    """Encode the shards of part ``part`` of ``parts`` of the entry for ``key`` (verified ones are kept); its plan."""
    ids = list(ids)
    if not ids or key.get("n") != len(ids):
        raise ValueError(f"the cache key is for n={key.get('n')} ids but {len(ids)} were given")
    plan = part_plan(len(ids), key, shard_size, part, parts)
    entry = Path(cache_root) / plan["entry"]
    if (entry / "meta.json").is_file():
        log.info("embedding cache entry %s is complete: part %d of %d has nothing to encode", entry, part, parts)
        return plan
    entry.mkdir(parents=True, exist_ok=True)
    dtype = DTYPES[key["dtype"]]
    with _shared(entry):
        claim_entry(entry, key)
        start, stop = plan["rows"]
        dim, encoded = None, 0
        for first in range(start, stop, shard_size):
            last = min(first + shard_size, stop)
            path = entry / shard_name(first, last)
            if path.is_file():
                try:
                    dim = read_shard(path, ids, dtype, dim)[2].shape[1]
                    continue
                except ShardError as error:
                    log.warning("discarding embedding shard: %s", error)
                    path.unlink()
            dim = encode_shard(encode, path, first, last, ids, dtype, dim)
            encoded += 1
    log.info("%s: part %d of %d, rows %d..%d: %d shards encoded, %d reused", entry, part, parts, start, stop, encoded,
             math.ceil((stop - start) / shard_size) - encoded)
    return plan
