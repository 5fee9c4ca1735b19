"""Save a model directory with every file a downloaded checkpoint of its family has.

``save_pretrained`` of the model and of the torchvision-free processor write ``config.json``,
``generation_config.json``, ``model.safetensors``, ``tokenizer.json``, ``tokenizer_config.json``,
``chat_template.jinja`` and ``processor_config.json``. A downloaded Qwen2-VL-7B-Instruct also has
``preprocessor_config.json`` (the image processor, flat), ``video_preprocessor_config.json``, ``vocab.json``
+ ``merges.txt`` and ``chat_template.json``; vLLM builds the stock processor (image *and* video processor)
and fails without the video file. The processor here has no video processor (torchvision cannot be
installed on the CPU path), so the family (:meth:`uniembed.model.families.base.Family.processor_files`)
writes a valid video processor config with the image processor's settings.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..artifacts import atomic_path
from .families import family_of_dir

#: Files every saved model directory holds (a real Qwen2-VL checkpoint's set; weights unsharded).
CHECKPOINT_FILES = (
    "config.json", "generation_config.json", "model.safetensors",
    "tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
    "chat_template.jinja", "chat_template.json",
    "processor_config.json", "preprocessor_config.json", "video_preprocessor_config.json",
)


def write_companion_files(directory: str | os.PathLike, processor) -> None:
    """Add the files a downloaded checkpoint has beyond what ``save_pretrained`` writes (see module doc)."""
    directory = Path(directory)
    image_config = processor.image_processor.to_dict()
    image_config.pop("processor_class", None)
    files = {**family_of_dir(directory).processor_files(image_config),
             "chat_template.json": {"chat_template": processor.chat_template}}
    for name, content in files.items():
        (directory / name).write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")
    processor.tokenizer.backend_tokenizer.model.save(str(directory))  # vocab.json + merges.txt


def _released_key_names(directory: Path, prefixes) -> None:
    if not prefixes:
        return
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = directory / "model.safetensors"
    with safe_open(str(path), framework="pt") as handle:
        metadata, tensors = handle.metadata(), {key: handle.get_tensor(key) for key in handle.keys()}
    renamed = {}
    for key, tensor in tensors.items():
        for old, new in prefixes:
            if key.startswith(old) and not key.startswith(new):
                key = new + key[len(old):]
        renamed[key] = tensor
    save_file(renamed, str(path), metadata=metadata)


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
    """Write a complete model directory into ``directory`` (not atomic; :func:`save_model_dir` is), its weight
    names spelled as the family's released checkpoints spell them."""
    model.save_pretrained(directory)
    _released_key_names(Path(directory), family_of_dir(directory).released_key_prefixes)
    processor.save_pretrained(directory)
    write_companion_files(directory, processor)
    missing = missing_checkpoint_files(directory)
    if missing:
        raise RuntimeError(f"{directory}: saving left out {missing}")
