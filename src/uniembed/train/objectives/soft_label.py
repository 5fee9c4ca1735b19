"""UniME-V2's soft-label objective (§"MLLM Judgment Based Training Framework", eq. 2-4).

For query q with candidates C = [c+, c1-, ..., ck-] (its positive and k = 8 hard negatives) and
the judge's scores s(q, c) in [0, 1] (P(Yes); a fallback negative scores 1.0, as the paper says):

    P = softmax(cos(q, C) / tau)          (eq. 2, the embedder's distribution)
    Q = softmax(s(q, C) / tau)            (eq. 3, the judge's soft labels)
    L = 1/2 (KL(P || Q) + KL(Q || P))     (eq. 4; the paper calls it JS, it is the symmetric KL)

averaged over the queries, tau = 0.02 on both sides (``label_temperature`` gives Q its own tau; not in the paper).
With the filter's rule (every kept negative scores below s(q, c+) - beta) Q is near one-hot by construction:
Q(c+) >= 1 / (1 + k exp(-beta / tau)), 0.95 for beta 0.1, tau 0.02, k 8, so the soft labels act as hard ones
with KL(P||Q) a score-gap-weighted penalty on the mass P leaves on the negatives. As in the released code
(``Embedding/src/loss.py``) the loss uses no in-batch negatives and no InfoNCE term; the
embeddings are gathered across ranks and it works under gradient caching. ``info_nce_weight``
optionally adds InfoNCE over in-batch + hard negatives at the same tau (not in the paper). The
released code takes log(p + 1e-8) of the softmaxes; log_softmax is the exact form used here.

Fallback rows (the filter's random negatives, each scored 1.0 by the paper's rule, while the positive
keeps its real score below 1) ask the embedder to rank the positive *below* random candidates.
``fallback_rows`` keeps them (``keep``, the paper), leaves them out of training (``drop``), or keeps
them in the batch but out of the KL, which is then averaged over the other rows (``mask``), so a study
can compare the three; the training summary reports their share either way.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..losses import info_nce
from ..temperature import Temperature
from ..objective_settings import SoftLabelSettings
from .base import Objective, ObjectiveBatch, per_query_logits


def kl_directions(logits_p: Tensor, logits_q: Tensor) -> tuple[Tensor, Tensor]:
    """Per row, KL(P||Q) and KL(Q||P) with P = softmax(logits_p), Q = softmax(logits_q)."""
    log_p, log_q = F.log_softmax(logits_p, dim=-1), F.log_softmax(logits_q, dim=-1)
    p, q = log_p.exp(), log_q.exp()
    return (p * (log_p - log_q)).sum(-1), (q * (log_q - log_p)).sum(-1)


def _row_mean(rows: Tensor, mask: Tensor | None) -> Tensor:
    return rows.mean() if mask is None else (rows * mask).sum() / mask.sum().clamp(min=1)


def symmetric_kl(logits_p: Tensor, logits_q: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean over rows of 1/2 (KL(P||Q) + KL(Q||P)), P = softmax(logits_p), Q = softmax(logits_q) by row;
    with a boolean ``mask``, the mean over the rows it keeps (0 when it keeps none)."""
    p_q, q_p = kl_directions(logits_p, logits_q)
    return _row_mean(0.5 * (p_q + q_p), mask)


def soft_label_diagnostics(similarity: Tensor, targets: Tensor, mask: Tensor | None = None) -> dict[str, Tensor]:
    """What eq. 4's two halves do (logged, not trained on): KL(P||Q) and KL(Q||P) and the mass P and Q put on
    the positive (column 0). Against near-one-hot soft labels (a sure judge at tau 0.02: Q's negatives ~ e^-40)
    KL(Q||P) is the listwise cross-entropy -log P(c+), and KL(P||Q) ~ sum_i P_i (s+ - s_i) / tau, a penalty
    linear in the mass P leaves on the negatives, weighted by the judge's score gaps over tau."""
    with torch.no_grad():
        p_q, q_p = kl_directions(similarity, targets)
        return {"kl_p_q": _row_mean(p_q, mask), "kl_q_p": _row_mean(q_p, mask),
                "p_positive": _row_mean(similarity.softmax(-1)[:, 0], mask),
                "q_positive": _row_mean(targets.softmax(-1)[:, 0], mask)}


class SoftLabelObjective(Objective):
    name = "soft_label"
    needs_scores = True

    def __init__(self, settings: SoftLabelSettings, start_model=None):
        super().__init__(settings, start_model)
        if settings.num_negatives < 1:
            raise ValueError(f"soft_label needs num_negatives >= 1, got {settings.num_negatives}")
        self.temperature = Temperature(settings.temperature, learnable=False,
                                       minimum=min(0.005, settings.temperature))

    def log_values(self) -> dict[str, float]:
        return {"temperature": self.temperature.value}

    def loss(self, q: Tensor, c: Tensor, batch: ObjectiveBatch) -> tuple[Tensor, dict[str, Tensor]]:
        tau = self.temperature()
        similarity, scores = per_query_logits(q, c, batch, tau, "soft_label needs judge scores")
        mask = None if batch.score_mask is None else torch.as_tensor(batch.score_mask, dtype=similarity.dtype,
                                                                       device=similarity.device)
        targets = scores / (self.settings.label_temperature or tau)
        kl = symmetric_kl(similarity, targets, mask)
        parts = {"soft_label_kl": kl, **soft_label_diagnostics(similarity, targets, mask)}
        if not self.settings.info_nce_weight:
            return kl, parts
        contrastive = info_nce(q, c, tau, exclude=torch.as_tensor(batch.exclude, device=q.device))
        parts["info_nce"] = contrastive
        return kl + self.settings.info_nce_weight * contrastive, parts
