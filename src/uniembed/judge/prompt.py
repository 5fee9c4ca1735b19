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

:func:`prompt_hash` identifies the template and its rendering; it is stored with every score. The prompt is a
generic :class:`uniembed.model.chat.ChatPrompt`, rendered through the judge model's own chat template.
Change :data:`PROMPT_VERSION` whenever the rendering changes.
"""
from __future__ import annotations

import hashlib

from ..embed.embedder import EmbedItem
from ..model.chat import TEXT, ChatPrompt, item_parts, prompt_of_parts
from ..model.prompts import JUDGE_INSTRUCTION

PROMPT_VERSION = "unime-v2-judge/1: user turn; query = instruction + ' ' + image + text; candidate = image + text"


def prompt_hash() -> str:
    """sha256 of the template text and :data:`PROMPT_VERSION` (hex)."""
    return hashlib.sha256(f"{JUDGE_INSTRUCTION}\n{PROMPT_VERSION}".encode()).hexdigest()


def build_judge_prompt(query: EmbedItem, candidate: EmbedItem) -> ChatPrompt:
    """The paper's instruction with ``<Query>`` and ``<Candidate>`` filled in (query first, candidate last)."""
    head, rest = JUDGE_INSTRUCTION.split("<Query>")
    middle, tail = rest.split("<Candidate>")
    return prompt_of_parts([(TEXT, head), *item_parts(query, "query", True), (TEXT, middle),
                            *item_parts(candidate, "candidate", False), (TEXT, tail)])
