"""``objembed`` — ObjEmbed's objective (seed 002 §3.2, eq. 1-4) over one step's object and text embeddings.

The object task (:mod:`uniembed.train.objembed_task`) runs the model and hands over, for this process's images, the
object embeddings and objectness logits of their proposals and their two global tokens, and for the whole global batch
(gathered across processes with the local gradient kept, :func:`uniembed.train.distributed.gather_with_grad`) the
embeddings of the local texts and of the short and long captions. The losses are
:mod:`uniembed.train.region_losses`' (eq. 2, the image-level loss, eq. 3) weighted as eq. 4; the scale and bias of
eq. 1 are the heads' (one pair for objects, one for the global tokens), so they train with the model.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..objective_settings import ObjEmbedSettings
from ..region_losses import ObjEmbedLoss, image_loss, iou_loss, matching_logits, region_loss
from .base import TrainingObjective


@dataclass(frozen=True)
class ObjectLabels:
    """What the step's boxes say, for this process's proposals (rows) and the global batch's texts (columns)."""
    ious: Tensor          # [local proposals, global texts]: IoU of the proposal with the text's box in its own image
    mask: Tensor          # [local proposals, global texts]: 1 = the pair counts (ObjectSteps decides which)
    best_ious: Tensor     # [proposals]: the proposal's best IoU with any box of its image (eq. 3's target)


class ObjEmbedObjective(TrainingObjective):
    """ObjEmbed's eq. 4 over a step's object and text embeddings (the object task's objective; module docstring)."""

    name = "objembed"
    task = "objects"

    def forward(self, outputs, texts: Tensor, short: Tensor, long: Tensor, labels: ObjectLabels, heads) -> Tensor:
        """Eq. 4 on a step. ``outputs``: :class:`uniembed.embed.objects.ImageOutputs` of the local images; ``texts``,
        ``short``, ``long``: the global batch's local-text, short- and long-caption embeddings; ``heads``: the
        model's :class:`uniembed.model.object_heads.ObjectHeads` (eq. 1's scales and biases)."""
        s = self.settings
        logits = matching_logits(outputs.objects, texts, heads.object_log_scale, heads.object_bias)
        region = region_loss(logits, labels.ious.to(logits), s.positive_iou, labels.mask.to(logits))
        image = 0.5 * sum(image_loss(matching_logits(tokens, captions, heads.image_log_scale, heads.image_bias))
                          for tokens, captions in ((outputs.coarse, short), (outputs.detailed, long)))
        iou = iou_loss(outputs.iou_logits, labels.best_ious.to(outputs.iou_logits), s.positive_iou)
        loss = ObjEmbedLoss(region, image, iou, (s.region_weight, s.image_weight, s.iou_weight))
        self.parts = {"region": float(region.detach()), "image": float(image.detach()), "iou": float(iou.detach())}
        return loss.total

