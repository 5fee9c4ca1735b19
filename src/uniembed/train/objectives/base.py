"""What every training objective shares: the batch view it sees and the module interface."""
from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ..distributed import gather_with_grad


@dataclass
class ObjectiveBatch:
    """The global batch as an objective sees it (embeddings come separately, gathered across ranks).

    Candidates are laid out as ``[B positives | B*k negatives]``, query i's negatives at rows
    ``B + i*k .. B + (i+1)*k - 1``. ``exclude[i, j]``: candidate j holds query i's answer without
    being its positive column (never a negative). ``scores[i]``: the judge scores of query i's
    ``[positive, negatives...]`` (UniME-V2), or None when the objective needs none. ``score_mask[i]``:
    whether query i's scores count (False for a masked fallback row); None: all count.
    """
    size: int
    num_negatives: int
    exclude: np.ndarray
    scores: np.ndarray | None = None
    score_mask: np.ndarray | None = None


def global_order(rank_sizes: tuple[int, int], world: int) -> Tensor:
    """Map gathered candidates ([pos_r, neg_r] per rank) back to [all positives, all negatives]."""
    b, bk = rank_sizes
    gathered = [x for r in range(world) for x in [("p", r * b + i) for i in range(b)] + [("n", r * bk + j) for j in range(bk)]]
    position = {key: n for n, key in enumerate(gathered)}
    order = [position[("p", i)] for i in range(world * b)] + [position[("n", j)] for j in range(world * bk)]
    return torch.tensor(order)


def gather_batch(q_local: Tensor, c_local: Tensor, world: int) -> tuple[Tensor, Tensor]:
    """Global queries [B, d] and candidates [B + B*k, d] from local shards, local gradient kept."""
    b, bk = q_local.shape[0], c_local.shape[0] - q_local.shape[0]
    q, c = gather_with_grad(q_local), gather_with_grad(c_local)
    if world > 1:
        c = c.index_select(0, global_order((b, bk), world).to(c.device))
    return q, c


class TrainingObjective(nn.Module):
    """What the trainer core needs of any objective: its name and task, its settings (in the run
    fingerprint), its own optimiser groups, the scalars it logs, and ``parts`` (floats) of the last loss."""

    name = "objective"
    task = "embedding"
    needs_scores = False

    def __init__(self, settings, start_model=None):
        super().__init__()
        self.settings = settings
        self.parts: dict[str, float] = {}

    def config(self) -> dict:
        """The objective's configuration, for the run fingerprint."""
        return {"name": self.name, **dataclasses.asdict(self.settings)}

    def param_groups(self, lr: float) -> list[dict]:
        """Optimiser groups of the objective's own parameters (default: none)."""
        return []

    def log_values(self) -> dict[str, float]:
        """Scalars to log every step besides the loss parts (e.g. the temperature)."""
        return {}


class Objective(TrainingObjective, metaclass=abc.ABCMeta):
    """A loss over query and candidate embeddings; subclasses set ``name`` and implement ``loss``.

    ``forward(q_local, c_local, batch, world)`` gathers the global batch and returns the 0-d loss.
    """

    @property
    def num_negatives(self) -> int:
        return int(getattr(self.settings, "num_negatives", 0))

    def forward(self, q_local: Tensor, c_local: Tensor, batch: ObjectiveBatch, world: int) -> Tensor:
        q, c = gather_batch(q_local, c_local, world)
        loss, parts = self.loss(q, c, batch)
        self.parts = {key: float(value.detach()) for key, value in parts.items()}
        return loss

    @abc.abstractmethod
    def loss(self, q: Tensor, c: Tensor, batch: ObjectiveBatch) -> tuple[Tensor, dict[str, Tensor]]:
        """The loss on the global batch and its named parts."""


def per_query_logits(q: Tensor, c: Tensor, batch: ObjectiveBatch, tau: Tensor, what: str) -> tuple[Tensor, Tensor]:
    """cos(q, [positive, its k negatives]) / tau ([B, 1 + k]) and the batch's scores of the same
    candidates as a tensor; ValueError naming ``what`` when the batch carries no scores of that shape."""
    b, k = batch.size, batch.num_negatives
    if batch.scores is None or batch.scores.shape != (b, 1 + k):
        raise ValueError(f"{what} of shape ({b}, {1 + k}) in the batch")
    candidates = torch.cat([c[:b, None], c[b:].view(b, k, -1)], dim=1)        # [B, 1 + k, d]
    logits = torch.einsum("bd,bkd->bk", q, candidates) / tau
    return logits, torch.as_tensor(batch.scores, dtype=logits.dtype, device=logits.device)
