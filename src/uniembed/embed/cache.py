"""On-disk embedding cache: sharded, resumable, keyed by exactly what produced it (docs/evaluation.md, the embedding cache).

``<cache_root>/<key digest>/`` holds ``shard_<start>_<stop>.npz`` files while encoding (each
written atomically with its row range and ids), then ``embeddings.npy`` (memory-mappable,
float16 or float32), ``ids.txt`` and ``meta.json``, written last, which marks the entry complete.
A killed job leaves finished shards; rerunning the call, with any ``shard_size``, reuses every
shard that verifies (range, row count, ids, dtype), encodes the gaps and checks that every row is
covered exactly once before writing meta.json. A complete entry is checked again when loaded.
The key covers the model and adapter files (fully hashed), the data table and the exact id
list, the embedding mode, the cache dtype, the compute device/dtype and the code version of the
embedding code, so the same key is free to reuse and any change re-encodes into a new entry.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ..artifacts import atomic_path, remove_orphans, sha256_file, verified_sha256, verify_artifact, write_json
from ..provenance import code_version

log = logging.getLogger(__name__)
DTYPES = {"float16": np.float16, "float32": np.float32}
_EDGE = 4 << 20  # bytes hashed at each end of large weight files


_MEMO: dict[tuple, str] = {}  # (path, stat, full) -> digest: a model is hashed once per process


def file_digest(path: str | os.PathLike, full: bool = True) -> str:
    """``size:sha256`` of a file; ``full=False`` hashes only both ends of large files (weights).

    Memoised per process on the file's inode, size, mtime and ctime (any write changes ctime); a whole
    file this process verified against an artifact manifest (unchanged size and mtime) is not read again.
    """
    path = Path(path)
    st = path.stat()
    if full or st.st_size <= 2 * _EDGE:
        verified = verified_sha256(path)
        if verified is not None:
            return f"{st.st_size}:{verified}"
    memo = (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, full)
    if memo in _MEMO:
        return _MEMO[memo]
    size = st.st_size
    if full or size <= 2 * _EDGE:
        _MEMO[memo] = f"{size}:{sha256_file(path)}"
        return _MEMO[memo]
    h = hashlib.sha256()
    with open(path, "rb") as f:  # both ends only: cheap, but blind to tensors in the middle (not for embedding keys)
        h.update(f.read(_EDGE))
        f.seek(size - _EDGE)
        h.update(f.read(_EDGE))
    _MEMO[memo] = f"{size}:{h.hexdigest()}"
    return _MEMO[memo]


def fingerprint_model_dir(path: str | os.PathLike | None, full: bool = False) -> str | None:
    """Digest of a model or adapter directory's configs and weights (None for None).

    Weights are hashed at both ends unless ``full``: two fine-tunes of one base can share both ends
    (the changed LoRA targets sit in the middle of the file), so keys of derived results use ``full``.
    With ``full``, a directory with an artifact manifest is verified first (the digests are shared).
    """
    if path is None:
        return None
    path = Path(path)
    if full:
        verify_artifact(path)
    files = sorted(p for p in path.iterdir() if p.suffix in (".json", ".safetensors", ".bin", ".model"))
    if not files:
        raise FileNotFoundError(f"{path}: no model files to fingerprint")
    h = hashlib.sha256()
    for p in files:
        h.update(f"{p.name}={file_digest(p, full=full or p.suffix == '.json')}\n".encode())
    return h.hexdigest()


def fingerprint_table(path: str | os.PathLike, ids: Sequence[str]) -> str:
    return hashlib.sha256((file_digest(path) + ids_digest(ids)).encode()).hexdigest()


FORMAT = 2  # entry layout: verifiable shards, ids digest in meta.json


def cache_key(model_dir, adapter_dir, table_path, ids: Sequence[str], mode: dict, dtype: str, *,
              compute: dict | None = None, generated: dict | None = None) -> dict:
    """Everything that determines the embeddings: model, adapter, data + ids, mode, dtypes, device, code.

    Data made in memory instead of read from a table (``table_path`` None) is ``generated``: the generator's settings
    and code version, which with the ids determine every item."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    if (table_path is None) == (generated is None):
        raise ValueError("exactly one of table_path and generated describes the data")
    data = (fingerprint_table(table_path, ids) if generated is None else
            hashlib.sha256((json.dumps(generated, sort_keys=True) + ids_digest(ids)).encode()).hexdigest())
    return {"format": FORMAT, "code": code_version("embed", "model"),
            "model": fingerprint_model_dir(model_dir, full=True),
            "adapter": fingerprint_model_dir(adapter_dir, full=True),
            "data": data, "n": len(ids), "mode": mode, "dtype": dtype, "compute": compute}


def key_digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]


@dataclass
class CachedEmbeddings:
    path: Path
    ids: list[str]
    embeddings: np.ndarray  # memory-mapped, read-only


def ids_digest(ids: Sequence[str]) -> str:
    h = hashlib.sha256()
    for i in ids:
        h.update(i.encode() + b"\0")
    return h.hexdigest()


def _first_difference(found: Sequence[str], expected: Sequence[str]) -> str:
    for k, (a, b) in enumerate(zip(found, expected)):
        if a != b:
            return f"row {k} is {a!r}, expected {b!r}"
    return f"{len(found)} ids, expected {len(expected)}"


def load_cached(path: str | os.PathLike, expected_key: dict | None = None,
                expected_ids: Sequence[str] | None = None) -> CachedEmbeddings:
    """Open a complete cache entry and check it: key, ids (against meta.json and ``expected_ids``), shape, dtype.

    A different key than ``expected_key`` or any inconsistency is an error naming the file; never reused.
    """
    path = Path(path)
    meta_file = path / "meta.json"
    if not meta_file.is_file():
        raise FileNotFoundError(f"{path}: not a complete embedding cache entry (no meta.json)")
    try:
        meta = json.loads(meta_file.read_text())
        key, shape = meta["key"], tuple(meta["shape"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{meta_file}: unreadable embedding cache metadata ({error!r})") from error
    if expected_key is not None and key != expected_key:
        diff = sorted(k for k in set(expected_key) | set(key) if key.get(k) != expected_key.get(k))
        raise ValueError(f"{path}: embedding cache was made with a different {diff}; refusing to reuse it")
    fix = f"; delete {path} to re-encode"
    ids = (path / "ids.txt").read_text().split("\n")[:-1]
    if len(ids) != shape[0] or len(ids) != key.get("n"):
        raise ValueError(f"{path / 'ids.txt'}: {len(ids)} ids, but meta.json says shape {list(shape)} "
                         f"and n={key.get('n')}{fix}")
    if ids_digest(ids) != meta.get("ids_sha256"):
        raise ValueError(f"{path / 'ids.txt'}: ids do not match the digest in meta.json{fix}")
    if expected_ids is not None and list(expected_ids) != ids:
        raise ValueError(f"{path / 'ids.txt'}: not the ids asked for: {_first_difference(ids, expected_ids)}{fix}")
    try:
        array = np.load(path / "embeddings.npy", mmap_mode="r")
    except (OSError, ValueError) as error:
        raise ValueError(f"{path / 'embeddings.npy'}: unreadable ({error}){fix}") from error
    if array.shape != shape or array.dtype != DTYPES.get(key.get("dtype")):
        raise ValueError(f"{path / 'embeddings.npy'}: {array.dtype} {list(array.shape)}, but meta.json says "
                         f"{key.get('dtype')} {list(shape)}{fix}")
    return CachedEmbeddings(path, ids, array)


class ShardError(ValueError):
    """A shard that is not the piece of the entry it claims to be (discarded on resume)."""


def shard_name(start: int, stop: int) -> str:
    return f"shard_{start:012d}_{stop:012d}.npz"


def write_shard(path: Path, start: int, stop: int, ids: Sequence[str], block: np.ndarray) -> None:
    """Write rows ``start..stop`` atomically, with their row range and ids, so a resume can verify them."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, start=np.int64(start), stop=np.int64(stop), ids=np.array(ids[start:stop], dtype=str),
                 embeddings=block)


def read_shard(path: Path, ids: Sequence[str], dtype, dim: int | None = None) -> tuple[int, int, np.ndarray]:
    """Load a shard and check it is rows ``start..stop`` of ``ids``: range, row count, ids, dtype and width."""
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ShardError(f"{path}: not a verifiable shard (no stored row range and ids; older format)")
        with data:
            start, stop, block = int(data["start"]), int(data["stop"]), data["embeddings"]
            shard_ids = data["ids"].tolist()
    except ShardError:
        raise
    except (OSError, ValueError, KeyError, EOFError, TypeError, zipfile.BadZipFile) as error:
        raise ShardError(f"{path}: unreadable shard ({type(error).__name__}: {error})") from error
    if not 0 <= start < stop <= len(ids) or path.name != shard_name(start, stop):
        raise ShardError(f"{path}: stored row range {start}..{stop} does not match its name or 0..{len(ids)}")
    if block.ndim != 2 or block.shape[0] != stop - start or len(shard_ids) != stop - start:
        raise ShardError(f"{path}: {list(block.shape)} embeddings and {len(shard_ids)} ids for the "
                         f"{stop - start} rows {start}..{stop}")
    if shard_ids != list(ids[start:stop]):
        difference = _first_difference(shard_ids, ids[start:stop])
        raise ShardError(f"{path}: ids differ from rows {start}..{stop}: {difference}")
    if block.dtype != dtype or (dim is not None and block.shape[1] != dim):
        raise ShardError(f"{path}: {block.dtype} width {block.shape[1]}, expected {np.dtype(dtype)}"
                         + (f" width {dim}" if dim is not None else ""))
    return start, stop, block


def _plan(entry: Path, ids: list[str], dtype, shard_size: int) -> tuple[list[tuple[int, int, Path, bool]], int | None]:
    """Tile rows ``0..n`` with the verified shards on disk plus new ranges of ``shard_size`` for the gaps.

    Returns ``(start, stop, path, exists)`` in row order and the width of the reused shards; every
    shard that fails verification or overlaps a chosen one is deleted with a log line.
    """
    found: dict[int, list[tuple[int, Path, int]]] = {}
    for path in sorted(entry.glob("shard_*")):
        try:
            start, stop, block = read_shard(path, ids, dtype)
        except ShardError as error:
            log.warning("discarding embedding shard: %s", error)
            path.unlink()
            continue
        found.setdefault(start, []).append((stop, path, block.shape[1]))
    plan, dim, pos, used = [], None, 0, set()
    starts = sorted(found)
    while pos < len(ids):
        usable = [s for s in found.get(pos, []) if dim is None or s[2] == dim]
        if usable:
            stop, path, dim = max(usable)
            plan.append((pos, stop, path, True))
            used.add(path)
        else:
            stop = min([pos + shard_size, len(ids)] + [s for s in starts if s > pos])
            plan.append((pos, stop, entry / shard_name(pos, stop), False))
        pos = stop
    for stop_path_dims in found.values():
        for _, path, _ in stop_path_dims:
            if path not in used:
                log.warning("discarding embedding shard %s: overlaps the shards kept for this entry", path)
                path.unlink()
    if used:
        log.info("resuming %s: %d of %d shards already encoded", entry, len(used), len(plan))
    return plan, dim


@contextlib.contextmanager
def _owned(entry: Path) -> Iterator[bool]:
    """Hold the entry's lock (one encoder per entry, released by the kernel if killed).

    Yields False where the filesystem has no locks: then nothing may be removed that a live job writes.
    """
    with open(entry / ".lock", "a") as handle:
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("%s: another job is encoding this entry; waiting for it", entry)
                fcntl.flock(handle, fcntl.LOCK_EX)
            locked = True
        except OSError as error:
            log.warning("%s: cannot lock (%s); not removing temporaries another job may be writing", entry, error)
            locked = False
        try:
            yield locked
        finally:
            if locked:
                fcntl.flock(handle, fcntl.LOCK_UN)


def claim_entry(entry: Path, key: dict) -> None:
    """Write ``key.json`` into ``entry``, or check the one there is ``key`` (never write into another key's entry)."""
    if (entry / "key.json").is_file():
        if json.loads((entry / "key.json").read_text()) != key:
            raise ValueError(f"{entry / 'key.json'}: this entry belongs to a different key; refusing to write into it")
    else:
        write_json(key, entry / "key.json")


def encode_shard(encode: Callable[[range], np.ndarray], path: Path, start: int, stop: int, ids: Sequence[str],
                 dtype, dim: int | None) -> int:
    """Encode rows ``start..stop`` into the shard at ``path``, checking the block's shape; the width."""
    block = np.asarray(encode(range(start, stop)), dtype=dtype)
    if block.ndim != 2 or block.shape[0] != stop - start or (dim is not None and block.shape[1] != dim):
        raise ValueError(f"{path.parent}: the encoder returned shape {list(block.shape)} for rows {start}..{stop}, "
                         f"expected [{stop - start}, {dim if dim is not None else 'd'}]")
    write_shard(path, start, stop, ids, block)
    return block.shape[1]


def encode_cached(encode: Callable[[range], np.ndarray] | None, ids: Sequence[str], key: dict,
                  cache_root: str | os.PathLike, shard_size: int = 4096) -> CachedEmbeddings:
    """Encode rows ``0..len(ids)`` with ``encode(row_range)`` into the entry for ``key``, resuming verified shards.

    Before meta.json is written the shards must cover every row exactly once; shards from a run with
    another ``shard_size`` are reused where they verify, the gaps are encoded. ``encode=None`` gathers the
    shards that parts encoded (:mod:`uniembed.embed.cache_parts`): a gap is an error naming its rows.
    """
    if not ids:
        raise ValueError("nothing to encode: empty id list")
    ids = list(ids)
    if key.get("n") != len(ids):
        raise ValueError(f"the cache key is for n={key.get('n')} ids but {len(ids)} were given")
    if bad := next((i for i in ids if "\n" in i), None):
        raise ValueError(f"id {bad!r} contains a newline; ids.txt cannot hold it")
    if shard_size < 1:
        raise ValueError(f"shard_size must be positive, got {shard_size}")
    entry = Path(cache_root) / key_digest(key)
    if (entry / "meta.json").is_file():
        log.info("embedding cache hit: %s", entry)
        return load_cached(entry, key, ids)
    entry.mkdir(parents=True, exist_ok=True)
    with _owned(entry) as owned:
        if (entry / "meta.json").is_file():  # another job finished it while we waited for the lock
            return load_cached(entry, key, ids)
        if owned and (orphans := remove_orphans(entry)):
            log.info("%s: removed %d orphan temporaries of killed jobs: %s", entry, len(orphans),
                     ", ".join(p.name for p in orphans))
        claim_entry(entry, key)
        dtype = DTYPES[key["dtype"]]
        plan, dim = _plan(entry, ids, dtype, shard_size)
        gaps = [(start, stop) for start, stop, _, exists in plan if not exists]
        if encode is None and gaps:
            merged = [list(gaps[0])]
            for start, stop in gaps[1:]:
                if start == merged[-1][1]:
                    merged[-1][1] = stop
                else:
                    merged.append([start, stop])
            raise ValueError(f"{entry}: rows {', '.join(f'{a}..{b}' for a, b in merged)} of {len(ids)} have no verified "
                             f"shard and this job only gathers the parts' shards; rerun the encode part that owns them")
        for start, stop, path, exists in plan:
            if exists:
                continue
            dim = encode_shard(encode, path, start, stop, ids, dtype, dim)
        _assemble(entry, ids, dtype, dim, [path for *_, path, _ in plan])
        write_json({"key": key, "shape": [len(ids), dim], "ids_sha256": ids_digest(ids)}, entry / "meta.json")
        for *_, path, _ in plan:
            path.unlink()
    return load_cached(entry, key, ids)


def _assemble(entry: Path, ids: list[str], dtype, dim: int, shards: list[Path]) -> None:
    """Write embeddings.npy and ids.txt from verified shards; every row must be covered exactly once."""
    covered = np.zeros(len(ids), dtype=bool)
    with atomic_path(entry / "embeddings.npy") as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=(len(ids), dim))
        for path in shards:
            start, stop, block = read_shard(path, ids, dtype, dim)
            if covered[start:stop].any():
                raise ValueError(f"{path}: rows {start}..{stop} overlap another shard of {entry}")
            covered[start:stop] = True
            out[start:stop] = block
        if not covered.all():
            missing = np.flatnonzero(~covered)
            raise ValueError(f"{entry}: {len(missing)} rows have no shard (first: row {missing[0]}, "
                             f"id {ids[missing[0]]!r}); not marking the entry complete")
        out.flush()
        del out
    with atomic_path(entry / "ids.txt") as tmp:
        tmp.write_text("".join(f"{i}\n" for i in ids))
