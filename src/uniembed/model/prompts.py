"""Embedding prompts: prefix (system + instruction) | content | suffix, rendered by the model's chat template.

The content span is what U-MARVEL's instruction-masked mean pooling averages over (§3.1.1,
Finding 2: "we mask out the instruction tokens during the mean pooling process"); the
last-token mode may append a compression prompt (VLM2Vec / UniME-V2 style, "Summarize above
image and sentence in one word:", U-MARVEL Table 1). The prompt is one chat turn rendered with the
model's own template (``apply_chat_template``, the renderer the judge and rerankers use too): a system
turn, then a user turn of parts ``[instruction + "\n"] [image] text ["\n" + compression]`` and the
generation prompt. In the Qwen-VL format::

    <|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{instruction}\n   <- prefix
    <|vision_start|><|image_pad|><|vision_end|>{text}                          <- content
    \n{compression}<|im_end|>\n<|im_start|>assistant\n                          <- suffix

The split is found by rendering stand-in characters in place of the image and text (once per
template, style, instruction and modality); a template that does not render the parts in order
(so content is not one span) is an error. The prefix ends with a newline and the suffix starts with a
newline or a special token, so the prefix and suffix tokenised alone have the same token counts as
inside the whole prompt (Qwen2's pre-tokenizer splits newlines off); :func:`content_mask` checks it
on every item.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

_BEFORE_IMAGE, _TEXT = "\ue000", "\ue001"   # private-use stand-ins, never in data
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


def build_prompt(chat_template_owner, style: PromptStyle, text: str | None, has_image: bool,
                 instruction: str | None = None) -> Prompt:
    """The prompt of one query or candidate; an image goes before the text. ``chat_template_owner`` is the
    model's processor (or tokenizer): its ``apply_chat_template`` renders the turn."""
    if not text and not has_image:
        raise ValueError("an item needs text or an image")
    prefix, slot, suffix = _frame(chat_template_owner, style, has_image, instruction or None)
    return Prompt(prefix, slot + (text or ""), suffix)


_FRAMES: dict[tuple, tuple[str, str, str]] = {}


def _frame(owner, style: PromptStyle, has_image: bool, instruction: str | None) -> tuple[str, str, str]:
    """(prefix, image slot or "", suffix) of the template's rendering, cached per template and settings."""
    key = (owner.chat_template, style, has_image, instruction)
    if key not in _FRAMES:
        parts = [{"type": "text", "text": f"{instruction}\n"}] if instruction else []
        if has_image:
            parts += [{"type": "text", "text": _BEFORE_IMAGE}, {"type": "image"}]
        parts.append({"type": "text", "text": _TEXT})
        if style.compression:
            parts.append({"type": "text", "text": f"\n{style.compression}"})
        rendered = owner.apply_chat_template([{"role": "system", "content": style.system},
                                              {"role": "user", "content": parts}],
                                             tokenize=False, add_generation_prompt=True)
        head, _, suffix = rendered.partition(_TEXT)
        prefix, _, slot = head.partition(_BEFORE_IMAGE) if has_image else (head, "", "")
        image_token = getattr(owner, "image_token", None)
        if rendered.count(_TEXT) != 1 or _BEFORE_IMAGE in suffix or (has_image and image_token not in slot):
            raise ValueError(f"the chat template does not render an item's image and text in order as one span "
                             f"(content cannot be masked from the instruction): {rendered!r}")
        _FRAMES[key] = (prefix, slot, suffix)
    return _FRAMES[key]


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
