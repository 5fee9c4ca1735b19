"""The settings of each training objective (:mod:`uniembed.train.objectives`), without torch: the workflow checks
a recipe's objective sections against them when it is parsed, and each objective module trains with them.

``OBJECTIVE_SETTINGS`` maps an objective's name to its settings, ``OBJECTIVE_TASKS`` to the task it trains
(``embedding``: contrastive; ``rerank``: generative;
``objects``: object embeddings, ObjEmbed).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Optional

from ..ranges import Range
from ..rerank.released import RELEASED_POSITION_WEIGHTS
#: What the soft-label loss does with a query whose negatives are the filter's random fallback.
FALLBACK_ROWS = ("keep", "drop", "mask")


@dataclass
class InfoNCESettings:
    # a number, or "previous": the final tau of the starting model's stage
    temperature: Annotated[float, Range(gt=0)] | str = 0.05
    learnable_temperature: bool = False
    # tau's own learning rate (no weight decay); None = the optimiser's lr
    temperature_lr: Annotated[float, Range(gt=0)] | None = None
    temperature_min: Annotated[float, Range(gt=0)] = 0.005   # 0 < min <= temperature <= max (Temperature)
    temperature_max: Annotated[float, Range(gt=0)] = 1.0
    bidirectional: bool = False
    num_negatives: Annotated[int, Range(ge=0)] = 0  # hard negatives per query (a mined table, or the source's own)
    use_given_negatives: bool = False    # take them from the curated source instead of a mined table


@dataclass
class SoftLabelSettings:
    temperature: Annotated[float, Range(gt=0)] = 0.02
    num_negatives: Annotated[int, Range(ge=1)] = 8
    info_nce_weight: Annotated[float, Range(ge=0)] = 0.0
    fallback_rows: str = "keep"        # keep | drop | mask (see the module docstring)
    label_temperature: Optional[Annotated[float, Range(gt=0)]] = None   # Q's tau; None: `temperature` (the paper)

    def __post_init__(self):
        if self.fallback_rows not in FALLBACK_ROWS:
            raise ValueError(f"soft_label.fallback_rows must be one of {FALLBACK_ROWS}, got {self.fallback_rows!r}")


@dataclass
class DistillSettings:
    # Table 12 row 5 continues tau from the hard-negative stage
    temperature: Annotated[float, Range(gt=0)] | str = "previous"
    learnable_temperature: bool = True
    temperature_lr: Annotated[float, Range(gt=0)] | None = None
    temperature_min: Annotated[float, Range(gt=0)] = 0.005
    temperature_max: Annotated[float, Range(gt=0)] = 1.0
    num_negatives: Annotated[int, Range(ge=1)] = 49  # non-positive candidates per query (+ the positive = 50)
    # teacher logits = teacher_scale * S_multi / tau (1 at alpha 0.5 = released)
    teacher_scale: Annotated[float, Range(gt=0)] = 1.0


@dataclass
class PointwiseSettings:
    depth: Annotated[int, Range(ge=1)] = 100  # the "No" candidate is drawn from the recall model's top `depth`


@dataclass
class PairListSettings:
    # candidates in a listwise example: the positive + list_size - 1 negatives (released code: 6)
    list_size: Annotated[int, Range(ge=2)] = 6
    pairwise_weight: Annotated[float, Range(ge=0)] = 1.0
    listwise_weight: Annotated[float, Range(ge=0)] = 1.0
    # P(the positive sits at position 1, 2, ...), normalised; positions past the list are never drawn
    positive_position_weights: list[Annotated[float, Range(ge=0)]] = field(
        default_factory=lambda: list(RELEASED_POSITION_WEIGHTS))

    def __post_init__(self):
        weights = self.positive_position_weights
        if not weights or min(weights) < 0 or sum(weights[: self.list_size]) <= 0:
            raise ValueError(f"pair_list: positive_position_weights must be non-negative with a positive sum over the "
                             f"first list_size ({self.list_size}) positions, got {weights}")


@dataclass
class ObjEmbedSettings:
    """ObjEmbed (seed 002 §3.2): eq. 4's weights (§4.1), eq. 2's IoU for a positive proposal, proposals per image."""
    region_weight: Annotated[float, Range(ge=0)] = 1.0
    image_weight: Annotated[float, Range(ge=0)] = 1.0
    iou_weight: Annotated[float, Range(ge=0)] = 0.25
    positive_iou: Annotated[float, Range(gt=0, lt=1)] = 0.5
    num_proposals: Annotated[int, Range(ge=1)] = 20   # per training image (the ground-truth boxes always covered)
    roi_size: Annotated[int, Range(ge=1)] = 7          # RoIAlign output per side (§3.1: 7 x 7)


OBJECTIVE_SETTINGS = {"info_nce": InfoNCESettings, "soft_label": SoftLabelSettings, "distill": DistillSettings,
                      "pointwise": PointwiseSettings, "pair_list": PairListSettings,
                      "objembed": ObjEmbedSettings}
OBJECTIVE_TASKS = {"info_nce": "embedding", "soft_label": "embedding", "distill": "embedding",
                   "pointwise": "rerank", "pair_list": "rerank",
                   "objembed": "objects"}
