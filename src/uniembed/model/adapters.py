"""Attach a saved LoRA adapter to a loaded Qwen2-VL model and prove that it loaded, key by key.

PEFT only warns about adapter keys that fit no module ("Found missing adapter keys"), silently
ignores keys the model does not have, and then runs the base model. Here the adapter file's keys
are compared with the LoRA parameters present in the loaded ``PeftModel`` in both directions, and
every loaded value with the file's; any difference is an :class:`AdapterMismatchError`.

Layouts: ``AutoModel`` gives ``Qwen2VLModel`` (the embedder, which the trainer wraps), the full
``...ForConditionalGeneration`` holds that same model at ``model.``. An adapter saved from one
loads into the other by adding or removing that prefix; which one is decided from the module
names the file's keys point at.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

PEFT_PREFIX = "base_model.model."
ADAPTER_WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")
_SHOWN = 12  # keys named per list in an error message


class AdapterMismatchError(ValueError):
    """The adapter file and the LoRA parameters of the loaded model differ (keys or values)."""


def adapter_weights_file(adapter_dir: str | Path) -> Path:
    """The weights file PEFT reads from ``adapter_dir`` (safetensors first)."""
    for name in ADAPTER_WEIGHT_FILES:
        if (Path(adapter_dir) / name).is_file():
            return Path(adapter_dir) / name
    raise FileNotFoundError(f"{adapter_dir}: no adapter weights (expected one of {', '.join(ADAPTER_WEIGHT_FILES)})")


def read_adapter_weights(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    return torch.load(path, map_location="cpu", weights_only=True)


def _module_path(key: str) -> str:
    """``base_model.model.<module>.lora_A.weight`` -> ``<module>``."""
    return key.removeprefix(PEFT_PREFIX).split(".lora_", 1)[0]


def layout_change(model, keys) -> tuple[str, str]:
    """``(old, new)``: the module-path prefix to replace so the file's keys name ``model``'s modules.

    ``("", "")`` keeps the keys; ``("", "model.")`` fits an ``AutoModel`` adapter to the full model,
    ``("model.", "")`` the reverse. The candidate under which most keys name a module wins (ties: no change).
    """
    modules = {name for name, _ in model.named_modules()}
    inner = getattr(model, "base_model_prefix", "") or "model"
    candidates = [("", ""), ("", f"{inner}."), (f"{inner}.", "")]

    def fitting(change):
        old, new = change
        paths = [_module_path(k) for k in keys if k.startswith(PEFT_PREFIX)]
        return sum(p.startswith(old) and new + p[len(old):] in modules for p in paths)

    return max(candidates, key=fitting)


def _rename(key: str, old: str, new: str) -> str:
    if not key.startswith(PEFT_PREFIX + old):
        return key
    return PEFT_PREFIX + new + key[len(PEFT_PREFIX + old):]


def loaded_lora_parameters(peft_model, adapter_name: str = "default") -> dict[str, torch.Tensor]:
    """The LoRA tensors present in ``peft_model`` under the names an adapter file uses (adapter name removed)."""
    pattern = re.compile(rf"\.(lora_\w+)\.{re.escape(adapter_name)}(?=\.|$)")
    found = {}
    for name, tensor in peft_model.state_dict().items():
        match = pattern.search(name)
        if match:
            found[name[:match.end(1)] + name[match.end():]] = tensor
    return found


def _listing(keys) -> str:
    keys = sorted(keys)
    more = f" ... and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else ""
    return f"{keys[:_SHOWN]}{more}"


def check_loaded_adapter(peft_model, weights: dict[str, torch.Tensor], weights_path: Path,
                         change: tuple[str, str] = ("", ""), adapter_name: str = "default") -> None:
    """Raise :class:`AdapterMismatchError` unless ``weights`` (the file, keys renamed by ``change``) are
    exactly the LoRA parameters of ``peft_model``, with equal values."""
    old, new = change
    from_file = {_rename(key, old, new): key for key in weights}
    loaded = loaded_lora_parameters(peft_model, adapter_name)
    target = type(peft_model.get_base_model()).__name__
    moved = f" (its module paths read with prefix {old!r} replaced by {new!r})" if change != ("", "") else ""
    where = f"adapter {weights_path} on {target}{moved}"
    missing = [_rename(key, new, old) for key in loaded if key not in from_file]
    unexpected = [from_file[key] for key in from_file if key not in loaded]
    if missing or unexpected:
        expected = _listing(_rename(key, new, old) for key in loaded)
        raise AdapterMismatchError(
            f"{where} does not fit the model: missing keys (LoRA parameters of the model absent from the file): "
            f"{_listing(missing)}; unexpected keys (in the file, not LoRA parameters of the model): "
            f"{_listing(unexpected)}. Expected exactly these {len(loaded)} keys: {expected}")
    differ = []
    for key, original in from_file.items():
        value, stored = loaded[key].detach(), weights[original]
        if value.shape != stored.shape or not torch.equal(value.cpu(), stored.to(value.dtype)):
            differ.append(f"{original} (file {tuple(stored.shape)} {stored.dtype}, model {tuple(value.shape)} {value.dtype})")
    if differ:
        raise AdapterMismatchError(f"{where}: the loaded values differ from the file for keys {_listing(differ)}")


def load_checked_adapter(model, adapter_dir: Path, context: str):
    """``PeftModel.from_pretrained(model, adapter_dir)`` for inference, keys fitted to ``model``'s layout, checked."""
    from peft import PeftConfig, PeftModel, PeftType

    config = PeftConfig.from_pretrained(str(adapter_dir))
    if config.peft_type != PeftType.LORA:
        raise ValueError(f"{context}: only LoRA adapters are supported, this one is {config.peft_type}")
    weights_path = adapter_weights_file(adapter_dir)
    weights = read_adapter_weights(weights_path)
    stray = [key for key in weights if not key.startswith(PEFT_PREFIX)]
    if stray:
        raise AdapterMismatchError(f"adapter {weights_path}: unexpected keys (not under {PEFT_PREFIX!r}, so not "
                                   f"LoRA parameters of any model): {_listing(stray)}")
    old, new = layout_change(model, weights)
    key_mapping = {f"^{re.escape(old)}": new} if (old, new) != ("", "") else None
    try:
        peft_model = PeftModel.from_pretrained(model, str(adapter_dir), key_mapping=key_mapping)
    except (RuntimeError, ValueError, KeyError) as error:
        raise ValueError(f"cannot load {context}: {error}") from error
    check_loaded_adapter(peft_model, weights, weights_path, (old, new))
    return peft_model
