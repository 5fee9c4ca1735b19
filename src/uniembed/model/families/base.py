"""What a model family knows, in one place: :class:`Family`, subclassed once per family module.

A family is registered by its ``config.json`` ``model_type`` (:mod:`uniembed.model.families`). It owns
the model and processor classes, the tokenizer's special tokens and chat template (the one renderer of
embedding, judge and reranker prompts: ``apply_chat_template``), the end-of-turn token, the LoRA target
pattern, the vision modules kept frozen, the causal / bidirectional switch, activation checkpointing,
how the frozen tower turns images into tokens (vision pretraining), the released checkpoints' weight
names, and the tiny offline factory's config. Nothing outside ``model/families/`` names a family.
"""
from __future__ import annotations

import abc
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, ClassVar, Sequence

if TYPE_CHECKING:   # torch and transformers load when a model does: reading the registry (the workflow's parse) is light
    import torch
    from torch import nn

#: Text attention head sizes that vLLM's attention backends (CPU included) all support.
VLLM_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 192, 256)
#: The LoRA target of every family here: the decoder's attention and MLP projections, never the tower.
DECODER_LORA_TARGET = r".*language_model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"


class loaded:
    """A family's class attribute made on first access (a transformers class, imported then), the same object after."""

    def __init__(self, make: Callable[[], object]):
        self.make, self.value = make, None

    def __get__(self, instance, owner=None):
        if self.value is None:
            self.value = self.make()
        return self.value


def transformers_class(name: str) -> loaded:
    """``transformers.<name>``, imported on first access."""
    return loaded(lambda: getattr(importlib.import_module("transformers"), name))


def image_only_processor(name: str) -> loaded:
    """:func:`image_only` of ``transformers.<name>``, made on first access."""
    return loaded(lambda: image_only(getattr(importlib.import_module("transformers"), name)))


def unwrap(model) -> nn.Module:
    """The transformers model inside a PEFT wrapper or a DDP / DeepSpeed engine (the model itself otherwise)."""
    from torch import nn

    while True:
        if hasattr(model, "get_base_model"):
            model = model.get_base_model()
        elif isinstance(getattr(model, "module", None), nn.Module):
            model = model.module
        else:
            return model


def _named(model, name: str) -> nn.Module:
    """The one submodule whose dotted path ends with ``name`` (``visual``, ``language_model``, ...)."""
    found = [module for path, module in unwrap(model).named_modules() if path == name or path.endswith("." + name)]
    if len(found) != 1:
        raise ValueError(f"{type(unwrap(model)).__name__}: expected one submodule named {name!r}, found {len(found)}")
    return found[0]


@dataclass(frozen=True)
class ImageEncoder:
    """A model's vision tower (with its merger / projector) as vision pretraining and probes use it:
    ``encoder(images)`` is ``[len(images), tokens, hidden]``, the tokens the decoder would see."""

    module: nn.Module
    encode: Callable[[Sequence], torch.Tensor]

    def __call__(self, images: Sequence) -> torch.Tensor:
        return self.encode(images)


class Family(abc.ABC):
    """One model family; a subclass per module of :mod:`uniembed.model.families` sets the class attributes."""

    model_type: ClassVar[str]               # config.json model_type, the registry key
    title: ClassVar[str]                    # as papers and model cards write it
    config_class: ClassVar[type]
    model_class: ClassVar[type]             # *ForConditionalGeneration (AutoModel gives its base model)
    processor_class: ClassVar[type]         # torchvision-free processor the tiny factory saves
    processor_name: ClassVar[str]           # the stock processor class a downloaded checkpoint names
    video_processor_name: ClassVar[str]
    special_tokens: ClassVar[tuple[str, ...]]
    named_tokens: ClassVar[dict[str, str]]  # tokenizer.image_token etc.
    eos_token: ClassVar[str]
    pad_token: ClassVar[str]
    end_of_turn: ClassVar[str]              # what closes an assistant answer (generative training labels it)
    instruction_separator: ClassVar[str] = "\n"   # after an embedding prompt's instruction (uniembed.model.prompts)
    chat_template: ClassVar[str]
    image_token: ClassVar[str]              # the placeholder the processor expands per image
    vision_modules: ClassVar[tuple[str, ...]]   # submodule names kept frozen (tower, merger / projector)
    lora_target: ClassVar[str] = DECODER_LORA_TARGET
    #: vision submodules (name parts) that run once per token the decoder receives, not per tower token
    merger_modules: ClassVar[tuple[str, ...]] = ()
    #: weight-name prefixes ``save_pretrained`` writes that the released checkpoints (and vLLM) spell otherwise
    released_key_prefixes: ClassVar[tuple[tuple[str, str], ...]] = ()

    # --- loaded models -------------------------------------------------------------------------------
    def vision_tower(self, model) -> nn.Module:
        """The image encoder (with its merger) of a model, base or with LM head, PEFT-wrapped or not."""
        return _named(model, self.vision_modules[0])

    def text_model(self, model) -> nn.Module:
        """The decoder (embeddings, layers, final ``norm``) whose last hidden state is pooled."""
        return _named(model, "language_model")

    def frozen_parameters(self, model) -> list[str]:
        """Names of the parameters of the vision modules (what LoRA training must leave frozen)."""
        marks = tuple(f".{name}." for name in self.vision_modules)
        return [name for name, _ in unwrap(model).named_parameters() if any(m in f".{name}" for m in marks)]

    def set_bidirectional(self, model_or_config, enabled: bool):
        """Switch the decoder between causal and bidirectional attention; returns its argument.

        Sets ``is_causal`` on the *text* sub-config (the top-level flag is ignored); the decoder reads it on
        every forward, for every attention implementation, and it is saved with the config.
        """
        config = getattr(unwrap(model_or_config), "config", model_or_config)
        text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
        text_config.is_causal = not enabled
        return model_or_config

    def enable_activation_checkpointing(self, wrapped) -> None:
        """Non-reentrant activation checkpointing on a PEFT-wrapped model (the decoder's input embeddings
        require grad, so LoRA layers inside checkpointed blocks get gradients); RuntimeError if the model did not
        take it. Only the decoder's: transformers' ``enable_input_require_grads`` hooks every sub-model's, the
        frozen tower's patch embedding too, which makes backward run through the whole tower for nothing (the
        tiny Qwen2-VL: a third more FLOPs per step, ``tests/plan``)."""
        inner = unwrap(wrapped)
        inner.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        if not inner.is_activation_checkpointing:
            raise RuntimeError(f"{type(inner).__name__}: activation checkpointing was requested but not enabled")
        for module in inner.modules():   # the hooks transformers put on every sub-model's input embeddings
            for hook in getattr(module, "_require_grads_hooks", []):
                hook.remove()
            module._require_grads_hooks = []
        embeddings = self.text_model(inner).get_input_embeddings()
        hook = embeddings.register_forward_hook(lambda module, args, output: output.requires_grad_(True))
        inner._require_grads_hooks = [hook]   # what disable_input_require_grads removes

    @abc.abstractmethod
    def image_encoder(self, model, image_processor) -> ImageEncoder:
        """The model's tower (and what vision pretraining trains with it) as an :class:`ImageEncoder` over
        ``image_processor``'s inputs: ``[len(images), tokens, hidden]`` for images of one size."""

    @abc.abstractmethod
    def image_tokens(self, config, side: int, pixels: tuple[int, int] | None = None) -> tuple[int, int]:
        """(tokens the vision tower runs over, tokens the decoder receives) for one ``side`` x ``side`` image
        under ``config`` (the model's config), as the family's processor and model count them (uniembed.plan);
        ``pixels``: the image processor's (min, max) pixel bounds where the family resizes within them (None:
        the processor's defaults)."""

    # --- object embeddings (ObjEmbed, seed 002 §3.1) ----------------------------------------------------
    def region_levels(self, config) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(channels, strides in resized-image pixels) of the feature maps :meth:`region_maps` gives."""
        raise NotImplementedError(f"{self.title}: no object embedding (region feature maps) for this family")

    def region_maps(self, model, pixel_values, image_grid_thw) -> tuple[dict, list[list[torch.Tensor]], list[tuple[int, int]]]:
        """The frozen tower run once on a processed batch: (keyword arguments that hand its outputs to the model's
        forward so it does not run the tower again, each image's feature maps [C, h, w] in :meth:`region_levels`'
        order, each image's resized (width, height))."""
        raise NotImplementedError(f"{self.title}: no object embedding (region feature maps) for this family")

    # --- the tiny offline factory ---------------------------------------------------------------------
    @abc.abstractmethod
    def tiny_config(self, processor, **sizes):
        """The family's config at toy sizes, special-token ids from ``processor.tokenizer`` (and image settings
        from its image processor, where the model needs them too)."""

    @abc.abstractmethod
    def build_processor(self, tokenizer, *, min_pixels: int, max_pixels: int):
        """A torchvision-free processor around ``tokenizer`` with images of [min, max] pixels."""

    def processor_files(self, image_config: dict) -> dict[str, dict]:
        """Extra processor files of a downloaded checkpoint (``preprocessor_config.json``, the video one)."""
        return {}

    def __repr__(self) -> str:
        return f"<family {self.model_type} ({self.title})>"


def check_head_size(hidden_size: int, num_heads: int, head_dim: int | None = None) -> int:
    """The text head size; ValueError unless vLLM's attention serves it (:data:`VLLM_HEAD_SIZES`)."""
    if head_dim is None:
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size={hidden_size} must divide by num_heads={num_heads}")
        head_dim = hidden_size // num_heads
    if head_dim not in VLLM_HEAD_SIZES:
        raise ValueError(f"text head size hidden_size / num_heads = {hidden_size} / {num_heads} = {head_dim} is not "
                         f"one vLLM's attention supports; choose sizes giving one of {VLLM_HEAD_SIZES}")
    return head_dim


def image_only(processor_class: type) -> type:
    """``processor_class`` without its video processor (the stock one imports torchvision): images and text."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        processor_class.__init__(self, image_processor, tokenizer, video_processor=None,
                                 chat_template=chat_template, **kwargs)
    return type(f"ImageOnly{processor_class.__name__}", (processor_class,),
                {"__init__": __init__, "__doc__": f"``{processor_class.__name__}`` with images and text only."})
