"""Vision pretraining of the tiny model's tower: CLIP-style image-caption contrast on fresh renderings.

Real MLLMs do not learn to see during instruction tuning or embedding training: Qwen2-VL's tower starts
from a CLIP-trained ViT (Qwen2-VL §2.1) and both papers freeze it (U-MARVEL §3.1, UniME-V2 §4.1). The
tiny model's tower is random, and frozen it cannot tell shapes apart (a linear probe on its tokens: shape
at chance). This stage gives it what a real tower brings, the way real towers are made (CLIP, Radford et
al. 2021, eq. "symmetric cross entropy"): for a batch of B renderings of distinct objects,

    z_i = normalise(W_img [merged tokens of image i, concatenated])      (the tower + merger, trained)
    t_j = normalise(mean of the caption's word embeddings)               (a bag-of-words text side)
    L   = 1/2 (CE(s * z t^T, diag) + CE(s * t z^T, diag)),  s = exp(logit scale), learnable

The image side keeps the tower's tokens apart (a quadrant each at 56 pixels), so what the language
model later reads, token by token, is what was trained. The text side is a bag of words on purpose: it
must only tell captions apart, and the world's captions are sets of attribute words. Only the tower
(patch embedding, blocks, merger) is kept: the projection and the text side are thrown away, as CLIP's
text tower is when a ViT initialises an MLLM. The language model and its head are untouched.
"""
from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ..data.synthetic.world import ALL_OBJECTS, caption, partial_caption
from .renderings import draw_renderings, rendering_stream
from .settings import VisionPretrainSettings

if TYPE_CHECKING:
    from ..model.families import ImageEncoder


class CaptionEncoder(nn.Module):
    """A bag of words: the mean of the caption's word embeddings (the vocabulary: every word of the world's
    captions, whole and colour-and-shape)."""

    def __init__(self, dim: int):
        super().__init__()
        texts = [t for o in ALL_OBJECTS for t in (caption(o), partial_caption({"color": o.color, "shape": o.shape}))]
        self.vocab = {w: i for i, w in enumerate(sorted({w for t in texts for w in t.split()}))}
        self.embed = nn.EmbeddingBag(len(self.vocab), dim, mode="mean")

    def forward(self, captions: list[str]) -> torch.Tensor:
        ids = [[self.vocab[w] for w in c.split()] for c in captions]
        flat = torch.tensor([i for row in ids for i in row])
        offsets = torch.tensor([0] + [len(row) for row in ids[:-1]]).cumsum(0)
        return self.embed(flat, offsets)


def clip_loss(image: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor,
              captions: list[str] | None = None) -> torch.Tensor:
    """Symmetric cross-entropy of the scaled cosine matrix, matches on the diagonal (CLIP). With ``captions``,
    an off-diagonal pair with the very same caption (two crops of blue triangles) is masked, not a negative."""
    logits = logit_scale.exp() * F.normalize(image, dim=-1) @ F.normalize(text, dim=-1).T
    target = torch.arange(len(image))
    if captions is not None:
        same = torch.tensor([[a == b for b in captions] for a in captions]) & ~torch.eye(len(captions), dtype=torch.bool)
        logits = logits.masked_fill(same, float("-inf"))
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def pretrain_tower(encoder: ImageEncoder, settings: VisionPretrainSettings, progress: bool = True) -> dict:
    """Train ``encoder.module`` (the model's tower, in place) with :func:`clip_loss`; the loss history and the
    wall time. ``encoder`` is the model family's image path (:meth:`uniembed.model.families.base.Family.image_encoder`)."""
    torch.manual_seed(settings.seed)
    rng = rendering_stream(settings.seed, "pretrain")
    visual = encoder.module
    with torch.no_grad():
        width = encoder([r.image for r in draw_renderings(rng, 1)]).flatten(1).shape[1]
    project = nn.Linear(width, settings.projection_dim)
    text = CaptionEncoder(settings.projection_dim)
    logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / settings.temperature)))
    params = [*visual.parameters(), *project.parameters(), *text.parameters(), logit_scale]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / max(1, settings.warmup_steps))
                                                 * 0.5 * (1 + math.cos(math.pi * step / settings.steps)))
    visual.train()
    history, start = [], time.perf_counter()
    bar = tqdm(range(settings.steps), desc="vision pretraining", disable=not progress)
    for step in bar:
        batch = draw_renderings(rng, settings.batch_size, settings.crop_share)
        image = project(encoder([r.image for r in batch]).flatten(1))
        captions = [r.caption for r in batch]
        loss = clip_loss(image, text(captions), logit_scale, captions)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        with torch.no_grad():
            logit_scale.clamp_(max=math.log(100.0))   # CLIP's cap
        if step % settings.log_every == 0 or step == settings.steps - 1:
            history.append({"step": step + 1, "loss": float(loss.detach()), "temperature": float(1 / logit_scale.detach().exp())})
            bar.set_postfix(loss=f"{float(loss):.3f}")
    visual.eval()
    return {"history": history, "seconds": time.perf_counter() - start}
