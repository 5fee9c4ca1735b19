"""LoRA on the decoder of any registered family (vision tower frozen), for every training task."""
from __future__ import annotations

from peft import LoraConfig, get_peft_model

from ..model.families import family_of
from .settings import LoraSettings


def apply_lora(model, lora: LoraSettings):
    """``model`` wrapped with LoRA on the modules ``lora.target`` matches (None: the family's pattern);
    RuntimeError if any parameter of the family's vision modules is trainable (the papers keep it frozen)."""
    chosen = family_of(model)
    wrapped = get_peft_model(model, LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                               target_modules=lora.target or chosen.lora_target))
    frozen = set(chosen.frozen_parameters(wrapped))
    vision = [n for n, p in wrapped.get_base_model().named_parameters() if p.requires_grad and n in frozen]
    if vision:
        raise RuntimeError(f"vision tower parameters are trainable: {vision[:3]}")
    return wrapped


def enable_activation_checkpointing(wrapped) -> None:
    """The family's non-reentrant activation checkpointing on a LoRA-wrapped model."""
    family_of(wrapped).enable_activation_checkpointing(wrapped)
