"""ObjEmbed's new modules (seed 002 §3.1): what turns a proposal box into the two input tokens of an object, and
what turns the decoder's outputs into scores.

* **Object token** (the first ``<object>``): RoIAlign of the box on each of the tower's feature maps
  (:func:`uniembed.model.regions.roi_align`, ``roi_size`` x ``roi_size``), the maps' channels concatenated and
  merged per position by a linear layer (``merge``), flattened, through a two-layer GELU projector
  (``object_projector``), plus the box's position embedding.
* **IoU token** (the second ``<object>``): one learned vector (``iou_token``) plus the same position embedding.
* **Position embedding**: the box's sine embedding (:func:`uniembed.model.regions.box_position_embedding`) through a
  two-layer GELU projector whose last layer starts at zero (``position_projector``), so training starts from the
  region features alone.
* **IoU head**: a two-layer GELU MLP (H -> H/2 -> 1) on the IoU token's final hidden state: the objectness logit.
* **Matching scale and bias** (eq. 1): s = cos(e_p, e_t) * exp(log_scale) + bias, learned, one pair for objects
  and one for the global image tokens, starting at scale 20 and bias -3 ln 99 (p = 1e-6: almost every pair is a
  negative).

The modules' shapes and initial values follow the released code (WeChatCV/ObjEmbed ``qwen3vl_objembed.py``). Where
this differs from it: its three feature levels (strides 8, 16, 32, two made by transposed convolutions from Qwen3-VL's
deepstack features) are whatever levels the family's tower has here
(:meth:`uniembed.model.families.base.Family.region_levels`); RoIAlign samples 2 x 2 points per bin (the released code:
torchvision's adaptive count); the image tokens get no position embedding of their own (the released
``image_pos_projector``); and these parameters train at the optimiser's one learning rate (the released code gives
every ``logit*`` parameter 10x). The modules are saved next to the decoder as ``object_heads.safetensors`` with their
settings in ``object_heads.json``.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .regions import box_position_embedding, roi_align

HEADS_WEIGHTS, HEADS_CONFIG = "object_heads.safetensors", "object_heads.json"
INITIAL_LOG_SCALE, INITIAL_BIAS = math.log(20.0), -3 * math.log(99.0)


@dataclass(frozen=True)
class ObjectHeadsConfig:
    hidden_size: int                     # the decoder's width H
    level_channels: tuple[int, ...]      # channels of each feature map the family gives
    level_strides: tuple[int, ...]       # its stride in resized-image pixels
    roi_size: int = 7

    @classmethod
    def from_dict(cls, values: dict) -> "ObjectHeadsConfig":
        return cls(int(values["hidden_size"]), tuple(values["level_channels"]), tuple(values["level_strides"]),
                   int(values.get("roi_size", 7)))


def matching_logits(a: torch.Tensor, b: torch.Tensor, log_scale: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Eq. 1 as a logit: cosine of every row of ``a`` with every row of ``b``, times exp(log_scale), plus bias."""
    return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T * log_scale.exp() + bias


def _mlp(width_in: int, width: int, width_out: int, zero_last: bool = False) -> nn.Sequential:
    mlp = nn.Sequential(nn.Linear(width_in, width), nn.GELU(), nn.Linear(width, width_out))
    if zero_last:
        nn.init.zeros_(mlp[2].weight)
        nn.init.zeros_(mlp[2].bias)
    return mlp


class ObjectHeads(nn.Module):
    """The new trainable modules of an object embedder (module docstring)."""

    def __init__(self, config: ObjectHeadsConfig):
        super().__init__()
        if len(config.level_channels) != len(config.level_strides) or not config.level_channels:
            raise ValueError(f"one stride per feature level expected, got {config}")
        h = config.hidden_size
        self.config = config
        self.merge = nn.Linear(sum(config.level_channels), h)
        self.object_projector = _mlp(config.roi_size ** 2 * h, h, h)
        self.position_projector = _mlp(h, h, h, zero_last=True)
        self.iou_token = nn.Parameter(torch.randn(h) * 0.02)
        self.iou_head = _mlp(h, h // 2, 1)
        self.object_log_scale = nn.Parameter(torch.tensor(INITIAL_LOG_SCALE))
        self.object_bias = nn.Parameter(torch.tensor(INITIAL_BIAS))
        self.image_log_scale = nn.Parameter(torch.tensor(INITIAL_LOG_SCALE))
        self.image_bias = nn.Parameter(torch.tensor(INITIAL_BIAS))

    def object_inputs(self, maps: list[torch.Tensor], boxes: torch.Tensor, size: tuple[float, float]) -> torch.Tensor:
        """The two input tokens of each box: [K, 2, H] (object token, IoU token). ``maps``: one image's feature maps
        [C_l, h_l, w_l] (strides of the config); ``boxes`` [K, 4] x1, y1, x2, y2 in the resized image's pixels,
        ``size`` its (width, height)."""
        c = self.config
        if len(maps) != len(c.level_strides):
            raise ValueError(f"{len(c.level_strides)} feature maps expected, got {len(maps)}")
        weight = self.merge.weight
        regions = [roi_align(m.to(weight.dtype), boxes.to(weight.dtype), c.roi_size, 1.0 / stride)
                   for m, stride in zip(maps, c.level_strides)]                   # [K, C_l, r, r] each
        merged = self.merge(torch.cat(regions, 1).permute(0, 2, 3, 1))              # [K, r, r, H]
        features = self.object_projector(merged.flatten(1))                         # [K, H]
        position = self.position_projector(
            box_position_embedding(boxes.to(weight.dtype), size[0], size[1], c.hidden_size))
        return torch.stack([features + position, self.iou_token.expand_as(position) + position], 1)

    def iou_logits(self, iou_states: torch.Tensor) -> torch.Tensor:
        """Objectness logit of each IoU token's final hidden state [K, H]: [K]."""
        return self.iou_head(iou_states).squeeze(-1)

    def save(self, directory: str | Path) -> None:
        from safetensors.torch import save_file

        directory = Path(directory)
        save_file({k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}, directory / HEADS_WEIGHTS)
        (directory / HEADS_CONFIG).write_text(json.dumps(asdict(self.config), indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> "ObjectHeads":
        """The heads saved in ``directory``; FileNotFoundError naming what is missing."""
        from safetensors.torch import load_file

        directory = Path(directory)
        for name in (HEADS_CONFIG, HEADS_WEIGHTS):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"{directory}: no {name}; not an object embedder saved by this project")
        heads = cls(ObjectHeadsConfig.from_dict(json.loads((directory / HEADS_CONFIG).read_text())))
        heads.load_state_dict(load_file(str(directory / HEADS_WEIGHTS)))
        return heads

