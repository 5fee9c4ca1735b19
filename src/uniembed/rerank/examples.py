"""Reranker training examples from the recall model's retrieval over the training queries.

Sources, each read through :func:`uniembed.judge.pairs.build_judge_pairs`:

* U-MARVEL's pointwise reranker: the mined table (``mine/schemas.py`` MINED: each training query's
  top-k pool candidates by the recall model, positives removed). It *is* the recall model's
  retrieval over the training queries, already computed and checked by the mining stage; its depth
  is ``mine.top_k`` (U-MARVEL samples its "No" from the top 100: set top_k accordingly on real runs).
  A mined candidate may be an unlabelled match: U-MARVEL's released reranker trains on that raw list.
* UniME-V2's reranker: the judge-filtered hard negatives (a HARD_NEGATIVES table, the reranker's
  ``negatives: <filter>``), as the paper (eq. 5-6) and its released code do: the pairwise "No" is
  ``hard_negatives[0]``, the listwise distractors ``hard_negatives[:5]``. :func:`ranked_negatives`
  turns the table into ranked rows; the padding copies the filter made (its minimum of ten) are
  left out, so a list never asks the model to tell a candidate from itself.

* ``pointwise`` (U-MARVEL App. C eq. 3): (query, a positive) -> "Yes" and (query, one mined
  candidate drawn at random from the top ``depth``) -> "No".
* ``pairwise`` (UniME-V2-Reranker): (query, a positive) -> "Yes", (query, the hardest = top-ranked
  mined candidate) -> "No".
* ``listwise`` (UniME-V2-Reranker): a positive inserted at a random position among the top
  ``list_size - 1`` mined candidates; answer "Ans: (k)" with k its 1-based position.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

import pyarrow as pa

from ..embed.embedder import EmbedItem
from ..judge.pairs import JudgePair
from ..mine.schemas import MINED
from ..judge.prompt import build_judge_prompt
from ..model.chat import NO, YES, ChatExample
from .released import RELEASED_POSITION_WEIGHTS
from .prompts import build_listwise_prompt, listwise_answer



@dataclass(frozen=True)
class RerankQuery:
    """A training query, its positives and its mined candidates in rank order."""

    query_id: str
    query: EmbedItem
    positives: tuple[EmbedItem, ...]
    ranked: tuple[EmbedItem, ...]


def ranked_negatives(hard_negatives: pa.Table) -> pa.Table:
    """MINED rows (rank = stored order, similarity = the stored score) from a HARD_NEGATIVES table: each
    query's distinct negatives in the filter's order (padding repeats dropped); queries without any left out."""
    rows = []
    for record in hard_negatives.select(["query_id", "negative_ids", "negative_scores"]).to_pylist():
        seen = {}
        for cid, score in zip(record["negative_ids"], record["negative_scores"]):
            seen.setdefault(cid, score)
        rows += [{"query_id": record["query_id"], "rank": rank, "candidate_id": cid,
                  "similarity": 0.0 if score is None else score} for rank, (cid, score) in enumerate(seen.items(), 1)]
    return pa.Table.from_pylist(rows, MINED)


def group_pairs(pairs: Sequence[JudgePair]) -> list[RerankQuery]:
    """Per query (in pair order): positives and mined candidates by rank. Queries lacking either are left out
    (they can make no Yes/No pair); :func:`count_unusable` says how many."""
    grouped: dict[str, tuple[EmbedItem, list, list]] = {}
    for pair in pairs:
        entry = grouped.setdefault(pair.query_id, (pair.query, [], []))
        (entry[1] if pair.is_positive else entry[2]).append((pair.rank or 0, pair.candidate))
    return [RerankQuery(qid, query, tuple(item for _, item in positives), tuple(item for _, item in sorted(ranked, key=lambda r: r[0])))
            for qid, (query, positives, ranked) in grouped.items() if positives and ranked]


def count_unusable(pairs: Sequence[JudgePair]) -> dict[str, int]:
    """Queries without positives or without mined candidates (dropped from reranker training)."""
    positives, mined = set(), set()
    for pair in pairs:
        (positives if pair.is_positive else mined).add(pair.query_id)
    return {"no_positive": len(mined - positives), "no_candidates": len(positives - mined)}


def _example(prompt, answer: str, kind: str) -> ChatExample:
    return ChatExample(prompt.parts, answer, kind)


def pointwise_examples(item: RerankQuery, rng: np.random.Generator, depth: int) -> list[ChatExample]:
    positive = item.positives[rng.integers(len(item.positives))]
    negative = item.ranked[rng.integers(min(depth, len(item.ranked)))]
    return [_example(build_judge_prompt(item.query, positive), YES, "pointwise_yes"),
            _example(build_judge_prompt(item.query, negative), NO, "pointwise_no")]


def pairwise_examples(item: RerankQuery, rng: np.random.Generator) -> list[ChatExample]:
    positive = item.positives[rng.integers(len(item.positives))]
    return [_example(build_judge_prompt(item.query, positive), YES, "pairwise_yes"),
            _example(build_judge_prompt(item.query, item.ranked[0]), NO, "pairwise_no")]


def listwise_example(item: RerankQuery, rng: np.random.Generator, list_size: int,
                     position_weights: Sequence[float] = RELEASED_POSITION_WEIGHTS) -> ChatExample:
    """The positive among the top ``list_size - 1`` negatives at a position drawn with ``position_weights``
    (1-based position i with weight ``position_weights[i - 1]``, normalised over the positions the list has)."""
    if list_size < 2:
        raise ValueError(f"a listwise example needs list_size >= 2, got {list_size}")
    negatives = list(item.ranked[: list_size - 1])
    weights = np.asarray(position_weights[: len(negatives) + 1], dtype=np.float64)
    if weights.size == 0 or weights.sum() <= 0 or (weights < 0).any():
        raise ValueError(f"position weights {list(position_weights)} give no position in a list of {len(negatives) + 1}")
    position = int(rng.choice(len(weights), p=weights / weights.sum()))
    candidates = negatives[:position] + [item.positives[rng.integers(len(item.positives))]] + negatives[position:]
    return _example(build_listwise_prompt(item.query, candidates), listwise_answer(position + 1), "listwise")
