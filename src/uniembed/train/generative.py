"""Generative (next-token) training on chat examples: cross-entropy on the answer tokens only.

An example is one user turn (ordered text and image parts, rendered with the model's chat
template, generation prompt added) and the assistant's answer. The loss is the next-token
cross-entropy of the answer tokens and the family's end-of-turn token (``<|im_end|>`` in ChatML); system and user turns and
padding are masked (label -100), as in UniME-V2's reranker and U-MARVEL's pointwise reranker
(next-token CE on "Yes"/"No"). An answer may be several tokens ("a large red circle").

Label ids: the prompt and prompt + answer are tokenised and the prompt's tokens must be an
unchanged prefix of the whole (:func:`answer_token_ids`), else the answer would merge with the
prompt's last token and its labels would be wrong. Batches are left-padded, so every row ends
with its answer (the position the judge reads at inference is then the one trained on) and only
the last ``max answer length + 1`` positions go through the LM head (``logits_to_keep``).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from ..model.chat import ChatExample

IGNORE = -100


def answer_token_ids(tokenizer, prompt: str, answer: str, end_of_turn: str) -> list[int]:
    """Token ids of ``answer`` + ``end_of_turn`` as they follow ``prompt``; ValueError if the prompt's tokens change.

    Both ``prompt`` and ``prompt + answer + end_of_turn`` are tokenised; the first must be a prefix of the
    second (tokenisation does not merge across the boundary), and the rest is the answer's labels.
    """
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(prompt + answer + end_of_turn, add_special_tokens=False)["input_ids"]
    if full_ids[: len(prompt_ids)] != prompt_ids:
        raise ValueError(f"the answer {answer!r} changes the prompt's tokens (they merge across the boundary): "
                         f"prompt ends {tokenizer.convert_ids_to_tokens(prompt_ids[-3:])}, with the answer "
                         f"{tokenizer.convert_ids_to_tokens(full_ids[len(prompt_ids) - 3: len(prompt_ids) + 2])}")
    answer_ids = full_ids[len(prompt_ids):]
    if len(answer_ids) < 2:
        raise ValueError(f"the answer {answer!r} has no tokens of its own after the prompt")
    return answer_ids


@lru_cache(maxsize=8192)
def _image(path: str) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def collate(processor, examples: Sequence[ChatExample], end_of_turn: str) -> dict[str, torch.Tensor]:
    """A left-padded batch: the processor's inputs plus ``labels`` ([batch, seq], -100 outside answers).

    The processor expands each image into its image tokens inside the prompt; the answer follows the
    last image, so its ids are checked to be the last tokens of each row unchanged. ``end_of_turn`` is the
    model family's (:attr:`uniembed.model.families.base.Family.end_of_turn`).
    """
    tokenizer = processor.tokenizer
    texts, images, answers = [], [], []
    for example in examples:
        prompt, paths = example.render(processor)
        answers.append(answer_token_ids(tokenizer, prompt, example.answer, end_of_turn))
        texts.append(prompt + example.answer + end_of_turn)
        images += [_image(path) for path in paths]
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        batch = processor(text=texts, images=images or None, padding=True, return_tensors="pt")
    finally:
        tokenizer.padding_side = side
    labels = torch.full_like(batch["input_ids"], IGNORE)
    for row, ids in enumerate(answers):
        tail = batch["input_ids"][row, -len(ids):].tolist()
        if tail != ids:
            raise ValueError(f"example {row}: the processed row does not end with its answer ids "
                             f"({tokenizer.convert_ids_to_tokens(tail)} != {tokenizer.convert_ids_to_tokens(ids)})")
        labels[row, -len(ids):] = torch.tensor(ids)
    batch["labels"] = labels
    return dict(batch)


def answer_forward(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per row of a :func:`collate` batch: the summed next-token cross-entropy of its answer tokens, its
    number of answer tokens, and the [rows, vocab] logits that predict its first answer token (all
    differentiable, from one forward pass).

    Only the last ``K = longest answer + 1`` positions go through the LM head; logits at position t
    predict the token at t + 1.
    """
    labels = batch["labels"]
    answer_lengths = (labels != IGNORE).sum(dim=1)
    if int(answer_lengths.min()) < 1:
        raise ValueError("every row of a generative batch needs answer labels")
    keep = int(answer_lengths.max()) + 1
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    logits = model(**inputs, use_cache=False, logits_to_keep=keep).logits[:, :-1].float()
    targets = labels[:, -keep + 1:]
    token_loss = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=IGNORE, reduction="none")
    first = (targets != IGNORE).float().argmax(dim=1)
    return token_loss.sum(dim=1), answer_lengths, logits[torch.arange(logits.shape[0]), first]


def answer_token_losses(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: the summed answer-token cross-entropy (differentiable) and the number of answer tokens."""
    row_sums, answer_lengths, _ = answer_forward(model, batch)
    return row_sums, answer_lengths


def answer_loss(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean next-token cross-entropy over all answer tokens of a :func:`collate` batch, and each row's
    own mean (detached, for logging)."""
    row_sums, answer_lengths = answer_token_losses(model, batch)
    return row_sums.sum() / answer_lengths.sum(), row_sums.detach() / answer_lengths


@torch.no_grad()
def first_token_logits(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """[batch, vocab] logits of each row's first answer token (the position the judge reads)."""
    labels = batch["labels"]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    keep = int((labels != IGNORE).sum(dim=1).max()) + 1
    logits = model(**inputs, use_cache=False, logits_to_keep=keep).logits
    first = (labels[:, -keep:] != IGNORE).float().argmax(dim=1) - 1  # position before the first answer token
    return logits[torch.arange(logits.shape[0]), first].float()
