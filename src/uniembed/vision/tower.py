"""The vision tower's output as the language model sees it: Qwen2-VL's merged image tokens, per image.

Qwen2-VL cuts an image into 14-pixel patches, runs the vision transformer and merges each 2x2 block of
patches into one token of the language model's width (the ``merger``); a 56x56 picture is 4 tokens.
:func:`tower_tokens` returns them per image, ``[images, tokens, hidden]``, kept apart: a mean over them
loses where things are (the tokens are the picture's quadrants).
"""
from __future__ import annotations

from typing import Sequence

import torch
from PIL import Image
from torch import Tensor


def tower_tokens(visual, image_processor, images: Sequence[Image.Image], device: torch.device | str = "cpu") -> Tensor:
    """``[len(images), tokens, hidden]`` merged tokens of ``visual`` (the model's vision tower with its merger);
    every image must give the same number of tokens (the world's pictures are all 56x56)."""
    inputs = image_processor(images=list(images), return_tensors="pt")
    grid = inputs["image_grid_thw"]
    merge = visual.spatial_merge_size ** 2
    counts = (grid.prod(-1) // merge).tolist()
    if len(set(counts)) != 1:
        raise ValueError(f"images give different numbers of tokens {sorted(set(counts))}; resize them to one size")
    dtype = next(visual.parameters()).dtype
    merged = visual(inputs["pixel_values"].to(device=device, dtype=dtype), grid_thw=grid.to(device)).pooler_output
    return merged.view(len(images), counts[0], -1)
