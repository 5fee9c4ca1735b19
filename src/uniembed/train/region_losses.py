"""ObjEmbed's losses (seed 002, §3.2, eq. 1-4): region-level and image-level sigmoid focal loss and focal IoU regression.

    s_ij    = cos(e_p^j, e_t^i) * exp(log_scale) + bias                      eq. 1 (as a logit, scale and bias learned)
    L_region = sum_i sum_j L_focal(s_ij, y_ij),  y_ij = 1[IoU(p_j, B^i) > 0.5]  eq. 2
    L_image  = L_focal over [images x captions], own caption positive, per global token (short, long captions)
    L_iou    = sum over positive proposals of L_focal(u_hat_j, u*_j), u*_j = IoU with its box   eq. 3
    L        = 1.0 L_region + 1.0 L_image + 0.25 L_iou                        eq. 4, §4.1's weights

``L_focal`` is RetinaNet's sigmoid focal loss (Lin et al. 2017; alpha 0.25, gamma 2), which the released code also
applies to soft targets (the IoU): with p = sigmoid(x) and target t in [0, 1],
``BCE(x, t) * (1 - p_t)^gamma * (alpha t + (1 - alpha)(1 - t))``, ``p_t = p t + (1 - p)(1 - t)``.

Where the paper and the released code (WeChatCV/ObjEmbed) differ, this module follows the paper, except for the
reduction: eq. 2 is a plain sum, which grows with the number of proposals, so each loss is averaged over its rows
(proposals, images) and summed over its columns (phrases, captions), as the code does (without its constant x2). The
code differs in three other ways, not followed here: its region positives are only the best proposal per box (the
paper: every proposal above 0.5) with proposals of IoU 0.2-0.5 ignored; its weights are 1.0 / 0.25 / 1.0 (image and
IoU swapped against §4.1's 1.0 / 1.0 / 0.25).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..model.object_heads import matching_logits  # noqa: F401 (eq. 1, with the heads it scores)
from ..model.regions import box_iou  # noqa: F401 (the IoU of eq. 2-3)

FOCAL_ALPHA, FOCAL_GAMMA = 0.25, 2.0
POSITIVE_IOU = 0.5
WEIGHTS = (1.0, 1.0, 0.25)   # lambda_1..3 of eq. 4 (§4.1)


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float = FOCAL_ALPHA,
                       gamma: float = FOCAL_GAMMA) -> torch.Tensor:
    """Elementwise sigmoid focal loss (RetinaNet), targets in [0, 1] (soft targets: the IoU regression)."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    return ce * (1 - p_t) ** gamma * (alpha * targets + (1 - alpha) * (1 - targets))


def _rows_mean_columns_sum(loss: torch.Tensor) -> torch.Tensor:
    return loss.mean(0).sum() if loss.numel() else loss.sum()


def region_loss(logits: torch.Tensor, ious: torch.Tensor, threshold: float = POSITIVE_IOU,
                mask: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 2: ``logits`` [proposals, phrases] (eq. 1), ``ious`` [proposals, phrases] of each proposal with the phrase's
    box; a proposal is positive for a phrase when that IoU exceeds ``threshold``. ``mask`` [proposals, phrases]
    (1 counts, 0 ignored, as the released code's mask): pairs that say nothing (a referring phrase of another image)
    add nothing, and still count in the mean over rows."""
    loss = sigmoid_focal_loss(logits, (ious > threshold).to(logits.dtype))
    return _rows_mean_columns_sum(loss if mask is None else loss * mask.to(loss.dtype))


def image_loss(logits: torch.Tensor) -> torch.Tensor:
    """Image-level focal loss: ``logits`` [images, captions] (eq. 1 with the global token's own scale and bias), each
    image's own caption (the diagonal) positive, every other caption negative."""
    targets = torch.eye(*logits.shape, dtype=logits.dtype, device=logits.device)
    return _rows_mean_columns_sum(sigmoid_focal_loss(logits, targets))


def iou_loss(iou_logits: torch.Tensor, best_ious: torch.Tensor, threshold: float = POSITIVE_IOU) -> torch.Tensor:
    """Eq. 3: focal regression of each positive proposal's predicted IoU logit to its IoU with its box (``best_ious``:
    the proposal's highest IoU with any box); proposals at or below ``threshold`` take no part (eq. 3's N+)."""
    positive = best_ious > threshold
    if not positive.any():
        return iou_logits.sum() * 0.0
    return sigmoid_focal_loss(iou_logits[positive], best_ious[positive]).mean()


@dataclass
class ObjEmbedLoss:
    """Eq. 4: the weighted sum, and its parts for logging."""
    region: torch.Tensor
    image: torch.Tensor
    iou: torch.Tensor
    weights: tuple[float, float, float] = WEIGHTS

    @property
    def total(self) -> torch.Tensor:
        w1, w2, w3 = self.weights
        return w1 * self.region + w2 * self.image + w3 * self.iou


def object_score(logits: torch.Tensor, iou_logits: torch.Tensor) -> torch.Tensor:
    """Grounding score (§3.1) of each proposal for each phrase: sigmoid of its matching logit [proposals, phrases] times
    sigmoid of its predicted IoU logit [proposals]."""
    return torch.sigmoid(logits) * torch.sigmoid(iou_logits)[:, None]
