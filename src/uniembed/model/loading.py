"""Load a saved model of a registered family (tiny or real) from a local directory, optionally with a LoRA adapter.

``load_for_embedding`` gives the base model without the LM head (``AutoModel``: e.g. ``Qwen2VLModel``), ``load_for_generation`` the full model with the LM head
(``AutoModelForImageTextToText``). Only local files are read.

Adapter trap: PEFT only warns about adapter keys that fit no module and then runs the base model.
Here an adapter loads into either head (its keys are moved to the head's layout) and is checked
key by key and value by value (:mod:`uniembed.model.adapters`); any mismatch is an error.

Integrity: a directory saved with an artifact manifest (in it or its parent: a training stage's
``<tag>/model`` and ``<tag>/adapter``) is verified file by file before loading
(:func:`uniembed.artifacts.verify_artifact`). One without (a downloaded checkpoint) has each weight
file's header checked against its size, and any error reading its weights names the directory and files.
"""
from __future__ import annotations

import contextlib
import json
import os
import pickle
import zipfile
from pathlib import Path

from safetensors import SafetensorError
from transformers import AutoModel, AutoModelForImageTextToText

from ..artifacts import MANIFEST_NAME, WEIGHT_SUFFIXES, ArtifactError, verify_artifact
from .adapters import ADAPTER_WEIGHT_FILES, load_checked_adapter
from .families import family_of

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
_ARCHITECTURE_KEYS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
)


_READ_ERRORS = (SafetensorError, OSError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile)


def _weight_files(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())


def _check_readable(path: Path, what: str) -> None:
    """Without a manifest: every ``*.safetensors`` header parses and covers its file, every zip ``*.bin``
    has its central directory (both catch a truncated file, reading a few KiB)."""
    from safetensors import safe_open

    for file in _weight_files(path):
        try:
            if file.suffix == ".safetensors":
                with safe_open(str(file), framework="pt"):
                    pass
            else:
                with open(file, "rb") as f:
                    zipped = f.read(4) == b"PK\x03\x04"
                if zipped:
                    zipfile.ZipFile(file).close()
        except Exception as error:
            raise ArtifactError(f"{file}: unreadable {what} weights ({type(error).__name__}: {error}); {path} has no "
                                f"{MANIFEST_NAME} to check it against (truncated download or copy?)") from error


@contextlib.contextmanager
def _reading_weights(path: Path, what: str):
    """Re-raise an error from reading the weights in ``path`` naming the directory and its weight files."""
    try:
        yield
    except _READ_ERRORS as error:
        names = ", ".join(p.name for p in _weight_files(path)) or "none"
        raise ArtifactError(f"{path}: cannot read the {what} weights (files: {names}): "
                            f"{type(error).__name__}: {error}") from error


def _check_dir(path: Path, what: str, config_name: str, weight_files: tuple[str, ...]) -> Path:
    """The directory exists, verifies against its artifact manifest (if any), and holds a config and weights."""
    if not path.is_dir():
        raise FileNotFoundError(f"{what} directory not found: {path}")
    verified = verify_artifact(path)
    if not (path / config_name).is_file():
        raise FileNotFoundError(f"{path}: no {config_name}; not a saved {what} directory")
    if not any((path / name).is_file() for name in weight_files):
        raise FileNotFoundError(f"{path}: no {what} weights (expected one of {', '.join(weight_files)})")
    if not verified:
        _check_readable(path, what)
    return path


def _architecture(config_path: Path) -> dict:
    config = json.loads(config_path.read_text())
    text = config.get("text_config") or config
    return {"model_type": config.get("model_type"), **{key: text.get(key) for key in _ARCHITECTURE_KEYS}}


def _attach_adapter(model, base_path: Path, adapter_path: str | os.PathLike):
    adapter_path = _check_dir(Path(adapter_path), "adapter", "adapter_config.json", ADAPTER_WEIGHT_FILES)
    recorded = json.loads((adapter_path / "adapter_config.json").read_text()).get("base_model_name_or_path")
    recorded_config = Path(recorded) / "config.json" if recorded else None
    if recorded_config is not None and recorded_config.is_file():
        expected, found = _architecture(recorded_config), _architecture(base_path / "config.json")
        if expected != found:
            raise ValueError(
                f"adapter {adapter_path} was trained on {recorded} ({expected}), "
                f"which does not match the base model {base_path} ({found})"
            )
    context = f"adapter {adapter_path} (base_model_name_or_path={recorded!r}) on base model {base_path}"
    with _reading_weights(adapter_path, "adapter"):
        return load_checked_adapter(model, adapter_path, context)


def _load(auto_class, path, adapter_path, torch_dtype, kwargs):
    path = _check_dir(Path(path), "model", "config.json", WEIGHT_FILES)
    if torch_dtype is not None:
        kwargs["dtype"] = torch_dtype
    with _reading_weights(path, "model"):
        model = auto_class.from_pretrained(path, local_files_only=True, **kwargs)
    if adapter_path is not None:
        model = _attach_adapter(model, path, adapter_path)
    return model.eval()


def load_for_embedding(
    path: str | os.PathLike, adapter_path: str | os.PathLike | None = None, torch_dtype=None, **kwargs
):
    """The base model (no LM head) saved in ``path``, with the LoRA adapter in ``adapter_path`` if given.

    ``torch_dtype`` (a ``torch.dtype`` or its name) and ``kwargs`` (e.g. ``attn_implementation``) go
    to ``from_pretrained``.
    """
    return _load(AutoModel, path, adapter_path, torch_dtype, kwargs)


def load_for_generation(
    path: str | os.PathLike, adapter_path: str | os.PathLike | None = None, torch_dtype=None, **kwargs
):
    """The full image-text-to-text model (with LM head) saved in ``path``, optionally with a LoRA adapter."""
    return _load(AutoModelForImageTextToText, path, adapter_path, torch_dtype, kwargs)


def set_bidirectional(model_or_config, enabled: bool):
    """Switch the decoder between causal and bidirectional attention (the family's switch,
    :meth:`uniembed.model.families.base.Family.set_bidirectional`); returns its argument."""
    return family_of(model_or_config).set_bidirectional(model_or_config, enabled)
