"""Load a model directory's processor, torchvision or not.

Each family's stock processor also builds a video processor, and the default image and video processors
import torchvision. The tiny factory saves a torchvision-free subclass per family (images and text only:
:attr:`uniembed.model.families.base.Family.processor_class`).

Loading trap: ``AutoProcessor.from_pretrained`` on a directory saved from these classes silently
returns the *tokenizer*, not a processor. Load with :func:`load_processor`, which picks the class from the
saved files.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..artifacts import verify_artifact
from .families import families


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _saved_processor_class(path: Path) -> str | None:
    for name in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json"):
        if saved := _read_json(path / name).get("processor_class"):
            return saved
    return None


def load_processor(path: str | os.PathLike):
    """Load the processor saved in ``path``, choosing the class from the saved files.

    Directories written by the tiny factory (their torchvision-free ``processor_class`` is recorded) load
    with that class. Any other directory, e.g. a downloaded Qwen2-VL-7B-Instruct, loads with
    ``AutoProcessor.from_pretrained`` when torchvision is installed; without torchvision, a checkpoint of a
    registered family (``model_type`` in ``config.json``) loads with the family's torchvision-free class,
    which reads the same files. A directory with an artifact manifest (in it or its parent) is verified
    first (:func:`uniembed.artifacts.verify_artifact`).
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"processor directory not found: {path}")
    verify_artifact(path)
    saved_class = _saved_processor_class(path)
    by_name = {f.processor_class.__name__: f.processor_class for f in families().values()}
    if saved_class in by_name:
        return by_name[saved_class].from_pretrained(path, local_files_only=True)

    from transformers.utils import is_torchvision_available

    model_type = _read_json(path / "config.json").get("model_type")
    if not is_torchvision_available() and model_type in families():
        return families()[model_type].processor_class.from_pretrained(path, local_files_only=True)

    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(path, local_files_only=True)
    if not hasattr(processor, "image_processor"):
        raise ValueError(
            f"{path}: AutoProcessor returned a {type(processor).__name__}, not an image+text processor "
            f"(saved processor_class: {saved_class!r})"
        )
    return processor
