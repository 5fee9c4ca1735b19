"""``recipe.loader`` (:class:`LoaderSettings`) without torch: the workflow checks the config when it is parsed (the
DataLoader it configures: :mod:`uniembed.data.loader`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from ..ranges import Range


@dataclass(frozen=True)
class LoaderSettings:
    """``recipe.loader``: how inputs are prepared (results are identical for every value)."""
    # processes preparing batches (image decode, prompts, processor) beside the forward; 0: the main process
    workers: Annotated[int, Range(ge=0)] = 0
    prefetch_factor: Annotated[int, Range(ge=1)] = 2  # batches each worker prepares ahead
    pin_memory: bool = True  # page-locked host memory for faster host-to-GPU copies (on a CUDA device only)
