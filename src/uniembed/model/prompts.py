"""Embedding prompts for Qwen2-VL: prefix (system + instruction) | content | suffix.

The content span is what U-MARVEL's instruction-masked mean pooling averages over (§3.1.1,
Finding 2: "we mask out the instruction tokens during the mean pooling process"); the
last-token mode may append a compression prompt (VLM2Vec / UniME-V2 style, "Summarize above
image and sentence in one word:", U-MARVEL Table 1). Layout, in the Qwen2-VL chat format::

    <|im_start|>system\\n{system}<|im_end|>\\n<|im_start|>user\\n{instruction}\\n   <- prefix
    <|vision_start|><|image_pad|><|vision_end|>{text}                          <- content
    \\n{compression}<|im_end|>\\n<|im_start|>assistant\\n                          <- suffix

The prefix ends with a newline and the suffix starts with a newline or a special token, so
the prefix and suffix tokenised alone have the same token counts as inside the whole prompt
(Qwen2's pre-tokenizer splits newlines off); :func:`content_mask` checks it on every item.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

IMAGE_SLOT = "<|vision_start|><|image_pad|><|vision_end|>"
#: The judge's instruction (UniME-V2 "MLLM-as-a-Judge"; the same text as U-MARVEL's reranker prompt):
#: judge/prompt.py builds its prompts with it, the tiny tokenizer is trained on it (model/tiny.py).
JUDGE_INSTRUCTION = (
    "I will provide you with a query and a candidate. Please evaluate whether the candidate meets the "
    "requirements of the query. If it does, respond with 'Yes'; if it doesn't, respond with 'No'. "
    "Query:<Query>, Candidates:<Candidate>."
)
#: The instruct stage's captioning request (instruct/data.py), also in the tiny tokenizer's corpus.
DESCRIBE = "Describe the picture."


@dataclass(frozen=True)
class PromptStyle:
    system: str = "You are a helpful assistant."
    compression: str | None = None  # e.g. "Summarize above image and sentence in one word:"


@dataclass(frozen=True)
class Prompt:
    prefix: str
    content: str
    suffix: str

    @property
    def text(self) -> str:
        return self.prefix + self.content + self.suffix


def build_prompt(style: PromptStyle, text: str | None, has_image: bool, instruction: str | None = None) -> Prompt:
    """The prompt of one query or candidate; an image goes before the text."""
    prefix = f"<|im_start|>system\n{style.system}<|im_end|>\n<|im_start|>user\n"
    if instruction:
        prefix += f"{instruction}\n"
    content = (IMAGE_SLOT if has_image else "") + (text or "")
    suffix = (f"\n{style.compression}" if style.compression else "") + "<|im_end|>\n<|im_start|>assistant\n"
    if not content:
        raise ValueError("an item needs text or an image")
    return Prompt(prefix, content, suffix)


def content_mask(prompts: list[Prompt], input_ids: torch.Tensor, attention_mask: torch.Tensor, tokenizer) -> torch.Tensor:
    """Boolean [batch, seq] mask of content tokens (image tokens included), for either padding side."""
    prefix_ids = tokenizer([p.prefix for p in prompts], add_special_tokens=False)["input_ids"]
    suffix_ids = tokenizer([p.suffix for p in prompts], add_special_tokens=False)["input_ids"]
    mask = torch.zeros_like(attention_mask, dtype=torch.bool)
    for row, (pre, suf) in enumerate(zip(prefix_ids, suffix_ids)):
        positions = attention_mask[row].nonzero().flatten()
        real = input_ids[row, positions]
        if real[: len(pre)].tolist() != pre or real[len(real) - len(suf):].tolist() != suf:
            raise ValueError(f"prompt boundary tokens merged with content in item {row}: {prompts[row].text!r}")
        mask[row, positions[len(pre): len(real) - len(suf)]] = True
    if not mask.any(dim=1).all():
        raise ValueError("an item has no content tokens")
    return mask
