"""Model families as plug-ins, registered by ``config.json`` ``model_type``.

Every module of this package except :mod:`.base` and :mod:`.qwen` (shared parts) defines one family as
``FAMILY`` (a :class:`~uniembed.model.families.base.Family`); the registry finds them by walking the
package, so adding a family is one module (and its tests). Lookups::

    family("qwen2_vl")          # by model_type; ValueError naming the known ones
    family_of_dir(path)         # by a saved model directory's config.json
    family_of(model)            # by a loaded (or PEFT-wrapped) model's config
"""
from __future__ import annotations

import importlib
import json
import os
import pkgutil
from functools import lru_cache
from pathlib import Path

from .base import Family, ImageEncoder, unwrap

__all__ = ["Family", "ImageEncoder", "families", "family", "family_of", "family_of_dir", "unwrap"]
_SHARED = {"base", "qwen"}


@lru_cache(maxsize=1)
def families() -> dict[str, Family]:
    """``{model_type: family}`` of every family module, in name order."""
    found = {}
    for module in sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name not in _SHARED):
        entry = importlib.import_module(f"{__name__}.{module}").FAMILY
        if entry.model_type in found:
            raise RuntimeError(f"model_type {entry.model_type!r} is registered twice (module {module})")
        found[entry.model_type] = entry
    return found


def family(model_type: str | None) -> Family:
    """The family registered for ``model_type``; ValueError naming the registered ones."""
    known = families()
    if model_type not in known:
        raise ValueError(f"unknown model family {model_type!r}; registered families: {', '.join(sorted(known))}")
    return known[model_type]


def family_of_dir(path: str | os.PathLike) -> Family:
    """The family of the model saved in ``path`` (its ``config.json`` ``model_type``)."""
    config = Path(path) / "config.json"
    if not config.is_file():
        raise FileNotFoundError(f"{path}: no config.json, so no model family to read")
    model_type = json.loads(config.read_text()).get("model_type")
    try:
        return family(model_type)
    except ValueError as error:
        raise ValueError(f"{config}: {error}") from None


def family_of(model_or_config) -> Family:
    """The family of a loaded model (PEFT / DDP wrappers and base-model-only classes included) or its config."""
    target = unwrap(model_or_config)
    return family(getattr(target, "config", target).model_type)
