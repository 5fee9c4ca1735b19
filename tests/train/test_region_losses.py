"""ObjEmbed eq. 1-4 against direct computations written out element by element (math, no torch ops)."""
import math

import pytest
import torch

from uniembed.train.region_losses import (WEIGHTS, ObjEmbedLoss, box_iou, image_loss, iou_loss, matching_logits,
                                          object_score, region_loss, sigmoid_focal_loss)


def _focal(x: float, t: float, alpha=0.25, gamma=2.0) -> float:
    p = 1 / (1 + math.exp(-x))
    ce = -(t * math.log(p) + (1 - t) * math.log(1 - p))
    p_t = p * t + (1 - p) * (1 - t)
    return ce * (1 - p_t) ** gamma * (alpha * t + (1 - alpha) * (1 - t))


def test_focal_loss_is_retinanets_for_hard_and_soft_targets():
    x = torch.tensor([[-3.0, 0.0, 2.5], [1.0, -0.5, 4.0]], dtype=torch.float64)
    t = torch.tensor([[0.0, 1.0, 0.7], [1.0, 0.0, 0.55]], dtype=torch.float64)
    expected = [[_focal(x[i, j].item(), t[i, j].item()) for j in range(3)] for i in range(2)]
    assert sigmoid_focal_loss(x, t).flatten().tolist() == pytest.approx(sum(expected, []), rel=1e-12)
    # the focal term: a confident right answer costs a small fraction of its cross entropy, a confident wrong one most
    assert _focal(4.0, 1.0) < 1e-3 * math.log(1 + math.exp(-4.0))
    assert _focal(-4.0, 1.0) > 0.9 * 0.25 * math.log(1 + math.exp(4.0))


def test_box_iou():
    a = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 15.0, 15.0], [20.0, 20.0, 20.0, 30.0]])
    b = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0]])
    expected = [[1.0, 50 / 150], [25 / 175, 50 / 150], [0.0, 0.0]]
    assert box_iou(a, b).flatten().tolist() == pytest.approx(sum(expected, []))


def test_matching_logit_is_scaled_cosine_plus_bias():
    a, b = torch.tensor([[3.0, 4.0]]), torch.tensor([[1.0, 0.0], [0.0, -2.0]])
    logits = matching_logits(a, b, torch.tensor(math.log(20.0)), torch.tensor(-4.0))
    assert logits.flatten().tolist() == pytest.approx([0.6 * 20 - 4.0, -0.8 * 20 - 4.0])


def test_region_loss_takes_every_proposal_above_half_iou_as_a_positive():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-2.0, 1.5]], dtype=torch.float64)
    ious = torch.tensor([[0.9, 0.0], [0.5, 0.51], [0.1, 0.7]], dtype=torch.float64)   # 0.5 itself is negative
    labels = [[1, 0], [0, 1], [0, 1]]
    expected = sum(sum(_focal(logits[i, j].item(), labels[i][j]) for i in range(3)) / 3 for j in range(2))
    assert region_loss(logits, ious).item() == pytest.approx(expected, rel=1e-12)


def test_image_loss_takes_each_images_own_caption_as_its_positive():
    logits = torch.tensor([[3.0, -2.0, 0.1], [0.2, 1.0, -1.0]], dtype=torch.float64)   # 2 images, 3 captions
    expected = sum(sum(_focal(logits[i, j].item(), float(i == j)) for i in range(2)) / 2 for j in range(3))
    assert image_loss(logits).item() == pytest.approx(expected, rel=1e-12)


def test_iou_loss_regresses_positive_proposals_to_their_iou_only():
    x = torch.tensor([0.3, -1.0, 2.0, 0.0], dtype=torch.float64)
    best = torch.tensor([0.8, 0.4, 0.55, 0.5], dtype=torch.float64)
    expected = (_focal(0.3, 0.8) + _focal(2.0, 0.55)) / 2
    assert iou_loss(x, best).item() == pytest.approx(expected, rel=1e-12)
    none = iou_loss(x.clone().requires_grad_(), torch.zeros(4, dtype=torch.float64))
    assert none.item() == 0.0 and none.requires_grad


def test_the_total_weighs_the_parts_as_section_4_1_and_the_score_multiplies_the_sigmoids():
    parts = ObjEmbedLoss(torch.tensor(2.0), torch.tensor(3.0), torch.tensor(4.0))
    assert WEIGHTS == (1.0, 1.0, 0.25) and parts.total.item() == pytest.approx(2.0 + 3.0 + 1.0)
    score = object_score(torch.tensor([[0.0, 2.0]]), torch.tensor([1.0]))
    s = 1 / (1 + math.exp(-1.0))
    assert score.flatten().tolist() == pytest.approx([0.5 * s, s / (1 + math.exp(-2.0))])
