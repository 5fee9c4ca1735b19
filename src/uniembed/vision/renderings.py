"""Fresh renderings of the shapes world for vision pretraining and probing, never a stored data-set image.

Real MLLMs' vision towers arrive pretrained (Qwen2-VL's from a CLIP model) on web images, never on the
benchmarks they are evaluated on. The analogue here: objects of the world drawn on the fly from a seeded
stream of this module's own (``seeded_rng(seed, "vision", purpose)``), with the world's jitter, so no
rendering equals a stored train, val or test image (the world's images come from other streams; the
tests check the bytes). A share of them are crops (a two-object scene, the object's 32x32 box scaled
back to 56x56), the form of MMEB's grounding candidates. Each rendering comes with its object, whose
attributes are the probe's labels and whose caption is the CLIP text: the full caption for a picture,
colour and shape alone for a crop (a crop is centred and scaled, so where the object was and how big it
was are not in it: a caption that named them would teach the tower to guess).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..data.synthetic.world import (ALL_OBJECTS, POSITIONS, ShapeObject, caption, crop, partial_caption, render,
                                     render_scene, seeded_rng)


@dataclass(frozen=True)
class Rendering:
    image: Image.Image
    obj: ShapeObject
    is_crop: bool

    @property
    def caption(self) -> str:
        return partial_caption({"color": self.obj.color, "shape": self.obj.shape}) if self.is_crop else caption(self.obj)


def rendering_stream(seed: int, purpose: str) -> np.random.Generator:
    """The generator of one purpose ("pretrain", "probe_train", "probe_test"): independent of the world's."""
    return seeded_rng(seed, "vision", purpose)


def draw_renderings(rng: np.random.Generator, n: int, crop_share: float = 0.0) -> list[Rendering]:
    """``n`` renderings of distinct objects when ``n`` <= 360 (uniform over the world's objects otherwise
    with repeats), each a crop with probability ``crop_share``."""
    if not 0.0 <= crop_share <= 1.0:
        raise ValueError(f"crop_share must be in [0, 1], got {crop_share}")
    picks = rng.choice(len(ALL_OBJECTS), size=n, replace=n > len(ALL_OBJECTS))
    out = []
    for index in picks:
        obj = ALL_OBJECTS[int(index)]
        if rng.random() < crop_share:
            other = ALL_OBJECTS[int(rng.integers(len(ALL_OBJECTS)))]
            while other.position == obj.position:
                other = other.replace("position", list(POSITIONS)[int(rng.integers(len(POSITIONS)))])
            image, boxes = render_scene([obj, other], rng)
            out.append(Rendering(crop(image, boxes[0]), obj, True))
        else:
            out.append(Rendering(render(obj, rng), obj, False))
    return out
