"""The judge interface and sharded, resumable scoring (UniME-V2, "MLLM-as-a-Judge for Hard Negatives Mining").

A backend turns pairs into :class:`JudgeResult` s: s = e_y / (e_y + e_n) from the judge's
next-token "Yes"/"No" logits (or log-probabilities), or a ``failed`` result with the error, never
a score of 0.

:func:`score_pairs` cuts the pair list into shards of whole queries and writes each finished
shard atomically as ``shard-NNNNN.parquet`` (schema ``JUDGE_SCORES``) in ``shard_dir``. A rerun
skips finished shards and re-scores only their ``failed`` rows, so a crashed server or job
resumes where it stopped. ``shard_dir/manifest.json`` records the pair-list digest, the judge
model id, the prompt hash and the shard size; a rerun with a different manifest is refused.
The final table, in pair order (identical to an uninterrupted run), is written atomically.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import pyarrow as pa
from tqdm import tqdm

from ..artifacts import read_parquet, write_json, write_parquet
from ..mine.schemas import JUDGE_SCORES
from .pairs import JudgePair, pairs_digest
from .prompt import prompt_hash

log = logging.getLogger(__name__)
OK, FAILED = "ok", "failed"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class JudgeResult:
    score: float | None
    yes_logit: float | None
    no_logit: float | None
    status: str
    error: str | None = None

    @classmethod
    def ok(cls, score: float, yes_logit: float, no_logit: float) -> "JudgeResult":
        return cls(float(score), float(yes_logit), float(no_logit), OK, None)

    @classmethod
    def failed(cls, error: str) -> "JudgeResult":
        return cls(None, None, None, FAILED, error)


class JudgeBackend(Protocol):
    """Scores pairs; ``model_id`` names the judge in every output row."""

    model_id: str

    def score(self, pairs: Sequence[JudgePair]) -> list[JudgeResult]: ...


def shard_pairs(pairs: Sequence[JudgePair], queries_per_shard: int) -> list[list[JudgePair]]:
    """Consecutive shards of ``queries_per_shard`` whole queries (each query's pairs must be contiguous)."""
    if queries_per_shard < 1:
        raise ValueError(f"queries_per_shard must be >= 1, got {queries_per_shard}")
    shards: list[list[JudgePair]] = []
    finished: set[str] = set()
    current_query, in_shard = None, 0
    for pair in pairs:
        if pair.query_id != current_query:
            if pair.query_id in finished:
                raise ValueError(f"the pairs of query {pair.query_id} are not contiguous; group pairs by query")
            if current_query is not None:
                finished.add(current_query)
            if not shards or in_shard == queries_per_shard:
                shards.append([])
                in_shard = 0
            current_query, in_shard = pair.query_id, in_shard + 1
        shards[-1].append(pair)
    return shards


def _rows(pairs: Sequence[JudgePair], results: Sequence[JudgeResult], model_id: str, phash: str) -> list[dict]:
    if len(results) != len(pairs):
        raise RuntimeError(f"the judge backend returned {len(results)} results for {len(pairs)} pairs")
    return [{"query_id": p.query_id, "candidate_id": p.candidate_id, "is_positive": p.is_positive,
             "rank": p.rank, "score": r.score, "yes_logit": r.yes_logit, "no_logit": r.no_logit,
             "status": r.status, "error": r.error, "judge_model": model_id, "prompt_hash": phash}
            for p, r in zip(pairs, results)]


def _check_manifest(shard_dir: Path, manifest: dict) -> None:
    path = shard_dir / MANIFEST
    if path.is_file():
        found = json.loads(path.read_text())
        differ = {key: (found.get(key), value) for key, value in manifest.items() if found.get(key) != value}
        if differ:
            details = "; ".join(f"{key}: {old!r} in the shards, {new!r} now" for key, (old, new) in differ.items())
            raise ValueError(f"{shard_dir} holds judge shards of a different run ({details}). "
                             "Use another shard directory, or delete this one to start over.")
    else:
        write_json(manifest, path)


def _shard_done(path: Path, shard: Sequence[JudgePair]) -> pa.Table | None:
    if not path.is_file():
        return None
    table = read_parquet(path, JUDGE_SCORES)
    ids = list(zip(table["query_id"].to_pylist(), table["candidate_id"].to_pylist()))
    if ids != [(p.query_id, p.candidate_id) for p in shard]:
        raise ValueError(f"{path}: its rows are not the pairs of this shard; delete the shard directory to start over")
    return table


def score_pairs(pairs: Sequence[JudgePair], backend: JudgeBackend, out_path: str | os.PathLike,
                shard_dir: str | os.PathLike, queries_per_shard: int = 64, progress: bool = True) -> pa.Table:
    """Score ``pairs`` with ``backend`` shard by shard, resuming from ``shard_dir``; returns the final table."""
    if not pairs:
        raise ValueError("no pairs to judge")
    shard_dir = Path(shard_dir)
    phash = prompt_hash()
    shards = shard_pairs(pairs, queries_per_shard)
    _check_manifest(shard_dir, {"pairs_digest": pairs_digest(pairs), "num_pairs": len(pairs),
                                "judge_model": backend.model_id, "prompt_hash": phash,
                                "queries_per_shard": queries_per_shard})
    tables, resumed, retried = [], 0, 0
    with tqdm(total=len(pairs), desc="judge", unit="pair", disable=not progress, mininterval=1.0) as bar:
        for index, shard in enumerate(shards):
            path = shard_dir / f"shard-{index:05d}.parquet"
            done = _shard_done(path, shard)
            if done is None:
                rows, scored = _rows(shard, backend.score(shard), backend.model_id, phash), len(shard)
            else:
                resumed += 1
                rows = done.to_pylist()
                todo = [i for i, row in enumerate(rows) if row["status"] != OK]
                bar.update(len(rows) - len(todo))
                if not todo:
                    tables.append(done)
                    continue
                subset = [shard[i] for i in todo]
                for i, row in zip(todo, _rows(subset, backend.score(subset), backend.model_id, phash)):
                    rows[i] = row
                retried, scored = retried + len(todo), len(todo)
            table = pa.Table.from_pylist(rows, schema=JUDGE_SCORES)
            write_parquet(table, path, JUDGE_SCORES)
            tables.append(table)
            bar.update(scored)
    result = pa.concat_tables(tables)
    failed = sum(1 for status in result["status"].to_pylist() if status != OK)
    log.info("judge: %d pairs in %d shards (%d resumed, %d failed rows retried); %d failed",
             len(pairs), len(shards), resumed, retried, failed)
    write_parquet(result, out_path, JUDGE_SCORES)
    return result
