"""The judge prompt of UniME-V2 ("MLLM-as-a-Judge for Hard Negatives Mining"), one builder for every backend.

The paper asks the judge MLLM, for each query-candidate pair::

    I will provide you with a query and a candidate. Please evaluate whether the candidate meets
    the requirements of the query. If it does, respond with 'Yes'; if it doesn't, respond with
    'No'. Query:<Query>, Candidates:<Candidate>.

and scores the pair with s = e_y / (e_y + e_n) from the next-token logits of "Yes" and "No".

Rendering: one user turn of the Qwen2-VL chat format. ``<Query>`` becomes the query's
instruction, then its image, then its text; ``<Candidate>`` the candidate's image, then its text.
Everything up to and including the query comes first and the candidate last, so the prompts of
one query's candidates share a prefix (vLLM prefix caching reuses the query's KV blocks)::

    <|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n<|im_start|>user\\n
    I will provide ... Query:{instruction} <|vision_start|><|image_pad|><|vision_end|>{text},
    Candidates:<|vision_start|><|image_pad|><|vision_end|>{text}.<|im_end|>\\n<|im_start|>assistant\\n

:func:`prompt_hash` identifies the template and its rendering; it is stored with every score.
Change :data:`PROMPT_VERSION` whenever the rendering changes.
"""
from __future__ import annotations

import base64
import hashlib
import mimetypes
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from ..embed.embedder import EmbedItem
from ..model.prompts import JUDGE_INSTRUCTION

PROMPT_VERSION = "unime-v2-judge/1: user turn; query = instruction + ' ' + image + text; candidate = image + text"
YES, NO = "Yes", "No"

TEXT, IMAGE = "text", "image"


def prompt_hash() -> str:
    """sha256 of the template text and :data:`PROMPT_VERSION` (hex)."""
    return hashlib.sha256(f"{JUDGE_INSTRUCTION}\n{PROMPT_VERSION}".encode()).hexdigest()


@dataclass(frozen=True)
class JudgePrompt:
    """The judge's user turn as ordered parts: ``("text", str)`` or ``("image", path)``."""

    parts: tuple[tuple[str, str], ...]

    @property
    def image_paths(self) -> list[str]:
        return [value for kind, value in self.parts if kind == IMAGE]

    def messages(self, image_url: Callable[[str], str] | None = None) -> list[dict]:
        """OpenAI chat messages (``image_url`` parts, base64 data URLs by default) for ``vllm serve``."""
        to_url = image_url or image_data_url
        content = [{"type": "text", "text": value} if kind == TEXT
                   else {"type": "image_url", "image_url": {"url": to_url(value)}}
                   for kind, value in self.parts]
        return [{"role": "user", "content": content}]

    def render(self, chat_template_owner) -> tuple[str, list[str]]:
        """Prompt string (the model's chat template, generation prompt added) and its image paths, in order.

        ``chat_template_owner`` is a tokenizer or processor with ``apply_chat_template``: the
        transformers backend and the offline vLLM engine both render through it.
        """
        content = [{"type": "text", "text": value} if kind == TEXT else {"type": "image"}
                   for kind, value in self.parts]
        text = chat_template_owner.apply_chat_template(
            [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True)
        return text, self.image_paths


def item_parts(item: EmbedItem, role: str, with_instruction: bool) -> list[tuple[str, str]]:
    """An item as prompt parts: its instruction (queries only), image, then text."""
    if not item.text and not item.image_path:
        raise ValueError(f"the {role} has neither text nor an image: {item}")
    parts = []
    if with_instruction and item.instruction:
        parts.append((TEXT, f"{item.instruction} "))
    if item.image_path:
        parts.append((IMAGE, str(item.image_path)))
    if item.text:
        parts.append((TEXT, item.text))
    return parts


def build_judge_prompt(query: EmbedItem, candidate: EmbedItem) -> JudgePrompt:
    """The paper's instruction with ``<Query>`` and ``<Candidate>`` filled in (query first, candidate last)."""
    head, rest = JUDGE_INSTRUCTION.split("<Query>")
    middle, tail = rest.split("<Candidate>")
    return prompt_of_parts([(TEXT, head), *item_parts(query, "query", True), (TEXT, middle),
                            *item_parts(candidate, "candidate", False), (TEXT, tail)])


def prompt_of_parts(parts: list[tuple[str, str]]) -> JudgePrompt:
    """A prompt of ``parts`` with adjacent text parts joined."""
    merged: list[tuple[str, str]] = []
    for kind, value in parts:
        if kind == TEXT and merged and merged[-1][0] == TEXT:
            merged[-1] = (TEXT, merged[-1][1] + value)
        else:
            merged.append((kind, value))
    return JudgePrompt(tuple(merged))


@lru_cache(maxsize=64)
def image_data_url(path: str) -> str:
    """``data:<mime>;base64,...`` of the file's bytes (cached: a query's image is sent with every candidate)."""
    mime = mimetypes.guess_type(path)[0] or "image/png"
    with open(path, "rb") as handle:
        return f"data:{mime};base64,{base64.b64encode(handle.read()).decode('ascii')}"
