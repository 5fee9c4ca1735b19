"""Contrastive training examples from curated tables, and a resumable batch sampler.

A training example is a query, one positive and optional hard negatives, all as
:class:`~uniembed.embed.embedder.EmbedItem`. In-batch negatives come for free: every other
candidate of the batch (U-MARVEL §3.1.3 and Appendix C eq. 2). Queries with several positives
use one per epoch, chosen by the sampler's seeded RNG (UniIR samples one positive per step).
A query whose task has several instruction prompts (M-BEIR: four per task) gets one drawn at
random each time it is used, from the same per-batch RNG, as UniIR's training data loader does;
evaluation keeps the curated table's one seeded choice per query.

Hard negatives (for the hard-negative stages) come from a Parquet table with columns
``query_id`` (string) and ``negative_ids`` (list<string>); every id must exist.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
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


@dataclass
class TrainingSet:
    queries: list[TrainingQuery]
    candidates: dict[str, EmbedItem]
    source: str


def load_training_set(curated_dir: str | os.PathLike, split: str = "train", *, use_given_negatives: bool = False,
                      hard_negatives: str | os.PathLike | None = None, num_hard_negatives: int = 0) -> TrainingSet:
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
    queries = []
    for r in table.to_pylist():
        if hard_negatives:
            negatives = tuple(mined.get(r["query_id"], ())[:num_hard_negatives])
        else:
            negatives = tuple(r["negative_ids"][:num_hard_negatives]) if use_given_negatives else ()
        queries.append(TrainingQuery(r["query_id"], EmbedItem(r["text"], r["image_path"], r["instruction"]),
                                     tuple(r["positive_ids"]), negatives, tuple(r.get("instruction_options") or ())))
    return TrainingSet(queries, candidates, curated_dir.name)


def _read_hard_negatives(path, candidates: dict) -> dict[str, list[str]]:
    table = pq.read_table(path)
    for column in ("query_id", "negative_ids"):
        if column not in table.column_names:
            raise ValueError(f"{path}: hard-negative table needs column {column!r}; has {table.column_names}")
    out = {}
    for row, (qid, negs) in enumerate(zip(table["query_id"].to_pylist(), table["negative_ids"].to_pylist())):
        unknown = [n for n in negs if n not in candidates]
        if unknown:
            raise ValueError(f"{path}: row {row} (query {qid}) references unknown candidate ids {unknown[:3]}")
        out[qid] = negs
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

    @property
    def size(self) -> int:
        return len(self.queries)


def assemble_batch(data: TrainingSet, indices, rng: np.random.Generator, num_negatives: int = 0) -> Batch:
    """Build the batch for ``indices``; each query contributes exactly ``num_negatives`` negatives.

    A query with fewer negatives than asked repeats its own (UniME-V2 pads by duplication); one
    with none, when some are asked for, is an error naming it.
    """
    queries = [data.queries[i] for i in indices]
    positives = [q.positive_ids[rng.integers(len(q.positive_ids))] for q in queries]
    items = [replace(q.item, instruction=q.instruction_options[rng.integers(len(q.instruction_options))])
             if len(q.instruction_options) > 1 else q.item for q in queries]
    negatives = []
    for q in queries:
        if num_negatives and not q.negative_ids:
            raise ValueError(f"query {q.query_id} has no hard negatives but {num_negatives} are required")
        negatives += [q.negative_ids[j % len(q.negative_ids)] for j in range(num_negatives)]
    ids = positives + negatives
    id_array, pos_array = np.array(ids, dtype=object), np.array(positives, dtype=object)
    exclude = id_array[None, :] == pos_array[:, None]
    exclude[np.arange(len(queries)), np.arange(len(queries))] = False
    return Batch(items, [data.candidates[c] for c in ids], ids, exclude)
