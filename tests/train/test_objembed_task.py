"""The object task's labels and objective (ObjEmbed §3.2, eq. 1-4) against direct computations, and a short run."""
import numpy as np
import pytest
import torch

from uniembed.embed.objects import ImageOutputs
from uniembed.train.object_data import TrainingImage, TrainingObject, cover_boxes
from uniembed.train.objembed_task import _columns, _pairs
from uniembed.train.objective_settings import ObjEmbedSettings
from uniembed.train.objectives.objembed import ObjEmbedObjective, ObjectLabels
from uniembed.train.region_losses import sigmoid_focal_loss


def _image(objects, proposals):
    return TrainingImage("x.png", np.array(proposals, dtype=np.float32),
                         tuple(TrainingObject(t, b, c) for t, b, c in objects), "short", "long")


SQUARE, CIRCLE = (0, 0, 10, 10), (20, 20, 30, 30)
A = _image([("the square", SQUARE, False), ("a small red square", SQUARE, True), ("a circle", CIRCLE, True)],
           [[0, 0, 10, 10], [20, 20, 30, 31], [50, 50, 60, 60]])
B = _image([("the square", (5, 5, 15, 15), False), ("a small red square", (5, 5, 15, 15), True)],
           [[5, 5, 15, 15], [0, 0, 10, 10]])


def test_categories_are_one_column_for_the_batch_and_phrases_one_per_object():
    columns = _columns([A, B], world=1)
    assert columns == [("a small red square", None, None), ("a circle", None, None), ("the square", 0, 0),
                       ("the square", 1, 0)]
    padded = _columns([A, B], world=3)
    assert len(padded) == 6 and padded[4:] == [("a small red square", -1, None)] * 2


def test_a_category_counts_in_every_image_and_a_phrase_only_in_its_own():
    columns = _columns([A, B], world=1)
    ious, mask, best = _pairs(B, 1, B.proposals, columns)
    # B's proposals against: the category (B has a small red square at (5,5,15,15)), "a circle" (B has none),
    # A's phrase (masked: says nothing of B), B's own phrase
    assert torch.allclose(ious[:, 0], torch.tensor([1.0, 25 / 175]))
    assert torch.equal(ious[:, 1], torch.zeros(2)) and torch.equal(mask[:, 1], torch.ones(2))
    assert torch.equal(mask[:, 2], torch.zeros(2)) and torch.equal(mask[:, 3], torch.ones(2))
    assert torch.allclose(ious[:, 3], ious[:, 0]) and torch.allclose(best, torch.tensor([1.0, 25 / 175]))
    ious_a, mask_a, _ = _pairs(A, 0, A.proposals, columns)
    assert torch.allclose(ious_a[:, 1], torch.tensor([0.0, 100 / 110, 0.0])) and torch.equal(mask_a[:, 3], torch.zeros(3))


def test_every_box_gets_a_proposal_at_half_iou():
    proposals = np.array([[0, 0, 10, 10], [50, 50, 52, 52]], dtype=np.float32)
    boxes = np.array([[0, 0, 10, 10], [20, 20, 40, 40], [20, 20, 40, 40]], dtype=np.float32)
    covered = cover_boxes(proposals, boxes, 0.5)
    assert covered.tolist() == proposals.tolist() + [[20, 20, 40, 40]]
    assert cover_boxes(proposals, boxes[:1], 0.5) is proposals


def _focal(x, t):   # RetinaNet's, written out
    p = 1 / (1 + np.exp(-x))
    ce = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    p_t = p * t + (1 - p) * (1 - t)
    return ce * (1 - p_t) ** 2 * (0.25 * t + 0.75 * (1 - t))


def test_the_objective_is_equation_4_on_the_steps_labels():
    torch.manual_seed(0)
    settings = ObjEmbedSettings(region_weight=1.0, image_weight=0.5, iou_weight=0.25)
    heads = torch.nn.Module()
    for name, value in (("object_log_scale", np.log(20.0)), ("object_bias", -2.0), ("image_log_scale", np.log(10.0)),
                        ("image_bias", -1.0)):
        setattr(heads, name, torch.nn.Parameter(torch.tensor(float(value))))
    outputs = ImageOutputs(torch.randn(3, 8), torch.randn(3), torch.randn(2, 8), torch.randn(2, 8), [2, 1])
    texts, short, long = torch.randn(4, 8), torch.randn(2, 8), torch.randn(2, 8)
    ious = torch.tensor([[0.7, 0.0, 0.2, 0.9], [0.3, 0.6, 0.0, 0.0], [0.0, 0.0, 0.55, 0.0]])
    mask = torch.tensor([[1.0, 1, 0, 1], [1, 1, 1, 1], [1, 0, 1, 1]])
    best = torch.tensor([0.9, 0.6, 0.4])
    labels = ObjectLabels(ious, mask, best)
    loss = ObjEmbedObjective(settings)(outputs, texts, short, long, labels, heads)

    cos = lambda a, b: (a / np.linalg.norm(a, axis=1, keepdims=True)) @ (b / np.linalg.norm(b, axis=1, keepdims=True)).T  # noqa: E731
    o, t = outputs.objects.numpy(), texts.numpy()
    region = (_focal(cos(o, t) * 20 - 2, (ious.numpy() > 0.5).astype(float)) * mask.numpy()).sum() / 3
    image = 0.0
    for tokens, captions in ((outputs.coarse, short), (outputs.detailed, long)):
        logits = cos(tokens.numpy(), captions.numpy()) * 10 - 1
        image += _focal(logits, np.eye(2)).sum() / 2 / 2   # each image's own caption is its column
    iou = _focal(outputs.iou_logits.numpy()[:2], best.numpy()[:2]).mean()
    assert loss.item() == pytest.approx(region + 0.5 * image + 0.25 * iou, rel=1e-5)
    assert ObjEmbedObjective(settings).parts == {}
