"""Linear probes of a frozen vision tower: can a linear map read each attribute off its tokens?

The check of vision pretraining (the analogue of the linear-probe evaluation CLIP towers are judged by):
features are the tower's merged tokens of a picture, concatenated (``[tokens * hidden]``, standardised
with the training renderings' mean and sd); one softmax regression per attribute (shape, colour, size,
position) is trained on ``n_train`` fresh renderings and scored on ``n_test`` others, both drawn from
streams of their own (never a data-set image, never the pretraining stream). Whole pictures only: a crop
shows neither where its object was nor how big.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.synthetic.world import ATTRIBUTES, VALUES
from .renderings import draw_renderings, rendering_stream


@torch.no_grad()
def _features(encoder, renderings, batch_size: int = 256) -> torch.Tensor:
    parts = [encoder([r.image for r in renderings[i:i + batch_size]]).flatten(1)
             for i in range(0, len(renderings), batch_size)]
    return torch.cat(parts).float()


def fit_linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, classes: int, steps: int = 300,
                     lr: float = 0.05, seed: int = 0) -> torch.nn.Linear:
    """Softmax regression on ``train_x`` (full batch, Adam, a little weight decay)."""
    torch.manual_seed(seed)
    head = torch.nn.Linear(train_x.shape[1], classes)
    optimizer = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=1e-4)
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(head(train_x), train_y).backward()
        optimizer.step()
    return head


def probe_accuracies(encoder, *, seed: int = 0, n_train: int = 1500, n_test: int = 600,
                     steps: int = 300) -> dict[str, float]:
    """Held-out accuracy of a linear probe per attribute on the frozen tower's tokens."""
    visual = encoder.module     # the model family's image path (uniembed.model.families.base.ImageEncoder)
    was_training = visual.training
    visual.eval()
    try:
        train = draw_renderings(rendering_stream(seed, "probe_train"), n_train)
        test = draw_renderings(rendering_stream(seed, "probe_test"), n_test)
        x_train, x_test = _features(encoder, train), _features(encoder, test)
    finally:
        visual.train(was_training)
    mean, sd = x_train.mean(0), x_train.std(0).clamp(min=1e-6)
    x_train, x_test = (x_train - mean) / sd, (x_test - mean) / sd
    accuracies = {}
    for attribute in ATTRIBUTES:
        values = VALUES[attribute]
        label = lambda rs: torch.tensor([values.index(getattr(r.obj, attribute)) for r in rs])  # noqa: E731
        head = fit_linear_probe(x_train, label(train), len(values), steps=steps, seed=seed)
        with torch.no_grad():
            accuracies[attribute] = float((head(x_test).argmax(-1) == label(test)).float().mean())
    return accuracies
