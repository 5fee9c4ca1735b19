"""Generative reranker objectives: which chat examples a training query gives, and how their
answer losses combine. The reranker task (:mod:`uniembed.train.rerank_task`) runs the model.

* ``pointwise`` — U-MARVEL App. C eq. 3: (query, positive) -> "Yes", (query, a random candidate of
  the recall model's top ``depth``) -> "No"; next-token cross-entropy on the answer tokens.
* ``pair_list`` — UniME-V2-Reranker: L = L_pair + L_list, L_pair over (positive -> "Yes",
  hardest negative -> "No"), L_list over the positive placed among the top ``list_size - 1``
  negatives -> "Ans: (k)"; each term the mean cross-entropy of its own answer tokens (the released
  code sums the two losses with equal weight; the weights are settings). Its negatives are the
  judge-filtered hard negatives (eq. 5-6). The list follows the released code: 6 candidates (5
  negatives), the positive at position 1-5 with probabilities 0.32 / 0.32 / 0.20 / 0.11 / 0.05
  (``positive_position_weights``), never last.

Both have no parameters of their own; they share the embedding objectives' surface (name,
settings, ``config`` for the run fingerprint, ``parts`` for logging) so the one trainer core takes them.
"""
from __future__ import annotations

import abc

import numpy as np
import torch
from torch import Tensor

from ...rerank.examples import RerankQuery, listwise_example, pairwise_examples, pointwise_examples
from ...model.chat import ChatExample
from ..objective_settings import PairListSettings, PointwiseSettings
from .base import TrainingObjective


class RerankObjective(TrainingObjective, metaclass=abc.ABCMeta):
    """Examples of one training query and the loss over a batch's per-example answer losses."""

    name = "rerank"
    task = "rerank"

    @abc.abstractmethod
    def examples(self, item: RerankQuery, rng: np.random.Generator) -> list[ChatExample]:
        """The chat examples one training query gives (choices from the batch's ``rng``)."""

    @abc.abstractmethod
    def groups(self) -> dict[str, tuple[tuple[str, ...], float]]:
        """``{loss part: (example kinds, weight)}``: each part is the mean CE over its kinds' answer tokens."""

    def combine(self, kinds: list[str], row_sums: Tensor, lengths: Tensor) -> Tensor:
        """sum over parts of weight * (summed answer-token CE of the part's rows / their answer tokens)."""
        total, parts = row_sums.new_zeros(()), {}
        for part, (part_kinds, weight) in self.groups().items():
            rows = torch.tensor([kind in part_kinds for kind in kinds], device=row_sums.device)
            if not bool(rows.any()):
                raise ValueError(f"{self.name}: the batch has no {part} examples (kinds {sorted(set(kinds))})")
            value = row_sums[rows].sum() / lengths[rows].sum()
            parts[part] = value
            total = total + weight * value
        self.parts = {key: float(value.detach()) for key, value in parts.items()}
        return total


class PointwiseObjective(RerankObjective):
    name = "pointwise"

    def __init__(self, settings: PointwiseSettings, start_model=None):
        if settings.depth < 1:
            raise ValueError(f"pointwise needs depth >= 1, got {settings.depth}")
        super().__init__(settings, start_model)

    def examples(self, item, rng):
        return pointwise_examples(item, rng, self.settings.depth)

    def groups(self):
        return {"pointwise_ce": (("pointwise_yes", "pointwise_no"), 1.0)}


class PairListObjective(RerankObjective):
    name = "pair_list"

    def __init__(self, settings: PairListSettings, start_model=None):
        if settings.list_size < 2:
            raise ValueError(f"pair_list needs list_size >= 2, got {settings.list_size}")
        super().__init__(settings, start_model)

    def examples(self, item, rng):
        s = self.settings
        return [*pairwise_examples(item, rng), listwise_example(item, rng, s.list_size, s.positive_position_weights)]

    def groups(self):
        s = self.settings
        return {"pairwise_ce": (("pairwise_yes", "pairwise_no"), s.pairwise_weight),
                "listwise_ce": (("listwise",), s.listwise_weight)}
