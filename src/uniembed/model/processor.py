"""Qwen2-VL / Qwen2.5-VL processors that work without torchvision.

The stock ``Qwen2VLProcessor`` also builds a video processor, and both the default image and video
processors import torchvision. The subclasses here take only an image processor (the PIL backend,
``Qwen2VLImageProcessorPil``), a tokenizer and a chat template, which is all an image+text embedder
needs.

Loading trap: ``AutoProcessor.from_pretrained`` on a directory saved from these classes silently
returns the *tokenizer*, not a processor. Load with the class's own ``from_pretrained`` or, simpler,
with :func:`load_processor`, which picks the class from the saved files.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessorPil, Qwen2VLProcessor

from ..artifacts import verify_artifact


class ImageOnlyQwen2VLProcessor(Qwen2VLProcessor):
    """``Qwen2VLProcessor`` with no video processor: images and text only."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        super().__init__(
            image_processor, tokenizer, video_processor=None, chat_template=chat_template, **kwargs
        )


class ImageOnlyQwen2_5_VLProcessor(Qwen2_5_VLProcessor):
    """``Qwen2_5_VLProcessor`` with no video processor: images and text only."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        super().__init__(
            image_processor, tokenizer, video_processor=None, chat_template=chat_template, **kwargs
        )


PROCESSOR_CLASSES: dict[str, type[Qwen2VLProcessor] | type[Qwen2_5_VLProcessor]] = {
    "qwen2_vl": ImageOnlyQwen2VLProcessor,
    "qwen2_5_vl": ImageOnlyQwen2_5_VLProcessor,
}


def build_processor(
    tokenizer, variant: str = "qwen2_vl", *, min_pixels: int = 56 * 56, max_pixels: int = 28 * 28 * 1280
) -> Qwen2VLProcessor | Qwen2_5_VLProcessor:
    """Wrap ``tokenizer`` and a PIL image processor (patch 14, merge 2) into a torchvision-free processor."""
    if variant not in PROCESSOR_CLASSES:
        raise ValueError(f"unknown variant {variant!r}; expected one of {sorted(PROCESSOR_CLASSES)}")
    image_processor = Qwen2VLImageProcessorPil(min_pixels=min_pixels, max_pixels=max_pixels)
    return PROCESSOR_CLASSES[variant](image_processor, tokenizer, chat_template=tokenizer.chat_template)


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _saved_processor_class(path: Path) -> str | None:
    for name in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json"):
        if saved := _read_json(path / name).get("processor_class"):
            return saved
    return None


def load_processor(path: str | os.PathLike):
    """Load the processor saved in ``path``, choosing the class from the saved files.

    Directories written from the classes above (their ``processor_class`` is recorded) load with that
    class. Any other directory, e.g. a downloaded Qwen2-VL-7B-Instruct, loads with
    ``AutoProcessor.from_pretrained`` when torchvision is installed; without torchvision, a
    ``qwen2_vl`` / ``qwen2_5_vl`` checkpoint (``model_type`` in ``config.json``) loads with the
    torchvision-free class, which reads the same files. A directory with an artifact manifest (in it
    or its parent) is verified first (:func:`uniembed.artifacts.verify_artifact`).
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"processor directory not found: {path}")
    verify_artifact(path)
    saved_class = _saved_processor_class(path)
    by_name = {cls.__name__: cls for cls in PROCESSOR_CLASSES.values()}
    if saved_class in by_name:
        return by_name[saved_class].from_pretrained(path, local_files_only=True)

    from transformers.utils import is_torchvision_available

    model_type = _read_json(path / "config.json").get("model_type")
    if not is_torchvision_available() and model_type in PROCESSOR_CLASSES:
        return PROCESSOR_CLASSES[model_type].from_pretrained(path, local_files_only=True)

    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(path, local_files_only=True)
    if not hasattr(processor, "image_processor"):
        raise ValueError(
            f"{path}: AutoProcessor returned a {type(processor).__name__}, not an image+text processor "
            f"(saved processor_class: {saved_class!r})"
        )
    return processor
