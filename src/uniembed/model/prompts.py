"""Embedding prompts rendered by the model's chat template, with the content pieces marked.

The content is what U-MARVEL's instruction-masked mean pooling averages over (§3.1.1, Finding 2: "we
mask out the instruction tokens during the mean pooling process"): the item's image and text, not the
system turn, the instruction or the template's frame; the last-token mode may append a compression
prompt (VLM2Vec / UniME-V2 style, "Summarize above image and sentence in one word:", U-MARVEL Table 1).
The prompt is one chat turn rendered with the model's own template (``apply_chat_template``, the renderer
the judge and rerankers use too): a system turn, then a user turn of parts ``[instruction + separator]
[image] text ["\n" + compression]`` and the generation prompt. In the Qwen-VL format the content is one
span::

    <|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{instruction}\n   <- frame
    <|vision_start|><|image_pad|><|vision_end|>{text}                          <- content
    \n{compression}<|im_end|>\n<|im_start|>assistant\n                          <- frame

A template that renders images before all text (LLaVA-OneVision) gives two content pieces around the
instruction (``<image>`` | ``\n{instruction}\n`` | ``{text}``). The pieces are found in the rendering (a
stand-in character for the text, the image token with the vision start / end tokens around it), once per
template, style, instruction and modality. :func:`content_mask` tokenises each prompt with character
offsets, expands the image token the way the processor did, and checks the result is the processed row
token for token (a token across a piece boundary is an error).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:   # torch is imported where a mask is built: the workflow reads PromptStyle without it
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
    """A rendered prompt as ordered pieces ``(text, is_content)``."""

    pieces: tuple[tuple[str, bool], ...]

    @property
    def text(self) -> str:
        return "".join(piece for piece, _ in self.pieces)

    @property
    def content(self) -> str:
        return "".join(piece for piece, is_content in self.pieces if is_content)

    @property
    def spans(self) -> list[tuple[int, int]]:
        """Character spans of the content pieces in :attr:`text`."""
        spans, position = [], 0
        for piece, is_content in self.pieces:
            if is_content:
                spans.append((position, position + len(piece)))
            position += len(piece)
        return spans

    @property
    def prefix(self) -> str:
        return self.text[: self.spans[0][0]]

    @property
    def suffix(self) -> str:
        return self.text[self.spans[-1][1]:]


_TEXT = "\ue001"   # a private-use stand-in for the item's text while rendering, never in data


def build_prompt(chat_template_owner, style: PromptStyle, text: str | None, has_image: bool,
                 instruction: str | None = None, separator: str = "\n") -> Prompt:
    """The prompt of one query or candidate; the image part goes before the text. ``chat_template_owner`` is
    the model's processor: its ``apply_chat_template`` renders the turn, its ``image_token`` marks the image.
    ``separator`` follows the instruction (the model family's, e.g. "" where the template starts each text
    part on a new line)."""
    if not text and not has_image:
        raise ValueError("an item needs text or an image")
    pieces = []
    for piece, is_content in _frame(chat_template_owner, style, has_image, instruction or None, separator):
        piece = piece.replace(_TEXT, text or "")
        if piece:
            pieces.append((piece, is_content))
    return Prompt(tuple(pieces))


_FRAMES: dict[tuple, tuple[tuple[str, bool], ...]] = {}


def _frame(owner, style: PromptStyle, has_image: bool, instruction: str | None, separator: str):
    """The rendering as pieces, the text still the stand-in; cached per template and settings."""
    key = (owner.chat_template, getattr(owner, "image_token", None), style, has_image, instruction, separator)
    if key not in _FRAMES:
        parts = [{"type": "text", "text": f"{instruction}{separator}"}] if instruction else []
        parts += [{"type": "image"}] if has_image else []
        parts.append({"type": "text", "text": _TEXT})
        if style.compression:
            parts.append({"type": "text", "text": f"\n{style.compression}"})
        rendered = owner.apply_chat_template([{"role": "system", "content": style.system},
                                              {"role": "user", "content": parts}],
                                             tokenize=False, add_generation_prompt=True)
        if rendered.count(_TEXT) != 1:
            raise ValueError(f"the chat template renders the item's text {rendered.count(_TEXT)} times: {rendered!r}")
        cuts = [(rendered.index(_TEXT), rendered.index(_TEXT) + 1)]
        if has_image:
            cuts.append(_image_slot(owner, rendered))
        cuts.sort()
        pieces, position = [], 0
        for start, end in cuts:
            pieces += [(rendered[position:start], False), (rendered[start:end], True)]
            position = end
        pieces.append((rendered[position:], False))
        merged = []
        for piece, is_content in pieces:
            if not piece:                                   # an empty frame piece between touching content
                continue
            if is_content and merged and merged[-1][1]:    # touching content pieces (Qwen-VL's slot + text) are one
                merged[-1] = (merged[-1][0] + piece, True)
            else:
                merged.append((piece, is_content))
        _FRAMES[key] = tuple(merged)
    return _FRAMES[key]


def _image_slot(owner, rendered: str) -> tuple[int, int]:
    """The span of the image placeholder: the image token with the vision start / end tokens around it."""
    tokenizer = getattr(owner, "tokenizer", owner)
    token = getattr(owner, "image_token", None) or getattr(tokenizer, "image_token", None)
    if not token or rendered.count(token) != 1:
        raise ValueError(f"the chat template does not render one image token {token!r} for the item's image: "
                         f"{rendered!r}")
    start, end = rendered.index(token), rendered.index(token) + len(token)
    before, after = getattr(tokenizer, "vision_start_token", None), getattr(tokenizer, "vision_end_token", None)
    if before and rendered[:start].endswith(before):
        start -= len(before)
    if after and rendered[end:].startswith(after):
        end += len(after)
    return start, end


def content_mask(prompts: list[Prompt], input_ids: torch.Tensor, attention_mask: torch.Tensor, tokenizer,
                 image_token: str) -> torch.Tensor:
    """Boolean [batch, seq] mask of content tokens (image tokens included), for either padding side.

    Each prompt is tokenised with character offsets; a token is content when it lies in a content piece
    (ValueError when one crosses a piece boundary). The image token is repeated as often as the processor
    expanded it (an item has at most one image), and the result must be the row's real tokens exactly.
    """
    import torch

    image_id = tokenizer.convert_tokens_to_ids(image_token)
    encoded = tokenizer([p.text for p in prompts], add_special_tokens=False, return_offsets_mapping=True)
    mask = torch.zeros_like(attention_mask, dtype=torch.bool)
    for row, (prompt, ids, offsets) in enumerate(zip(prompts, encoded["input_ids"], encoded["offset_mapping"])):
        spans = prompt.spans
        flags = []
        for start, end in offsets:
            inside = any(a <= start and end <= b for a, b in spans)
            if not inside and any(start < b and a < end for a, b in spans):
                raise ValueError(f"prompt boundary tokens merged with content in item {row}: {prompt.text!r}")
            flags.append(inside)
        positions = attention_mask[row].nonzero().flatten()
        real = input_ids[row, positions].tolist()
        images = ids.count(image_id)
        if images > 1:
            raise ValueError(f"item {row} has {images} image tokens before processing; an item has at most one image")
        copies = real.count(image_id) if images else 1
        expanded_ids, expanded_flags = [], []
        for token, flag in zip(ids, flags):
            repeat = copies if token == image_id else 1
            expanded_ids += [token] * repeat
            expanded_flags += [flag] * repeat
        if expanded_ids != real:
            raise ValueError(f"prompt boundary tokens merged with content in item {row} (its tokens differ from the "
                             f"processed row): {prompt.text!r}")
        mask[row, positions] = torch.tensor(expanded_flags, dtype=torch.bool)
    if not mask.any(dim=1).all():
        raise ValueError("an item has no content tokens")
    return mask
