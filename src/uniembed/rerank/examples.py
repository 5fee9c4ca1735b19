"""Reranker training examples from the recall model's retrieval over the training queries.

Source: the mined table (``mine/schemas.py`` MINED: each training query's top-k pool candidates
by the recall model, positives removed), read through :func:`uniembed.judge.pairs.build_judge_pairs`.
It *is* the recall model's retrieval over the training queries, already computed and checked by
the mining stage, so the reranker sees the candidates it will rerank at inference without a second
embedding pass. Its depth is ``mine.top_k`` (U-MARVEL samples from the top 100, UniME-V2 uses the
stored hard negatives; set top_k accordingly on real runs).

* ``pointwise`` (U-MARVEL App. C eq. 3): (query, a positive) -> "Yes" and (query, one mined
  candidate drawn at random from the top ``depth``) -> "No".
* ``pairwise`` (UniME-V2-Reranker): (query, a positive) -> "Yes", (query, the hardest = top-ranked
  mined candidate) -> "No".
* ``listwise`` (UniME-V2-Reranker): a positive inserted at a random position among the top
  ``list_size - 1`` mined candidates; answer "Ans: (k)" with k its 1-based position.

A mined candidate may be an unlabelled match (a false negative): the papers train on the raw
retrieval as well, and the judge's filtering is a separate stage.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..embed.embedder import EmbedItem
from ..judge.pairs import JudgePair
from ..judge.prompt import NO, YES, build_judge_prompt
from ..train.generative import ChatExample
from .prompts import build_listwise_prompt, listwise_answer


@dataclass(frozen=True)
class RerankQuery:
    """A training query, its positives and its mined candidates in rank order."""

    query_id: str
    query: EmbedItem
    positives: tuple[EmbedItem, ...]
    ranked: tuple[EmbedItem, ...]


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


def listwise_example(item: RerankQuery, rng: np.random.Generator, list_size: int) -> ChatExample:
    if list_size < 2:
        raise ValueError(f"a listwise example needs list_size >= 2, got {list_size}")
    negatives = list(item.ranked[: list_size - 1])
    position = int(rng.integers(len(negatives) + 1))
    candidates = negatives[:position] + [item.positives[rng.integers(len(item.positives))]] + negatives[position:]
    return _example(build_listwise_prompt(item.query, candidates), listwise_answer(position + 1), "listwise")
