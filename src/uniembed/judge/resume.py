"""Resume keys and shard bookkeeping of the judge (UniME-V2, "MLLM-as-a-Judge for Hard Negatives Mining").

A judge score depends on the pairs, the judge weights, the backend and its scoring settings
(dtype, top_logprobs, engine or server arguments), the prompt and the judge's code.
:func:`resume_key` holds all of them; :func:`open_run_dir` gives each key its own directory
``<shard_dir>/<key digest>/`` (``manifest.json`` = the key), so a changed key starts fresh and never
mixes with other shards. Batch size, concurrency, timeouts and retries are not in the key: they do
not change a score.

Life of a run directory: ``shard-NNNNN.parquet`` files are written atomically, each carrying its
plan (key digest, index, pair digest, row count, query ids) in its Parquet metadata, and a
resumed shard must match the plan (:func:`read_shard`) or the run is refused. ``FINISHED`` is
written after the final table: a finished run directory is discarded at the next start, so
rerunning a finished judge (``snakemake --forcerun judge``) scores again while a killed judge
resumes. Orphan ``.*.tmp`` files of killed atomic writes are removed at start. The parts of a scatter share
their key's directory, each scoring its own shards (:func:`open_run_dir` ``own``); none marks it finished, so
changing the number of parts, or going from parts to one job, scores no shard again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Collection, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from ..artifacts import atomic_path, write_json
from ..embed.cache import fingerprint_model_dir
from ..mine.schemas import JUDGE_SCORES
from ..provenance import code_version
from .pairs import JudgePair, pairs_digest
from .prompt import prompt_hash

log = logging.getLogger(__name__)
MANIFEST, FINISHED = "manifest.json", "FINISHED"
SHARD_META = b"uniembed.judge_shard"


def weights_digest(model: str | os.PathLike | None) -> str | None:
    """Digest of a local judge model directory's configs and whole weight files; None for a hub or served name.

    Whole files (``full``): a merged fine-tune of the same base can share both ends of its weights.
    """
    if model is None or not Path(model).is_dir():
        return None
    return fingerprint_model_dir(model, full=True)


def resume_key(pairs: Sequence[JudgePair], queries_per_shard: int, backend) -> dict:
    """Everything that determines the scores of ``pairs``: the shard directory is keyed by it.

    ``backend.settings`` (a JSON-able dict: backend name, weights digest, scoring settings) is
    part of the key; a backend without it is keyed by its ``model_id`` alone.
    """
    return {"pairs_digest": pairs_digest(pairs), "num_pairs": len(pairs), "queries_per_shard": queries_per_shard,
            "judge_model": backend.model_id, "backend": dict(getattr(backend, "settings", None) or {}),
            "prompt_hash": prompt_hash(), "code_version": code_version("judge")}


def _canonical(key: dict) -> str:
    return json.dumps(key, sort_keys=True, default=str)


def key_digest(key: dict) -> str:
    return hashlib.sha256(_canonical(key).encode()).hexdigest()[:20]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_orphans(directory: Path, pattern: str = ".*.tmp", of: Collection[str] | None = None) -> int:
    """Delete what killed atomic writes left in ``directory`` (``pattern``; with ``of``, only the temporaries of
    those final names: ``.<name>.<random>.tmp``); returns how many."""
    orphans = sorted(directory.glob(pattern)) if directory.is_dir() else []
    if of is not None:
        orphans = [orphan for orphan in orphans if orphan.name[1:].rsplit(".", 2)[0] in of]
    for orphan in orphans:
        log.info("removing %s, left by a killed write", orphan)
        _remove(orphan)
    return len(orphans)


def open_run_dir(shard_dir: str | os.PathLike, key: dict, own: Sequence[int] | None = None) -> Path:
    """``<shard_dir>/<key digest>/``, created or resumed; finished run directories are discarded first.

    ``own``: the shards a part of a scatter scores (the other parts score theirs into the same directory at the
    same time): it removes only its own shards' orphans and keeps its key's directory even when finished, so a
    part resumes every shard of its key a one-job run or parts of another N scored (docs/slurm.md "Parts")."""
    shard_dir = Path(shard_dir)
    shard_dir.mkdir(parents=True, exist_ok=True)
    remove_orphans(shard_dir)
    digest = key_digest(key)
    for child in sorted(shard_dir.iterdir()):
        if child.is_dir() and (child / FINISHED).is_file() and not (own is not None and child.name == digest):
            log.info("discarding the finished judge run %s: a rerun of a finished judge scores again", child)
            trash = Path(tempfile.mkdtemp(prefix=f".{child.name}.", suffix=".tmp", dir=shard_dir))
            try:
                os.replace(child, trash / child.name)  # atomic: a kill now leaves an orphan, never half a run
            except FileNotFoundError:   # another part discarded it first
                pass
            shutil.rmtree(trash, ignore_errors=True)
    legacy = sorted(shard_dir.glob("shard-*.parquet"))
    if legacy:
        log.warning("%s holds %d judge shards of an older layout (no resume key); they are ignored",
                    shard_dir, len(legacy))
    run_dir = shard_dir / digest
    run_dir.mkdir(exist_ok=True)
    remove_orphans(run_dir, of=None if own is None else {shard_path(run_dir, index).name for index in own})
    manifest = run_dir / MANIFEST
    if manifest.is_file():
        found = json.loads(manifest.read_text())
        expected = json.loads(_canonical(key))
        if found != expected:
            differ = sorted(k for k in set(found) | set(expected) if found.get(k) != expected.get(k))
            raise ValueError(f"{manifest}: the resume key differs from this run's (fields {differ}); this directory "
                             f"was not written for key {run_dir.name}. Delete {run_dir} to start over.")
    else:
        write_json(json.loads(_canonical(key)), manifest)
    return run_dir


def mark_finished(run_dir: Path, out_path: str | os.PathLike) -> None:
    write_json({"output": str(out_path)}, Path(run_dir) / FINISHED)


def shard_plan(run_dir: Path, index: int, shard: Sequence[JudgePair]) -> dict:
    """What shard ``index`` of this run must hold (stored in the shard's Parquet metadata)."""
    query_ids = list(dict.fromkeys(p.query_id for p in shard))
    return {"key": Path(run_dir).name, "index": index, "num_pairs": len(shard),
            "pairs_digest": pairs_digest(shard), "query_ids": query_ids}


def shard_path(run_dir: Path, index: int) -> Path:
    return Path(run_dir) / f"shard-{index:05d}.parquet"


def write_shard(table: pa.Table, path: Path, plan: dict) -> None:
    table = table.select(JUDGE_SCORES.names).cast(JUDGE_SCORES)
    table = table.replace_schema_metadata({SHARD_META: json.dumps(plan).encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_shard(path: Path, plan: dict, shard: Sequence[JudgePair], model_id: str, phash: str) -> pa.Table | None:
    """The finished shard at ``path`` (None when absent), verified against ``plan``; ValueError otherwise."""
    if not path.is_file():
        return None
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as error:
        raise ValueError(f"{path}: judge shard {plan['index']} cannot be read ({error}). "
                         f"Delete {path.parent} to start over.") from error
    problems = []
    meta = (table.schema.metadata or {}).get(SHARD_META)
    found = json.loads(meta) if meta else None
    if found is None:
        problems.append("it has no shard plan in its metadata")
    else:
        problems += [f"{field} is {found.get(field)!r}, expected {value!r}"
                     for field, value in plan.items() if found.get(field) != value]
    if not table.schema.equals(JUDGE_SCORES, check_metadata=False):
        problems.append(f"its schema is not JUDGE_SCORES: {table.schema}")
    elif table.num_rows != len(shard):
        problems.append(f"it has {table.num_rows} rows, expected {len(shard)}")
    else:
        rows = zip(*(table[c].to_pylist() for c in ("query_id", "candidate_id", "is_positive", "rank")))
        for i, (row, pair) in enumerate(zip(rows, shard)):
            expected = (pair.query_id, pair.candidate_id, pair.is_positive, pair.rank)
            if row != expected:
                problems.append(f"row {i} is {row}, expected {expected}")
                break
        for column, value in (("judge_model", model_id), ("prompt_hash", phash)):
            others = set(table[column].to_pylist()) - {value}
            if others:
                problems.append(f"column {column} holds {sorted(others)}, expected {value!r}")
    if problems:
        raise ValueError(f"{path}: judge shard {plan['index']} is not the piece this run expects: "
                         f"{'; '.join(problems)}. Delete {path.parent} to start over.")
    return table.replace_schema_metadata(None)
