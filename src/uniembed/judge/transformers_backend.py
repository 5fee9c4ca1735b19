"""The transformers judge backend: runs anywhere, one forward pass per batch (greedy generation for listwise reranking).

UniME-V2 ("MLLM-as-a-Judge for Hard Negatives Mining") scores a pair with
s = e_y / (e_y + e_n), where e_y and e_n are the exponentiated next-token logits of "Yes" and
"No". Here: left padding (the last position is every row's next token), a forward pass with
``logits_to_keep=1`` (only the last position goes through the LM head), then the softmax over the
two logits [No, Yes]; its Yes entry is s. ``yes_logit`` / ``no_logit`` keep the raw logits.
"""
from __future__ import annotations

import os
from typing import Sequence

import torch
from PIL import Image

from ..model.loading import load_for_generation, set_bidirectional
from ..model.processor import load_processor
from .pairs import JudgePair
from ..model.chat import NO, YES, ChatPrompt, yes_no_token_ids
from .prompt import build_judge_prompt
from .resume import weights_digest
from .scoring import Generation, JudgeResult


def _device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class TransformersJudge:
    """Judge with a local Qwen2-VL / Qwen2.5-VL checkpoint (optionally with a LoRA adapter)."""

    def __init__(self, model_dir: str | os.PathLike, batch_size: int = 8, device: str = "auto",
                 adapter_dir: str | os.PathLike | None = None, model_id: str | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.processor = load_processor(model_dir)
        self.yes_id, self.no_id = yes_no_token_ids(self.processor.tokenizer)
        self.processor.tokenizer.padding_side = "left"
        self.device, self.batch_size = _device(device), batch_size
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        model = load_for_generation(model_dir, adapter_path=adapter_dir, torch_dtype=dtype)
        self.model = set_bidirectional(model, False).to(self.device).eval()
        self.model_id = model_id or (f"{model_dir}+{adapter_dir}" if adapter_dir else str(model_dir))
        # the resume key: what changes a score (weights, dtype, device kind), not the batch size
        self.settings = {"backend": "transformers", "weights": weights_digest(model_dir),
                         "adapter": weights_digest(adapter_dir), "dtype": str(dtype).removeprefix("torch."),
                         "device_type": self.device.type}

    def _render(self, prompt: ChatPrompt):
        text, paths = prompt.render(self.processor)
        images = []
        for path in paths:
            with Image.open(path) as image:
                images.append(image.convert("RGB"))
        return text, images

    def _batches(self, items: Sequence, build, failed) -> tuple[list, list[list[tuple[int, str, list]]]]:
        """(results holding ``failed(message)`` for every item whose prompt cannot be rendered: unreadable image,
        empty item; the others as (index, text, images) in batches of ``batch_size``)."""
        results, ready = [None] * len(items), []
        for i, item in enumerate(items):
            try:
                ready.append((i, *self._render(build(item))))
            except (OSError, ValueError) as error:
                results[i] = failed(f"{type(error).__name__}: {error}")
        return results, [ready[start: start + self.batch_size] for start in range(0, len(ready), self.batch_size)]

    @torch.no_grad()
    def logits(self, texts: list[str], images: list[Image.Image]) -> torch.Tensor:
        """[batch, 2] float32 next-token logits of [No, Yes] for rendered prompts (images in prompt order)."""
        batch = self.processor(text=texts, images=images or None, padding=True, return_tensors="pt").to(self.device)
        last = self.model(**batch, use_cache=False, logits_to_keep=1).logits[:, -1]
        return last[:, [self.no_id, self.yes_id]].float()

    @torch.no_grad()
    def generate(self, prompts: Sequence[ChatPrompt], max_new_tokens: int = 8) -> list[Generation]:
        """Greedy continuations (``do_sample=False``), only the new tokens, special tokens dropped."""
        results, batches = self._batches(prompts, lambda prompt: prompt, Generation.failed)
        tokenizer = self.processor.tokenizer
        for chunk in batches:
            batch = self.processor(text=[t for _, t, _ in chunk], images=[im for _, _, ims in chunk for im in ims] or None,
                                   padding=True, return_tensors="pt").to(self.device)
            out = self.model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                      pad_token_id=tokenizer.pad_token_id)
            texts = tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
            for (i, _, _), text in zip(chunk, texts):
                results[i] = Generation.ok(text)
        return results

    def score(self, pairs: Sequence[JudgePair]) -> list[JudgeResult]:
        results, batches = self._batches(pairs, lambda pair: build_judge_prompt(pair.query, pair.candidate),
                                         JudgeResult.failed)
        for chunk in batches:
            two = self.logits([text for _, text, _ in chunk], [im for _, _, ims in chunk for im in ims])
            probs = torch.softmax(two, dim=-1)
            finite = torch.isfinite(two).all(dim=-1)
            for row, (i, _, _) in enumerate(chunk):
                yes, no = two[row, 1].item(), two[row, 0].item()
                results[i] = (JudgeResult.ok(probs[row, 1].item(), yes, no) if finite[row]
                              else JudgeResult.failed(f"non-finite Yes/No logits ({yes}, {no})"))
        return results
