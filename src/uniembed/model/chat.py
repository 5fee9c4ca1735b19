"""Generic chat prompts of a generative VLM: one user turn as ordered text and image parts, rendered through the
model's own chat template (``apply_chat_template``) or as OpenAI messages for ``vllm serve``, and the Yes/No answer
tokens that generative scoring reads (the judge, UniME-V2; the pointwise reranker, U-MARVEL App. C eq. 3).

The judge's prompt (:mod:`uniembed.judge.prompt`), the rerankers' prompts (:mod:`uniembed.rerank.prompts`) and the
judge's instruct data (:mod:`uniembed.instruct.data`) are built from these parts; nothing here knows a prompt's words.
"""
from __future__ import annotations

import base64
import mimetypes
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Protocol

from .tokenizer import assert_single_token

YES, NO = "Yes", "No"     # the answer words generative scoring reads: s = e_yes / (e_yes + e_no)
TEXT, IMAGE = "text", "image"


class PromptItem(Protocol):
    """A query or candidate as a prompt sees it (e.g. :class:`uniembed.embed.embedder.EmbedItem`)."""

    text: str | None
    image_path: str | None
    instruction: str | None


@dataclass(frozen=True)
class ChatPrompt:
    """One user turn as ordered parts: ``("text", str)`` or ``("image", path)``."""

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


@dataclass(frozen=True)
class ChatExample:
    """A user turn for generative training (:mod:`uniembed.train.generative`): (``("text", str)`` / ``("image", path)`` parts, in order) and the answer to train on."""

    parts: tuple[tuple[str, str], ...]
    answer: str
    kind: str = ""  # what the example teaches (logged per kind), e.g. "judge_yes", "describe"

    def __post_init__(self):
        if not self.parts or any(kind not in (TEXT, IMAGE) for kind, _ in self.parts):
            raise ValueError(f"an example needs parts of kind {TEXT!r} or {IMAGE!r}; got {self.parts!r}")
        if not self.answer:
            raise ValueError(f"an example needs a non-empty answer; prompt parts {self.parts!r}")

    def render(self, processor) -> tuple[str, list[str]]:
        """The prompt string (chat template, generation prompt added) and its image paths in order."""
        return ChatPrompt(self.parts).render(processor)


def item_parts(item: PromptItem, role: str, with_instruction: bool) -> list[tuple[str, str]]:
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


def prompt_of_parts(parts: list[tuple[str, str]]) -> ChatPrompt:
    """A prompt of ``parts`` with adjacent text parts joined."""
    merged: list[tuple[str, str]] = []
    for kind, value in parts:
        if kind == TEXT and merged and merged[-1][0] == TEXT:
            merged[-1] = (TEXT, merged[-1][1] + value)
        else:
            merged.append((kind, value))
    return ChatPrompt(tuple(merged))


@lru_cache(maxsize=64)
def image_data_url(path: str) -> str:
    """``data:<mime>;base64,...`` of the file's bytes (cached: a query's image is sent with every candidate)."""
    mime = mimetypes.guess_type(path)[0] or "image/png"
    with open(path, "rb") as handle:
        return f"data:{mime};base64,{base64.b64encode(handle.read()).decode('ascii')}"


def yes_no_token_ids(tokenizer) -> tuple[int, int]:
    """Token ids of "Yes" and "No"; a clear error when either is not a single token."""
    try:
        yes_id, no_id = assert_single_token(tokenizer, [YES, NO])
    except ValueError as error:
        raise ValueError(f"generative scoring reads the next-token logits of {YES!r} and {NO!r}, so both must be "
                         f"single tokens of the model's tokenizer: {error}") from error
    return yes_id, no_id
