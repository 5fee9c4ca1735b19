"""The transformers judge backend: runs anywhere, one forward pass per batch (greedy generation for listwise reranking).

UniME-V2 ("MLLM-as-a-Judge for Hard Negatives Mining") scores a pair with
s = e_y / (e_y + e_n), where e_y and e_n are the exponentiated next-token logits of "Yes" and
"No". Here: left padding (the last position is every row's next token), a forward pass with
``logits_to_keep=1`` (only the last position goes through the LM head), then the softmax over the
two logits [No, Yes]; its Yes entry is s. ``yes_logit`` / ``no_logit`` keep the raw logits.

Inputs are prepared on the CPU by :class:`JudgeInputs` (prompts rendered, images decoded, processor run) in
DataLoader workers (:mod:`uniembed.data.loader`, ``loader`` settings) while the model runs. A batch is
``batch_size`` consecutive items; an item whose prompt cannot be rendered (an unreadable image, an empty item)
becomes a failed result at its own index and leaves its batch one row shorter. Batches do not depend on the
worker count, so neither do the scores.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from PIL import Image

from ..data.loader import LoaderSettings, Pinnable, batches_of, prepared, to_device
from ..model.loading import load_for_generation, set_bidirectional
from ..model.processor import load_processor
from .pairs import JudgePair
from ..model.chat import NO, YES, ChatPrompt, yes_no_token_ids
from .prompt import build_judge_prompt
from .resume import weights_digest
from .scoring import Generation, JudgeResult


def render(processor, prompt: ChatPrompt) -> tuple[str, list[Image.Image]]:
    """A prompt's text and its images, decoded as RGB (OSError for an unreadable image)."""
    text, paths = prompt.render(processor)
    images = []
    for path in paths:
        with Image.open(path) as image:
            images.append(image.convert("RGB"))
    return text, images


def pair_prompt(pair: JudgePair) -> ChatPrompt:
    return build_judge_prompt(pair.query, pair.candidate)


def same_prompt(prompt: ChatPrompt) -> ChatPrompt:
    return prompt


@dataclass(frozen=True)
class PreparedPrompts(Pinnable):
    """A batch of items: the positions of the rendered ones with their processor tensors, and the failures."""
    positions: list[int]
    failures: list[tuple[int, str]]   # (position, "ErrorType: message") of items that could not be rendered
    tensors: dict | None              # None when no item of the batch rendered


@dataclass(frozen=True)
class JudgeInputs:
    """positions -> :class:`PreparedPrompts` of ``items``, each made a prompt by ``build`` (CPU only, no model)."""
    processor: object
    items: Sequence
    build: Callable[[object], ChatPrompt]

    def __call__(self, positions: Sequence[int]) -> PreparedPrompts:
        ready, texts, images, failures = [], [], [], []
        for i in positions:
            try:
                text, rendered = render(self.processor, self.build(self.items[i]))
            except (OSError, ValueError) as error:
                failures.append((i, f"{type(error).__name__}: {error}"))
                continue
            ready.append(i)
            texts.append(text)
            images += rendered
        tensors = (dict(self.processor(text=texts, images=images or None, padding=True, return_tensors="pt"))
                   if texts else None)
        return PreparedPrompts(ready, failures, tensors)


def _device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class TransformersJudge:
    """Judge with a local Qwen2-VL / Qwen2.5-VL checkpoint (optionally with a LoRA adapter)."""

    def __init__(self, model_dir: str | os.PathLike, batch_size: int = 8, device: str = "auto",
                 adapter_dir: str | os.PathLike | None = None, model_id: str | None = None,
                 loader: LoaderSettings = LoaderSettings()):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.processor = load_processor(model_dir)
        self.yes_id, self.no_id = yes_no_token_ids(self.processor.tokenizer)
        self.processor.tokenizer.padding_side = "left"
        self.device, self.batch_size, self.loader = _device(device), batch_size, loader
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        model = load_for_generation(model_dir, adapter_path=adapter_dir, torch_dtype=dtype)
        self.model = set_bidirectional(model, False).to(self.device).eval()
        self.model_id = model_id or (f"{model_dir}+{adapter_dir}" if adapter_dir else str(model_dir))
        # the resume key: what changes a score (weights, dtype, device kind), not the batch size or the loader
        self.settings = {"backend": "transformers", "weights": weights_digest(model_dir),
                         "adapter": weights_digest(adapter_dir), "dtype": str(dtype).removeprefix("torch."),
                         "device_type": self.device.type}

    def _render(self, prompt: ChatPrompt):
        return render(self.processor, prompt)

    def _prepared(self, items: Sequence, build, failed, results: list):
        """Each batch of ``items`` prepared by the loader's workers; failures are written into ``results``."""
        keys = batches_of(self.batch_size, len(items))
        for batch in prepared(JudgeInputs(self.processor, items, build), keys, self.loader, self.device):
            for i, message in batch.failures:
                results[i] = failed(message)
            if batch.positions:
                yield batch.positions, to_device(batch.tensors, self.device)

    @torch.no_grad()
    def logits(self, texts: list[str], images: list[Image.Image]) -> torch.Tensor:
        """[batch, 2] float32 next-token logits of [No, Yes] for rendered prompts (images in prompt order)."""
        batch = self.processor(text=texts, images=images or None, padding=True, return_tensors="pt")
        return self._logits(to_device(dict(batch), self.device))

    @torch.no_grad()
    def _logits(self, batch: dict) -> torch.Tensor:
        last = self.model(**batch, use_cache=False, logits_to_keep=1).logits[:, -1]
        return last[:, [self.no_id, self.yes_id]].float()

    @torch.no_grad()
    def generate(self, prompts: Sequence[ChatPrompt], max_new_tokens: int = 8) -> list[Generation]:
        """Greedy continuations (``do_sample=False``), only the new tokens, special tokens dropped."""
        results = [None] * len(prompts)
        tokenizer = self.processor.tokenizer
        for positions, batch in self._prepared(prompts, same_prompt, Generation.failed, results):
            out = self.model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                      pad_token_id=tokenizer.pad_token_id)
            texts = tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
            for i, text in zip(positions, texts):
                results[i] = Generation.ok(text)
        return results

    def score(self, pairs: Sequence[JudgePair]) -> list[JudgeResult]:
        results = [None] * len(pairs)
        for positions, batch in self._prepared(pairs, pair_prompt, JudgeResult.failed, results):
            two = self._logits(batch)
            probs = torch.softmax(two, dim=-1)
            finite = torch.isfinite(two).all(dim=-1)
            for row, i in enumerate(positions):
                yes, no = two[row, 1].item(), two[row, 0].item()
                results[i] = (JudgeResult.ok(probs[row, 1].item(), yes, no) if finite[row]
                              else JudgeResult.failed(f"non-finite Yes/No logits ({yes}, {no})"))
        return results
