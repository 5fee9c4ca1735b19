"""Contrastive training examples from curated tables, and a resumable batch sampler.

A training example is a query, one positive and optional hard negatives, all as
:class:`~uniembed.embed.embedder.EmbedItem`. In-batch negatives come for free: every other
candidate of the batch (U-MARVEL §3.1.3 and Appendix C eq. 2). Queries with several positives
use one per epoch, chosen by the sampler's seeded RNG (UniIR samples one positive per step).
A query whose task has several instruction prompts (M-BEIR: four per task) gets one drawn at
random each time it is used, from the same per-batch RNG, as UniIR's training data loader does;
evaluation keeps the curated table's one seeded choice per query.

Hard negatives (for the hard-negative stages) come from the filter's ``hard_negatives.parquet``
(schema ``uniembed.mine.schemas.HARD_NEGATIVES``): the negative ids with their scores and the
positive's judge score travel together (UniME-V2's soft labels need them). A query the filter left
without usable negatives (or, for an objective that needs judge scores, without a positive score),
and a training query the table does not cover (the judge scored a subset), is dropped before
training and counted per reason in ``TrainingSet.dropped``; none left is an error naming the
filter summary. Every id must exist.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..artifacts import read_parquet
from ..data.schemas import CANDIDATES, QUERIES
from ..embed.embedder import EmbedItem


@dataclass(frozen=True)
class TrainingQuery:
    query_id: str
    item: EmbedItem
    positive_ids: tuple[str, ...]
    negative_ids: tuple[str, ...]
    instruction_options: tuple[str, ...] = ()
    negative_scores: tuple[float, ...] = ()
    positive_score: float | None = None


@dataclass
class TrainingSet:
    queries: list[TrainingQuery]
    candidates: dict[str, EmbedItem]
    source: str
    dropped: dict[str, int] = field(default_factory=dict)


def load_training_set(curated_dir: str | os.PathLike, split: str = "train", *, use_given_negatives: bool = False,
                      hard_negatives: str | os.PathLike | None = None, num_hard_negatives: int = 0,
                      needs_scores: bool = False) -> TrainingSet:
    """Train queries of one curated source; negatives from the source or a hard-negative table."""
    curated_dir = Path(curated_dir)
    table = read_parquet(curated_dir / "queries.parquet", QUERIES)
    table = table.filter(pc.equal(table["split"], split))
    if table.num_rows == 0:
        summary = curated_dir / "summary.json"
        raise ValueError(f"{curated_dir}: no {split!r} queries to train on (empty or all quarantined; see {summary})")
    cands = read_parquet(curated_dir / "candidates.parquet", CANDIDATES).to_pylist()
    candidates = {c["candidate_id"]: EmbedItem(c["text"], c["image_path"]) for c in cands}
    mined = _read_hard_negatives(hard_negatives, candidates) if hard_negatives else {}
    queries, dropped = [], {}
    for r in table.to_pylist():
        item = EmbedItem(r["text"], r["image_path"], r["instruction"])
        options = tuple(r.get("instruction_options") or ())
        if not hard_negatives:
            negatives = tuple(r["negative_ids"][:num_hard_negatives]) if use_given_negatives else ()
            queries.append(TrainingQuery(r["query_id"], item, tuple(r["positive_ids"]), negatives, options))
            continue
        row = mined.get(r["query_id"])
        reason = _unusable(row, needs_scores)
        if reason:
            dropped[reason] = dropped.get(reason, 0) + 1
            continue
        queries.append(TrainingQuery(r["query_id"], item, tuple(r["positive_ids"]),
                                     tuple(row["negative_ids"][:num_hard_negatives]), options,
                                     tuple(row["negative_scores"][:num_hard_negatives]), row["positive_score"]))
    if not queries:
        summary = Path(hard_negatives).parent / "filter_summary.json" if hard_negatives else curated_dir / "summary.json"
        raise ValueError(f"{hard_negatives or curated_dir}: no {split!r} query has usable hard negatives "
                         f"(dropped: {dropped}); see {summary}")
    return TrainingSet(queries, candidates, curated_dir.name, dropped)


def _unusable(row: dict | None, needs_scores: bool) -> str | None:
    """Why a query cannot train on its hard-negative row (None: it can)."""
    if row is None:
        return "not_in_hard_negative_table"
    if not row["negative_ids"]:
        return f"no_negatives:{row['outcome']}"
    if needs_scores and (row["positive_score"] is None or any(s is None for s in row["negative_scores"])):
        return f"no_judge_scores:{row['outcome']}"
    return None


def _read_hard_negatives(path, candidates: dict) -> dict[str, dict]:
    table = pq.read_table(path)
    for column in ("query_id", "negative_ids", "negative_scores", "positive_score", "outcome"):
        if column not in table.column_names:
            raise ValueError(f"{path}: hard-negative table needs column {column!r}; has {table.column_names}")
    out = {}
    for row, record in enumerate(table.to_pylist()):
        unknown = [n for n in record["negative_ids"] if n not in candidates]
        if unknown:
            raise ValueError(f"{path}: row {row} (query {record['query_id']}) references unknown candidate ids {unknown[:3]}")
        if len(record["negative_scores"]) != len(record["negative_ids"]):
            raise ValueError(f"{path}: row {row} (query {record['query_id']}) has {len(record['negative_ids'])} negatives "
                             f"but {len(record['negative_scores'])} scores")
        out[record["query_id"]] = record
    return out


class BatchSampler:
    """Epoch-wise seeded permutations cut into fixed-size batches; its position is checkpointable.

    ``state()`` / ``load_state()`` capture (epoch, batch) so a resumed run sees exactly the batches
    an uninterrupted run would have seen. The last incomplete batch of an epoch is dropped.
    """

    def __init__(self, n: int, batch_size: int, seed: int):
        if batch_size < 2:
            raise ValueError("a contrastive batch needs at least 2 examples")
        if n < batch_size:
            raise ValueError(f"{n} training examples cannot fill one batch of {batch_size}")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.epoch, self.batch = 0, 0

    @property
    def batches_per_epoch(self) -> int:
        return self.n // self.batch_size

    def next(self) -> tuple[np.ndarray, np.random.Generator]:
        """Indices of the next batch and an RNG for per-example choices (positives) of that batch."""
        if self.batch >= self.batches_per_epoch:
            self.epoch, self.batch = self.epoch + 1, 0
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        start = self.batch * self.batch_size
        rng = np.random.default_rng([self.seed, self.epoch, self.batch])
        self.batch += 1
        return order[start: start + self.batch_size], rng

    def state(self) -> dict:
        return {"epoch": self.epoch, "batch": self.batch}

    def load_state(self, state: dict) -> None:
        self.epoch, self.batch = int(state["epoch"]), int(state["batch"])


@dataclass
class Batch:
    """One global contrastive batch: B queries, then candidates = B chosen positives + B*k negatives.

    ``exclude[i, j]`` is True where candidate j has the id of query i's positive but is not its
    own positive column (a repeated positive, or a mined negative that equals the positive): such
    a logit is masked, so a shared answer is never treated as a negative.
    """

    queries: list
    candidates: list
    candidate_ids: list[str]
    exclude: np.ndarray  # bool [B, B + B*k]
    scores: np.ndarray | None = None  # float [B, 1 + k]: judge scores of [positive, negatives] (UniME-V2)

    @property
    def size(self) -> int:
        return len(self.queries)


def assemble_batch(data: TrainingSet, indices, rng: np.random.Generator, num_negatives: int = 0,
                   with_scores: bool = False) -> Batch:
    """Build the batch for ``indices``; each query contributes exactly ``num_negatives`` negatives.

    A query with fewer negatives than asked repeats its own in order, scores alongside (UniME-V2
    pads by duplication; U-MARVEL's released code repeats); one with none, when some are asked
    for, is an error naming it (the loader drops such queries first).
    """
    queries = [data.queries[i] for i in indices]
    positives = [q.positive_ids[rng.integers(len(q.positive_ids))] for q in queries]
    items = [replace(q.item, instruction=q.instruction_options[rng.integers(len(q.instruction_options))])
             if len(q.instruction_options) > 1 else q.item for q in queries]
    negatives, scores = [], []
    for q in queries:
        if num_negatives and not q.negative_ids:
            raise ValueError(f"query {q.query_id} has no hard negatives but {num_negatives} are required")
        negatives += [q.negative_ids[j % len(q.negative_ids)] for j in range(num_negatives)]
        if with_scores:
            scores.append([q.positive_score] + [q.negative_scores[j % len(q.negative_scores)] for j in range(num_negatives)])
    ids = positives + negatives
    id_array, pos_array = np.array(ids, dtype=object), np.array(positives, dtype=object)
    exclude = id_array[None, :] == pos_array[:, None]
    exclude[np.arange(len(queries)), np.arange(len(queries))] = False
    return Batch(items, [data.candidates[c] for c in ids], ids, exclude,
                 np.asarray(scores, dtype=np.float64) if with_scores else None)
