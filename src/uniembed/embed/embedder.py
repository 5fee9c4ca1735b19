"""Turn queries and candidates into embeddings with a Qwen2-VL-family model.

Two extraction modes, because the papers disagree (U-MARVEL §3.1.1, Table 1):

* ``pooling="mean", attention="bidirectional"`` — U-MARVEL's default (Findings 1-2): bidirectional
  attention, mean of the last hidden states over the content tokens, instruction masked out;
* ``pooling="last", attention="causal"`` (optionally with a compression prompt) — VLM2Vec,
  UniME-V2, VisME: the last token's hidden state.

Embeddings are L2-normalised by default (cosine similarity, as both papers score). An item's
embedding does not depend on the padding side or on the other items of its batch.

``image_size`` resizes every image to a square of that side before the processor sees it, as
VLM2Vec's ``process_image`` does and UniME-V2 §4.1 trains ("336 x 336 resolution image inputs");
None leaves the size to the processor (Qwen-VL: its min/max pixel range).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Annotated, Optional, Sequence

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ..model.families import family_of
from ..model.loading import load_for_embedding, set_bidirectional
from ..model.pooling import last_token_pool, mean_pool
from ..model.processor import load_processor
from ..model.prompts import PromptStyle, build_prompt, content_mask
from ..ranges import Range

POOLINGS, ATTENTIONS = ("mean", "last"), ("bidirectional", "causal")


@dataclass(frozen=True)
class EmbeddingMode:
    pooling: str = "mean"  # mean (U-MARVEL, instruction masked) | last (VLM2Vec, UniME-V2)
    attention: str = "bidirectional"  # bidirectional (U-MARVEL) | causal
    system: str = PromptStyle.system  # the chat template's system turn
    compression: str | None = None  # a prompt appended before the last token (E5-V style); null: none
    normalize: bool = True  # L2-normalise (cosine scores)
    image_size: Optional[Annotated[int, Range(ge=1)]] = None   # pixels per side; None: the processor's own sizing

    def __post_init__(self):
        if self.pooling not in POOLINGS or self.attention not in ATTENTIONS:
            raise ValueError(f"pooling must be one of {POOLINGS} and attention one of {ATTENTIONS}; got {self}")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class EmbedItem:
    text: str | None
    image_path: str | None = None
    instruction: str | None = None


def _device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Embedder:
    """A model + processor + :class:`EmbeddingMode`; ``forward`` keeps gradients, ``encode`` does not."""

    def __init__(self, model, processor, mode: EmbeddingMode = EmbeddingMode(), device: str = "cpu"):
        self.mode, self.processor, self.device = mode, processor, _device(device)
        self.style = PromptStyle(system=mode.system, compression=mode.compression)
        set_bidirectional(model, mode.attention == "bidirectional")
        self.separator = family_of(model).instruction_separator
        self.model = model.to(self.device)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, adapter_path: str | os.PathLike | None = None,
                        mode: EmbeddingMode = EmbeddingMode(), device: str = "auto") -> "Embedder":
        dev = _device(device)
        dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
        model = load_for_embedding(path, adapter_path=adapter_path, torch_dtype=dtype).eval()
        return cls(model, load_processor(path), mode, device=str(dev))

    def tokenize(self, items: Sequence[EmbedItem]):
        prompts = [build_prompt(self.processor, self.style, it.text, bool(it.image_path), it.instruction,
                                self.separator) for it in items]
        images = [_load_image(it.image_path, self.mode.image_size) for it in items if it.image_path]
        batch = self.processor(text=[p.text for p in prompts], images=images or None, padding=True, return_tensors="pt")
        return prompts, batch.to(self.device)

    def forward(self, items: Sequence[EmbedItem]) -> torch.Tensor:
        """Embeddings [len(items), hidden] with gradients (training uses this)."""
        prompts, batch = self.tokenize(items)
        hidden = self.model(**batch, use_cache=False).last_hidden_state
        if self.mode.pooling == "mean":
            mask = content_mask(prompts, batch["input_ids"], batch["attention_mask"], self.processor.tokenizer,
                                self.processor.image_token)
            emb = mean_pool(hidden, mask)
        else:
            emb = last_token_pool(hidden, batch["attention_mask"])
        emb = emb.float()
        return torch.nn.functional.normalize(emb, dim=-1) if self.mode.normalize else emb

    @torch.no_grad()
    def encode(self, items: Sequence[EmbedItem], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Embeddings as float32 [len(items), hidden]; items are batched by length, results in input order."""
        if not items:
            raise ValueError("nothing to encode")
        order = sorted(range(len(items)), key=lambda i: (bool(items[i].image_path), len(items[i].text or "")))
        out = np.empty((len(items), self.hidden_size), dtype=np.float32)
        was_training = self.model.training
        self.model.eval()
        with tqdm(total=len(items), desc="encode", unit="item", disable=not progress, mininterval=1.0) as bar:
            for start in range(0, len(order), batch_size):
                idx = order[start: start + batch_size]
                out[idx] = self.forward([items[i] for i in idx]).cpu().numpy()
                bar.update(len(idx))
        self.model.train(was_training)
        return out

    @property
    def hidden_size(self) -> int:
        config = self.model.config
        return getattr(config, "text_config", config).hidden_size


def _load_image(path: str, size: int | None = None) -> Image.Image:
    with Image.open(path) as image:
        image = image.convert("RGB")
    return image if size is None else image.resize((size, size), Image.Resampling.BICUBIC)
