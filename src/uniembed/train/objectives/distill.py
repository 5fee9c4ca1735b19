"""U-MARVEL's reranker distillation objective (§3.3, Finding 6; App. C Table 12 row 5).

The recall-then-rerank cascade is the teacher: for query q and its candidates C = [c+, c1-, ..., ck-]
the teacher's score is the fused S_multi(q, c) = alpha * S_recall + (1 - alpha) * S_rerank; the
student is the embedder itself, S_single(q, c) = cos(q, c) / tau with a learnable tau. Both are
softmax-normalised over the query's candidates and

    L = KL(softmax(S_multi) || softmax(S_single)) = sum_i S_multi(i) log(S_multi(i) / S_single(i))

(§3.3's L_distill), averaged over the queries.

Paper and released code differ in two places; this module follows:
* the candidates: the paper's "positive and top-k negative samples" (the positive always present,
  the k = 49 highest-fused non-positives: 50 candidates, the released code's count); the released
  code takes the top 50 by fused score, which may leave the positive out;
* the teacher's scale, which the paper leaves open: the released code stores cos + w * P(Yes) (w = 1)
  and takes (stored / 2) / tau with tau detached, i.e. (cos + P) / (2 tau). The teacher table here
  holds the paper's convex S_multi = alpha * cos + (1 - alpha) * P (``rerank/teacher.py``), which at
  the released weight (alpha = 1 / (1 + w) = 0.5) is already (cos + P) / 2; so the teacher logits are
  ``teacher_scale * S_multi / tau`` with ``teacher_scale`` 1 -- exactly the released (cos + P) / (2 tau).
  For another w the released logits are (1 + w) / 2 * S_multi / tau: set ``teacher_scale`` to
  (1 + w) / 2 = 1 / (2 alpha) to match them;
* its divergence: KL (the released code defaults to total variation; its launcher switches KL on).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ..objective_settings import DistillSettings
from .base import ObjectiveBatch, per_query_logits
from .info_nce import InfoNCEObjective


def teacher_student_kl(teacher_logits: Tensor, student_logits: Tensor) -> Tensor:
    """Mean over rows of KL(softmax(teacher) || softmax(student)), both softmaxed by row."""
    log_t, log_s = F.log_softmax(teacher_logits, dim=-1), F.log_softmax(student_logits, dim=-1)
    return (log_t.exp() * (log_t - log_s)).sum(-1).mean()


class DistillObjective(InfoNCEObjective):
    """KL from the fused recall + rerank scores (batch.scores) to the student's cos / tau.

    Shares InfoNCE's learnable temperature (tau itself the parameter, its own optimiser group,
    ``previous`` to continue a stage's tau); no in-batch negatives, as the released code.
    """

    name = "distill"
    needs_scores = True

    def __init__(self, settings: DistillSettings, start_model=None):
        if settings.num_negatives < 1:
            raise ValueError(f"distill needs num_negatives >= 1, got {settings.num_negatives}")
        if settings.teacher_scale <= 0:
            raise ValueError(f"distill needs teacher_scale > 0, got {settings.teacher_scale}")
        super().__init__(settings, start_model)

    def loss(self, q: Tensor, c: Tensor, batch: ObjectiveBatch) -> tuple[Tensor, dict[str, Tensor]]:
        tau = self.temperature()
        student, fused = per_query_logits(q, c, batch, tau, "distill needs teacher scores")
        kl = teacher_student_kl(self.settings.teacher_scale * fused / tau.detach(), student)
        return kl, {"distill_kl": kl}
