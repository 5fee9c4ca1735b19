"""LoRA on the language model of a Qwen2-VL (vision tower frozen), for every training task."""
from __future__ import annotations

from peft import LoraConfig, get_peft_model

from .settings import LoraSettings


def apply_lora(model, lora: LoraSettings):
    """``model`` wrapped with LoRA on the modules ``lora.target`` matches; RuntimeError if any vision
    tower parameter is trainable (the papers keep it frozen)."""
    wrapped = get_peft_model(model, LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                               target_modules=lora.target))
    vision = [n for n, p in wrapped.named_parameters() if p.requires_grad and ".visual." in n]
    if vision:
        raise RuntimeError(f"vision tower parameters are trainable: {vision[:3]}")
    return wrapped
