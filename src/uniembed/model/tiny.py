"""A tiny, randomly initialised Qwen2-VL / Qwen2.5-VL built offline.

The model has the real architecture (``Qwen2VLForConditionalGeneration`` or
``Qwen2_5_VLForConditionalGeneration``) at toy width, with a tokenizer trained on the given corpus
and a torchvision-free processor. It is saved with ``save_pretrained``, so every stage loads it with
``from_pretrained(path)`` exactly as it would load Qwen2-VL-7B-Instruct.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import torch
from transformers import (
    GenerationConfig,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
)

from uniembed.model.processor import build_processor
from uniembed.model.saving import save_model_dir
from uniembed.model.tokenizer import train_tokenizer

MODEL_CLASSES = {
    "qwen2_vl": (Qwen2VLConfig, Qwen2VLForConditionalGeneration),
    "qwen2_5_vl": (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration),
}

# Qwen2-VL's vision patching: 14-pixel patches, 2x2 spatial merge, so one LLM token per 28x28 pixels.
PATCH_SIZE = 14
SPATIAL_MERGE_SIZE = 2
VISION_HEAD_DIM = 16
#: Text attention head sizes that vLLM's attention backends (CPU included) all support.
VLLM_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 192, 256)


def prompt_corpus() -> list[str]:
    """The fixed texts the pipeline sends besides the data: chat roles, the system prompt, the judge's
    instruction (UniME-V2) and the instruct prompts. Trained into the tokenizer (a real tokenizer knows
    English), so the judge prompt is ~60 tokens instead of ~170 byte pieces."""
    from uniembed.model.prompts import DESCRIBE, JUDGE_INSTRUCTION, PromptStyle

    return ["system", "user", "assistant", PromptStyle.system, JUDGE_INSTRUCTION, DESCRIBE]


def mrope_section(head_dim: int) -> list[int]:
    """Split the rotary half-dimension into (temporal, height, width) sections in Qwen2-VL's 2:3:3 ratio.

    ``mrope_section(128) == [16, 24, 24]``, the value in the Qwen2-VL-7B config; the sum is always
    ``head_dim // 2``.
    """
    if head_dim % 2 or head_dim < 8:
        raise ValueError(f"head_dim={head_dim} must be even and at least 8 for M-RoPE")
    half = head_dim // 2
    temporal = half // 4
    height = (half - temporal) // 2
    return [temporal, height, half - temporal - height]


def tiny_config(
    tokenizer,
    *,
    variant: str = "qwen2_vl",
    vocab_size: int = 2048,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 2,
    num_kv_heads: int = 1,
    intermediate_size: int = 128,
    vision_depth: int = 2,
    vision_embed_dim: int = 32,
    init_std: float = 0.02,
    vision_init_std: float = 0.02,
) -> Qwen2VLConfig | Qwen2_5_VLConfig:
    """The ``variant`` config at the given toy sizes, with special-token ids taken from ``tokenizer``.

    M-RoPE sections sum to half the text head dimension; the vision merger outputs ``hidden_size``
    (the LLM width); input and output embeddings are not tied (as in Qwen2-VL-7B). The text head size
    ``hidden_size / num_heads`` must be one vLLM serves (:data:`VLLM_HEAD_SIZES`; 64 / 2 = 32).
    ``init_std`` / ``vision_init_std`` are the ``initializer_range`` of the language model and the
    vision tower (0.02 in Qwen2-VL-7B; a 64-wide model trains far faster from ~1/sqrt(64)).
    """
    if variant not in MODEL_CLASSES:
        raise ValueError(f"unknown variant {variant!r}; expected one of {sorted(MODEL_CLASSES)}")
    if hidden_size % num_heads or num_heads % num_kv_heads:
        raise ValueError(
            f"hidden_size={hidden_size} must divide by num_heads={num_heads}, "
            f"and num_heads by num_kv_heads={num_kv_heads}"
        )
    if hidden_size // num_heads not in VLLM_HEAD_SIZES:
        raise ValueError(
            f"text head size hidden_size / num_heads = {hidden_size} / {num_heads} = {hidden_size // num_heads} "
            f"is not one vLLM's attention supports; choose sizes giving one of {VLLM_HEAD_SIZES}"
        )
    if vision_embed_dim % VISION_HEAD_DIM:
        raise ValueError(f"vision_embed_dim={vision_embed_dim} must be a multiple of {VISION_HEAD_DIM}")
    ids = tokenizer.convert_tokens_to_ids
    text_config = dict(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_window_layers=num_layers,
        rope_parameters={
            "rope_type": "default",
            "rope_theta": 1_000_000.0,
            "mrope_section": mrope_section(hidden_size // num_heads),
        },
        initializer_range=init_std,
        bos_token_id=ids("<|endoftext|>"),
        eos_token_id=ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
    )
    vision_config = dict(
        depth=vision_depth,
        num_heads=vision_embed_dim // VISION_HEAD_DIM,
        patch_size=PATCH_SIZE,
        spatial_merge_size=SPATIAL_MERGE_SIZE,
        temporal_patch_size=2,
        initializer_range=vision_init_std,
    )
    if variant == "qwen2_vl":
        # Qwen2-VL: embed_dim is the tower width, hidden_size the merger output (= LLM width).
        vision_config.update(embed_dim=vision_embed_dim, hidden_size=hidden_size, mlp_ratio=4)
    else:
        # Qwen2.5-VL: hidden_size is the tower width, out_hidden_size the merger output (= LLM width).
        vision_config.update(
            hidden_size=vision_embed_dim,
            intermediate_size=2 * vision_embed_dim,
            out_hidden_size=hidden_size,
            # 56-pixel attention windows, so a 112x112 image already uses windowed attention.
            window_size=SPATIAL_MERGE_SIZE * PATCH_SIZE * 2,
            fullatt_block_indexes=[vision_depth - 1],
        )
    config_class, _ = MODEL_CLASSES[variant]
    return config_class(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=False,
        initializer_range=init_std,
    )


def init_tiny_model(config: Qwen2VLConfig | Qwen2_5_VLConfig, seed: int = 0):
    """A randomly initialised ``*ForConditionalGeneration`` for ``config``; same seed, same weights."""
    model_class = {config_class: model for config_class, model in MODEL_CLASSES.values()}[type(config)]
    torch.manual_seed(seed)
    return model_class(config).eval()


def build_tiny_model(
    output_dir: str | os.PathLike,
    corpus: Iterable[str],
    *,
    variant: str = "qwen2_vl",
    vocab_size: int = 2048,
    image_min_pixels: int = 56 * 56,
    image_max_pixels: int = 112 * 112,
    seed: int = 0,
    **sizes: int,
) -> Path:
    """Train a tokenizer on ``corpus`` (+ :func:`prompt_corpus`), build a random tiny model and save everything.

    ``sizes`` are :func:`tiny_config`'s architecture sizes (hidden_size, num_layers, ...).
    ``output_dir`` receives the model (config, generation config, safetensors), the processor, the
    tokenizer and the chat template, plus the files a downloaded checkpoint also has
    (:mod:`uniembed.model.saving`: video preprocessor config, vocab/merges, ...), written atomically. Images are resized to between
    ``image_min_pixels`` and ``image_max_pixels`` in 28-pixel steps: a 56x56 image gives 16 patches
    and 4 ``<|image_pad|>`` tokens; the default cap (112x112) gives at most 16 tokens per image.
    The same corpus and seed give identical files.
    """
    if variant not in MODEL_CLASSES:
        raise ValueError(f"unknown variant {variant!r}; expected one of {sorted(MODEL_CLASSES)}")
    tokenizer = train_tokenizer([*corpus, *prompt_corpus()], vocab_size=vocab_size)
    processor = build_processor(tokenizer, variant, min_pixels=image_min_pixels, max_pixels=image_max_pixels)
    config = tiny_config(tokenizer, variant=variant, vocab_size=vocab_size, **sizes)
    model = init_tiny_model(config, seed)
    model.generation_config = GenerationConfig(
        bos_token_id=config.text_config.bos_token_id,
        eos_token_id=[tokenizer.eos_token_id, tokenizer.pad_token_id],
        pad_token_id=tokenizer.pad_token_id,
    )
    return save_model_dir(model, processor, output_dir)
