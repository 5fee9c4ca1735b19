"""The judge interface and sharded, resumable scoring (UniME-V2, "MLLM-as-a-Judge for Hard Negatives Mining").

A backend turns pairs into :class:`JudgeResult` s: s = e_y / (e_y + e_n) from the judge's
next-token "Yes"/"No" logits (or log-probabilities), or a ``failed`` result with the error, never
a score of 0.

:func:`score_pairs` cuts the pair list into shards of whole queries and writes each finished
shard atomically as ``shard-NNNNN.parquet`` (schema ``JUDGE_SCORES``) in a run directory of
``shard_dir`` keyed by everything that determines a score (:mod:`.resume`: pairs, judge weights,
backend settings, prompt, judge code). A rerun of a killed job skips verified finished shards
and re-scores only their ``failed`` rows; a changed key starts fresh in its own directory; a
finished run (final table written) is scored again. The final table, in pair order (identical
to an uninterrupted run), is written atomically, unless more than ``max_failed_fraction`` of the
pairs failed (:class:`~.failures.JudgeFailureError`; the shards stay for the rerun).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import pyarrow as pa
from tqdm import tqdm

from ..artifacts import write_parquet
from ..mine.schemas import JUDGE_SCORES
from .failures import check_failures, check_limit, failure_summary
from .pairs import JudgePair
from ..model.chat import ChatPrompt
from .prompt import prompt_hash
from .resume import (mark_finished, open_run_dir, read_shard, remove_orphans, resume_key, shard_path, shard_plan,
                     write_shard)

log = logging.getLogger(__name__)
OK, FAILED = "ok", "failed"


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


@dataclass(frozen=True)
class Generation:
    """A greedy generation of a backend (listwise reranking): the new text, or why there is none."""
    text: str | None
    status: str
    error: str | None = None

    @classmethod
    def ok(cls, text: str) -> "Generation":
        return cls(text, OK, None)

    @classmethod
    def failed(cls, error: str) -> "Generation":
        return cls(None, FAILED, error)


class JudgeBackend(Protocol):
    """Scores pairs; ``model_id`` names the judge in every output row; ``settings`` (JSON-able: backend
    name, weights digest, settings that change a score) goes into the resume key (:mod:`.resume`)."""

    model_id: str
    settings: dict

    def score(self, pairs: Sequence[JudgePair]) -> list[JudgeResult]: ...

    def generate(self, prompts: Sequence[ChatPrompt], max_new_tokens: int) -> list[Generation]:
        """Greedy (temperature 0) continuations of whole prompts, in order."""


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


def score_pairs(pairs: Sequence[JudgePair], backend: JudgeBackend, out_path: str | os.PathLike,
                shard_dir: str | os.PathLike, queries_per_shard: int = 64, progress: bool = True,
                max_failed_fraction: float | None = None, part_plan: dict | None = None,
                shard_range: tuple[int, int] | None = None) -> pa.Table:
    """Score ``pairs`` with ``backend`` shard by shard, resuming from ``shard_dir``; returns the final table,
    written to ``out_path``. A part of a scatter (``part_plan``: :mod:`uniembed.judge.parts`) scores the shards
    ``shard_range`` of ``pairs`` into the directory of all of them and writes them as its part."""
    if not pairs:
        raise ValueError("no pairs to judge")
    limit = None if max_failed_fraction is None else check_limit(max_failed_fraction)
    out_path = Path(out_path)
    phash = prompt_hash()
    shards = shard_pairs(pairs, queries_per_shard)
    start, stop = shard_range or (0, len(shards))
    run_dir = open_run_dir(shard_dir, resume_key(pairs, queries_per_shard, backend),
                           own=None if part_plan is None else range(start, stop))
    remove_orphans(out_path.parent, f".{out_path.name}.*.tmp")
    log.info("judge shards: %s%s", run_dir, f" ({start} to {stop - 1} of {len(shards)})" if part_plan else "")
    tables, resumed, retried = [], 0, 0
    scored_pairs = sum(len(shard) for shard in shards[start:stop])
    with tqdm(total=scored_pairs, desc="judge", unit="pair", disable=not progress, mininterval=1.0) as bar:
        for index in range(start, stop):
            shard = shards[index]
            path, plan = shard_path(run_dir, index), shard_plan(run_dir, index, shard)
            done = read_shard(path, plan, shard, backend.model_id, phash)
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
            write_shard(table, path, plan)
            tables.append(table)
            bar.update(scored)
    result = pa.concat_tables(tables)
    summary = failure_summary(result)
    log.info("judge: %d pairs in %d shards (%d resumed, %d failed rows retried); %d failed %s",
             scored_pairs, stop - start, resumed, retried, summary["failed"], summary["by_kind"] or "")
    if limit is not None:
        check_failures(result, limit, f"judge ({run_dir})",
                       "The scored shards are kept: a rerun retries only the failed pairs.")
    if part_plan is None:
        write_parquet(result, out_path, JUDGE_SCORES)
        mark_finished(run_dir, out_path)
    else:   # the other parts may still be scoring into run_dir: it is never marked finished by a part
        from .parts import write_part
        write_part(result, out_path, part_plan)
    return result
