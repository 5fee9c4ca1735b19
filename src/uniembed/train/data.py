"""Contrastive training examples from curated tables, and a resumable batch sampler.

A training example is a query, one positive and optional hard negatives, all as
:class:`~uniembed.embed.embedder.EmbedItem`. In-batch negatives come for free: every other
candidate of the batch (U-MARVEL §3.1.3 and Appendix C eq. 2). Queries with several positives
use one per epoch, chosen by the sampler's seeded RNG (UniIR samples one positive per step).
A query whose task has several instruction prompts (M-BEIR: four per task) gets one drawn at
random each time it is used, from the same per-batch RNG, as UniIR's training data loader does;
evaluation keeps the curated table's one seeded choice per query.

Hard negatives (for the hard-negative stages) come from the filter's ``hard_negatives.parquet``
(schema ``uniembed.mine.schemas.HARD_NEGATIVES``): the negative ids with their scores and each
positive's own judge score travel together. An objective that needs scores (UniME-V2's soft labels,
distillation) trains a query on its positives that have a usable score, and the batch feeds the
sampled positive's *own* score (UniME-V2's training rows pair every positive with its
``query_pos_scores``), never the lowest one the filter's alpha used. A query the filter left without
usable negatives (or, for an objective that needs scores, without a scored positive), and a training
query the table does not cover (the judge scored a subset), is dropped before training and counted
per reason in ``TrainingSet.dropped``; none left is an error naming the filter summary. Every id must
exist, and every stored score must be finite and in range (a judge's P(Yes) in [0, 1]; a cosine or a
fused recall + rerank score in [-1, 1]): a bad one is an error naming the file, the query and the
candidate. Rows the UniME-V2 filter filled by its random fallback (every candidate scored 1.0, the
paper's rule) are counted (``TrainingSet.outcomes``) and, with ``fallback_rows``, kept (the paper),
dropped, or masked (in the batch, as in-batch candidates, but out of the soft-label term).
"""
from __future__ import annotations

import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..artifacts import read_parquet
from ..data.schemas import CANDIDATES, QUERIES
from ..embed.embedder import EmbedItem
from ..mine.schemas import score_bounds, stored_negatives
from .objective_settings import FALLBACK_ROWS


@dataclass(frozen=True)
class TrainingQuery:
    query_id: str
    item: EmbedItem
    positive_ids: tuple[str, ...]
    negative_ids: tuple[str, ...]
    instruction_options: tuple[str, ...] = ()
    negative_scores: tuple[float, ...] = ()
    positive_scores: tuple[float, ...] = ()   # with scores: positive_ids[i]'s own score
    fallback: bool = False                    # the filter's random fallback filled this row


@dataclass
class TrainingSet:
    queries: list[TrainingQuery]
    candidates: dict[str, EmbedItem]
    source: str
    dropped: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)   # the filter's outcome of each kept query
    positives_without_score: int = 0                         # positives left out for want of a score

    def fallback_fraction(self) -> float:
        """Share of the training queries whose negatives are the filter's random fallback."""
        return sum(q.fallback for q in self.queries) / len(self.queries)




def load_training_set(curated_dir: str | os.PathLike, split: str = "train", *, use_given_negatives: bool = False,
                      hard_negatives: str | os.PathLike | None = None, num_hard_negatives: int = 0,
                      needs_scores: bool = False, fallback_rows: str = "keep") -> TrainingSet:
    """Train queries of one curated source; negatives from the source or a hard-negative table."""
    if fallback_rows not in FALLBACK_ROWS:
        raise ValueError(f"fallback_rows must be one of {FALLBACK_ROWS}, got {fallback_rows!r}")
    curated_dir = Path(curated_dir)
    table = read_parquet(curated_dir / "queries.parquet", QUERIES)
    table = table.filter(pc.equal(table["split"], split))
    if table.num_rows == 0:
        summary = curated_dir / "summary.json"
        raise ValueError(f"{curated_dir}: no {split!r} queries to train on (empty or all quarantined; see {summary})")
    cands = read_parquet(curated_dir / "candidates.parquet", CANDIDATES).to_pylist()
    candidates = {c["candidate_id"]: EmbedItem(c["text"], c["image_path"]) for c in cands}
    mined = _read_hard_negatives(hard_negatives, candidates, num_hard_negatives) if hard_negatives else {}
    queries, dropped, outcomes, unscored = [], Counter(), Counter(), 0
    for r in table.to_pylist():
        item = EmbedItem(r["text"], r["image_path"], r["instruction"])
        options = tuple(r.get("instruction_options") or ())
        if not hard_negatives:
            negatives = tuple(r["negative_ids"][:num_hard_negatives]) if use_given_negatives else ()
            queries.append(TrainingQuery(r["query_id"], item, tuple(r["positive_ids"]), negatives, options))
            continue
        row = mined.get(r["query_id"])
        positives, scores = tuple(r["positive_ids"]), ()
        if row is not None and needs_scores:
            own = {p: s for p, s in zip(row["positive_ids"], row["positive_scores"]) if s is not None}
            scored = [p for p in positives if p in own]
            unscored += len(positives) - len(scored)
            positives, scores = tuple(scored), tuple(own[p] for p in scored)
        reason = _unusable(row, needs_scores, positives)
        if reason is None and fallback_rows == "drop" and row["outcome"] == "fallback_random":
            reason = "fallback_random_dropped"
        if reason:
            dropped[reason] += 1
            continue
        outcomes[row["outcome"]] += 1
        queries.append(TrainingQuery(r["query_id"], item, positives, tuple(row["negative_ids"][:num_hard_negatives]),
                                     options, tuple(row["negative_scores"][:num_hard_negatives]), scores,
                                     fallback=row["outcome"] == "fallback_random"))
    if not queries:
        summary = Path(hard_negatives).parent / "filter_summary.json" if hard_negatives else curated_dir / "summary.json"
        raise ValueError(f"{hard_negatives or curated_dir}: no {split!r} query has usable hard negatives "
                         f"(dropped: {dict(dropped)}); see {summary}")
    return TrainingSet(queries, candidates, curated_dir.name, dict(dropped), dict(outcomes), unscored)


def _unusable(row: dict | None, needs_scores: bool, positives: tuple[str, ...]) -> str | None:
    """Why a query cannot train on its hard-negative row (None: it can)."""
    if row is None:
        return "not_in_hard_negative_table"
    if not row["negative_ids"]:
        return f"no_negatives:{row['outcome']}"
    if needs_scores and (not positives or any(s is None for s in row["negative_scores"])):
        return f"no_judge_scores:{row['outcome']}"
    return None


_HARD_NEGATIVE_COLUMNS = ("query_id", "negative_ids", "negative_scores", "positive_ids", "positive_scores", "outcome",
                          "strategy", "params")


def _read_hard_negatives(path, candidates: dict, num_negatives: int) -> dict[str, dict]:
    table = pq.read_table(path)
    for column in _HARD_NEGATIVE_COLUMNS:
        if column not in table.column_names:
            raise ValueError(f"{path}: hard-negative table needs column {column!r}; has {table.column_names}")
    out = {}
    for row, record in enumerate(table.select(list(_HARD_NEGATIVE_COLUMNS)).to_pylist()):
        where = f"{path}: row {row} (query {record['query_id']})"
        unknown = [n for n in record["negative_ids"] if n not in candidates]
        if unknown:
            raise ValueError(f"{where} references unknown candidate ids {unknown[:3]}")
        for ids, scores in (("negative_ids", "negative_scores"), ("positive_ids", "positive_scores")):
            if len(record[scores]) != len(record[ids]):
                raise ValueError(f"{where} has {len(record[ids])} {ids} but {len(record[scores])} {scores}")
        params = json.loads(record["params"])
        low, high = score_bounds(record["strategy"], params)
        for cid, score in zip(record["negative_ids"] + record["positive_ids"],
                              record["negative_scores"] + record["positive_scores"]):
            if score is not None and not (math.isfinite(score) and low <= score <= high):
                raise ValueError(f"{where}, candidate {cid}: score {score!r} is not a finite number in [{low:g}, {high:g}] "
                                 f"(strategy {record['strategy']})")
        stored = stored_negatives(record["strategy"], params)
        if stored is not None and num_negatives > stored:
            raise ValueError(f"{where}: the objective asks for {num_negatives} negatives per query but the "
                             f"{record['strategy']} table stores at most {stored} (params {record['params']}): "
                             f"lower num_negatives or raise the filter's k")
        out[record["query_id"]] = record
    return out


class BatchSampler:
    """Epoch-wise seeded permutations cut into fixed-size batches; its position is checkpointable.

    The batch of a step is a pure function of (seed, step) (:meth:`at`), so a data loader can prepare any
    step in any process, and ``state()`` / ``load_state()`` capture (epoch, batch) so a resumed run sees
    exactly the batches an uninterrupted run would have seen. The last incomplete batch of an epoch is dropped.
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

    def at(self, step: int) -> tuple[np.ndarray, np.random.Generator]:
        """Indices of the batch of ``step`` (0-based) and an RNG for per-example choices (positives) of that batch."""
        epoch, batch = divmod(int(step), self.batches_per_epoch)
        order = np.random.default_rng([self.seed, epoch]).permutation(self.n)
        start = batch * self.batch_size
        return order[start: start + self.batch_size], np.random.default_rng([self.seed, epoch, batch])

    @property
    def position(self) -> int:
        """Batches drawn so far (the next step's index)."""
        return self.epoch * self.batches_per_epoch + self.batch

    def next(self) -> tuple[np.ndarray, np.random.Generator]:
        """The batch of the next step (:meth:`at`); advances the position."""
        drawn = self.at(self.position)
        self.seek(self.position + 1)
        return drawn

    def seek(self, steps: int) -> None:
        """The position after ``steps`` batches (an epoch's end stays in that epoch until the next draw)."""
        self.epoch, self.batch = (0, 0) if steps == 0 else ((steps - 1) // self.batches_per_epoch,
                                                           (steps - 1) % self.batches_per_epoch + 1)

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
    scores: np.ndarray | None = None  # float [B, 1 + k]: scores of [the sampled positive, negatives] (UniME-V2)
    score_mask: np.ndarray | None = None  # bool [B]: rows whose scores count (fallback_rows: mask)

    @property
    def size(self) -> int:
        return len(self.queries)


def pad_negatives(items: tuple, k: int) -> list:
    """The first ``k`` of ``items``; fewer are padded with the first one, as U-MARVEL's released code does
    ([a, b] -> a b a a a for k = 5). UniME-V2's filter stores its padded ten, so its rows never pad here."""
    return list(items[:k]) + [items[0]] * max(0, k - len(items))


def assemble_batch(data: TrainingSet, indices, rng: np.random.Generator, num_negatives: int = 0,
                   with_scores: bool = False, mask_fallback: bool = False) -> Batch:
    """Build the batch for ``indices``; each query contributes exactly ``num_negatives`` negatives.

    A query with fewer negatives than asked is padded by :func:`pad_negatives`, scores alongside; one
    with none, when some are asked for, is an error naming it (the loader drops such queries first).
    With scores, a query's row is [its sampled positive's own score, its negatives' scores].
    ``mask_fallback`` marks fallback rows out of the score term (``Batch.score_mask``).
    """
    queries = [data.queries[i] for i in indices]
    chosen = [int(rng.integers(len(q.positive_ids))) for q in queries]
    positives = [q.positive_ids[j] for q, j in zip(queries, chosen)]
    items = [replace(q.item, instruction=q.instruction_options[rng.integers(len(q.instruction_options))])
             if len(q.instruction_options) > 1 else q.item for q in queries]
    negatives, scores = [], []
    for q, j in zip(queries, chosen):
        if num_negatives and not q.negative_ids:
            raise ValueError(f"query {q.query_id} has no hard negatives but {num_negatives} are required")
        negatives += pad_negatives(q.negative_ids, num_negatives) if num_negatives else []
        if with_scores:
            if len(q.positive_scores) != len(q.positive_ids):
                raise ValueError(f"query {q.query_id}: scores are required but its positives carry none")
            scores.append([q.positive_scores[j]] + pad_negatives(q.negative_scores, num_negatives))
    ids = positives + negatives
    id_array, pos_array = np.array(ids, dtype=object), np.array(positives, dtype=object)
    exclude = id_array[None, :] == pos_array[:, None]
    exclude[np.arange(len(queries)), np.arange(len(queries))] = False
    return Batch(items, [data.candidates[c] for c in ids], ids, exclude,
                 np.asarray(scores, dtype=np.float64) if with_scores else None,
                 np.array([not q.fallback for q in queries]) if mask_fallback else None)
