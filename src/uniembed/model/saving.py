"""Save a model directory with every file a real Qwen2-VL / Qwen2.5-VL checkpoint has.

``save_pretrained`` of the model and of the torchvision-free processor (:mod:`.processor`) write
``config.json``, ``generation_config.json``, ``model.safetensors``, ``tokenizer.json``,
``tokenizer_config.json``, ``chat_template.jinja`` and ``processor_config.json``. A downloaded
Qwen2-VL-7B-Instruct also has ``preprocessor_config.json`` (the image processor, flat),
``video_preprocessor_config.json``, ``vocab.json`` + ``merges.txt`` and ``chat_template.json``;
vLLM builds the stock ``Qwen2VLProcessor`` (image *and* video processor) and fails without the
video file. The processor here has no video processor (torchvision cannot be installed on the
CPU path), so :func:`video_preprocessor_config` writes a valid Qwen2-VL video processor config
with the image processor's settings (patch 14, merge 2, temporal patch 2, the same pixel bounds).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..artifacts import atomic_path

#: Files every saved model directory holds (a real Qwen2-VL checkpoint's set; weights unsharded).
CHECKPOINT_FILES = (
    "config.json", "generation_config.json", "model.safetensors",
    "tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
    "chat_template.jinja", "chat_template.json",
    "processor_config.json", "preprocessor_config.json", "video_preprocessor_config.json",
)
_PROCESSOR_NAMES = {"qwen2_vl": "Qwen2VLProcessor", "qwen2_5_vl": "Qwen2_5_VLProcessor"}
_VIDEO_PROCESSOR_NAMES = {"qwen2_vl": "Qwen2VLVideoProcessor", "qwen2_5_vl": "Qwen2VLVideoProcessor"}
_SHARED_KEYS = ("do_convert_rgb", "do_normalize", "do_rescale", "do_resize", "image_mean", "image_std",
                "merge_size", "patch_size", "resample", "rescale_factor", "temporal_patch_size")


def _pixel_bounds(image_config: dict) -> tuple[int, int]:
    size = image_config.get("size") or {}
    return (int(size.get("shortest_edge", image_config.get("min_pixels"))),
            int(size.get("longest_edge", image_config.get("max_pixels"))))


def image_preprocessor_config(image_config: dict, model_type: str) -> dict:
    """The flat ``preprocessor_config.json`` of a downloaded Qwen2-VL (min/max pixels spelled out)."""
    min_pixels, max_pixels = _pixel_bounds(image_config)
    return {**image_config, "min_pixels": min_pixels, "max_pixels": max_pixels,
            "processor_class": _PROCESSOR_NAMES[model_type]}


def video_preprocessor_config(image_config: dict, model_type: str) -> dict:
    """A Qwen2-VL ``video_preprocessor_config.json`` matching the image processor's settings."""
    min_pixels, max_pixels = _pixel_bounds(image_config)
    missing = [key for key in _SHARED_KEYS if key not in image_config]
    if missing:
        raise ValueError(f"image processor config lacks {missing}; cannot derive the video processor config")
    return {**{key: image_config[key] for key in _SHARED_KEYS},
            "size": {"shortest_edge": min_pixels, "longest_edge": max_pixels},
            "min_pixels": min_pixels, "max_pixels": max_pixels,
            "min_frames": 4, "max_frames": 768, "do_sample_frames": False,
            "video_processor_type": _VIDEO_PROCESSOR_NAMES[model_type],
            "processor_class": _PROCESSOR_NAMES[model_type]}


def write_companion_files(directory: str | os.PathLike, processor) -> None:
    """Add the files a downloaded checkpoint has beyond what ``save_pretrained`` writes (see module doc)."""
    directory = Path(directory)
    model_type = json.loads((directory / "config.json").read_text())["model_type"]
    if model_type not in _PROCESSOR_NAMES:
        raise ValueError(f"{directory}/config.json: model_type {model_type!r} is not one of {sorted(_PROCESSOR_NAMES)}")
    image_config = processor.image_processor.to_dict()
    image_config.pop("processor_class", None)
    files = {"preprocessor_config.json": image_preprocessor_config(image_config, model_type),
             "video_preprocessor_config.json": video_preprocessor_config(image_config, model_type),
             "chat_template.json": {"chat_template": processor.chat_template}}
    for name, content in files.items():
        (directory / name).write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")
    processor.tokenizer.backend_tokenizer.model.save(str(directory))  # vocab.json + merges.txt


def missing_checkpoint_files(directory: str | os.PathLike) -> list[str]:
    """The :data:`CHECKPOINT_FILES` that ``directory`` lacks."""
    return [name for name in CHECKPOINT_FILES if not (Path(directory) / name).is_file()]


def save_model_dir(model, processor, output_dir: str | os.PathLike) -> Path:
    """``save_pretrained`` model + processor and the companion files into ``output_dir``, atomically,
    with the artifact manifest (sizes and sha256 of every file) that loading verifies."""
    with atomic_path(output_dir, directory=True, manifest=True) as tmp:
        write_model_files(model, processor, tmp)
    return Path(output_dir)


def write_model_files(model, processor, directory: str | os.PathLike) -> None:
    """Write a complete model directory into ``directory`` (not atomic; :func:`save_model_dir` is)."""
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    write_companion_files(directory, processor)
    missing = missing_checkpoint_files(directory)
    if missing:
        raise RuntimeError(f"{directory}: saving left out {missing}")
