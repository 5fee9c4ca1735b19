"""A tiny, randomly initialised model of any registered family, built offline.

The model has the family's real architecture (e.g. ``Qwen2VLForConditionalGeneration``) at toy width,
with a tokenizer trained on the given corpus and a torchvision-free processor
(:mod:`uniembed.model.families`). It is saved with ``save_pretrained``, so every stage loads it with
``from_pretrained(path)`` exactly as it would load a downloaded checkpoint of that family.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import torch
from transformers import GenerationConfig

from .families import Family, family
from .saving import save_model_dir
from .tokenizer import train_tokenizer


def prompt_corpus() -> list[str]:
    """The fixed texts the pipeline sends besides the data: chat roles, the system prompt, the judge's
    instruction (UniME-V2) and the instruct prompts. Trained into the tokenizer (a real tokenizer knows
    English), so the judge prompt is ~60 tokens instead of ~170 byte pieces."""
    from .prompts import DESCRIBE, JUDGE_INSTRUCTION, PromptStyle

    return ["system", "user", "assistant", PromptStyle.system, JUDGE_INSTRUCTION, DESCRIBE]


def tiny_config(processor, *, family_name: str, **sizes):
    """The family's config at toy sizes (``sizes``: hidden_size, num_layers, num_heads, num_kv_heads,
    intermediate_size, vision_depth, vision_embed_dim, vocab_size, init_std, vision_init_std), special-token
    ids from ``processor.tokenizer``. The text head size ``hidden_size / num_heads`` must be one vLLM serves; input and
    output embeddings are not tied (as in the 7B checkpoints)."""
    return family(family_name).tiny_config(processor, **sizes)


def init_tiny_model(config, seed: int = 0):
    """A randomly initialised ``*ForConditionalGeneration`` for ``config``; same seed, same weights."""
    torch.manual_seed(seed)
    return family(config.model_type).model_class(config).eval()


def build_tiny_model(
    output_dir: str | os.PathLike,
    corpus: Iterable[str],
    *,
    family_name: str,
    vocab_size: int = 2048,
    image_min_pixels: int = 56 * 56,
    image_max_pixels: int = 112 * 112,
    seed: int = 0,
    **sizes,
) -> Path:
    """Train a tokenizer on ``corpus`` (+ :func:`prompt_corpus`), build a random tiny model and save everything.

    ``sizes`` are :func:`tiny_config`'s architecture sizes. ``output_dir`` receives the model (config,
    generation config, safetensors), the processor, the tokenizer and the chat template, plus the files a
    downloaded checkpoint also has (:mod:`uniembed.model.saving`), written atomically. Images are resized to
    between ``image_min_pixels`` and ``image_max_pixels`` (in steps of the family's patch x merge size: a
    56x56 image is 4 decoder tokens in Qwen2-VL, 28-pixel steps). The same corpus and seed give identical files.
    """
    chosen: Family = family(family_name)
    tokenizer = train_tokenizer([*corpus, *prompt_corpus()], chosen, vocab_size=vocab_size)
    processor = chosen.build_processor(tokenizer, min_pixels=image_min_pixels, max_pixels=image_max_pixels)
    config = chosen.tiny_config(processor, vocab_size=vocab_size, **sizes)
    model = init_tiny_model(config, seed)
    model.generation_config = GenerationConfig(
        bos_token_id=config.text_config.bos_token_id,
        eos_token_id=[tokenizer.eos_token_id, tokenizer.pad_token_id],
        pad_token_id=tokenizer.pad_token_id,
    )
    return save_model_dir(model, processor, output_dir)
