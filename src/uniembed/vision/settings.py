"""Settings of vision pretraining (``model.vision_pretrain`` in ``config/model/tiny.yaml``), also its config
schema: a plain dataclass with no heavy imports, read when the workflow is parsed."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from ..ranges import Range

WORLD_OBJECTS = 360   # the shapes world's distinct objects (6 shapes x 6 colours x 2 sizes x 5 positions)


@dataclass
class VisionPretrainSettings:
    """CLIP-style pretraining of the tower on fresh renderings (:mod:`uniembed.vision.pretrain`)."""

    steps: Annotated[int, Range(ge=1)] = 3000  # optimizer steps
    batch_size: Annotated[int, Range(ge=2, le=WORLD_OBJECTS)] = 64   # distinct objects; same crop captions masked
    lr: Annotated[float, Range(gt=0)] = 3.0e-3  # AdamW learning rate
    warmup_steps: Annotated[int, Range(ge=0)] = 50  # linear warmup steps
    temperature: Annotated[float, Range(gt=0)] = 0.07                 # CLIP's initial 1 / logit scale
    projection_dim: Annotated[int, Range(ge=1)] = 64  # the CLIP heads' width
    crop_share: Annotated[float, Range(ge=0, le=1)] = 0.25  # share of crops (captioned by colour and shape only)
    seed: Annotated[int, Range(ge=0)] = 0  # renderings and initialisation
    log_every: Annotated[int, Range(ge=1)] = 50  # steps between logged metrics
    probe_train: Annotated[int, Range(ge=10)] = 1500                 # renderings the linear probes train on
    probe_test: Annotated[int, Range(ge=10)] = 600                   # ... and are scored on
