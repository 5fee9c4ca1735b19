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

Inputs are prepared on the CPU (:class:`EmbedInputs`: images decoded, prompts rendered, processor run) apart
from the forward pass (:meth:`Embedder.forward_prepared`), so ``encode`` prepares its batches in DataLoader
workers (:mod:`uniembed.data.loader`, ``loader`` settings) while the model runs; training prepares its steps
with the same :class:`EmbedInputs`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ..data.loader import LoaderSettings, Pinnable, prepared, to_device
from ..model.families import family_of
from ..model.loading import load_for_embedding, set_bidirectional
from ..model.pooling import last_token_pool, mean_pool
from ..model.processor import load_processor
from ..model.prompts import Prompt, PromptStyle, build_prompt, content_mask
from .mode import EmbeddingMode

@dataclass(frozen=True)
class EmbedItem:
    """A query or candidate: text, an image (a file, or ``image`` in memory as mteb hands them over), an instruction."""
    text: str | None
    image_path: str | None = None
    instruction: str | None = None
    image: Image.Image | None = field(default=None, compare=False, repr=False)

    @property
    def has_image(self) -> bool:
        return self.image is not None or bool(self.image_path)


def _device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass(frozen=True)
class PreparedItems(Pinnable):
    """A batch of items ready for the model: their rendered prompts and the processor's CPU tensors."""
    prompts: list[Prompt]
    tensors: dict


@dataclass(frozen=True)
class EmbedInputs:
    """The CPU side of embedding (picklable, no model): items -> :class:`PreparedItems`."""
    processor: object
    style: PromptStyle
    separator: str
    image_size: int | None = None

    def __call__(self, items: Sequence[EmbedItem]) -> PreparedItems:
        prompts = [build_prompt(self.processor, self.style, it.text, it.has_image, it.instruction,
                                self.separator) for it in items]
        images = [_load_image(it.image if it.image is not None else it.image_path, self.image_size)
                  for it in items if it.has_image]
        batch = self.processor(text=[p.text for p in prompts], images=images or None, padding=True, return_tensors="pt")
        return PreparedItems(prompts, dict(batch))


class Embedder:
    """A model + processor + :class:`EmbeddingMode`; ``forward`` keeps gradients, ``encode`` does not.
    ``loader`` sets the workers that prepare ``encode``'s batches (the embeddings do not depend on it)."""

    def __init__(self, model, processor, mode: EmbeddingMode = EmbeddingMode(), device: str = "cpu",
                 loader: LoaderSettings = LoaderSettings()):
        self.mode, self.processor, self.device, self.loader = mode, processor, _device(device), loader
        self.style = PromptStyle(system=mode.system, compression=mode.compression)
        set_bidirectional(model, mode.attention == "bidirectional")
        self.separator = family_of(model).instruction_separator
        self.model = model.to(self.device)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, adapter_path: str | os.PathLike | None = None,
                        mode: EmbeddingMode = EmbeddingMode(), device: str = "auto",
                        loader: LoaderSettings = LoaderSettings()) -> "Embedder":
        dev = _device(device)
        dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
        model = load_for_embedding(path, adapter_path=adapter_path, torch_dtype=dtype).eval()
        return cls(model, load_processor(path), mode, device=str(dev), loader=loader)

    @property
    def inputs(self) -> EmbedInputs:
        """This embedder's input preparation (the processor as it is now, padding side included)."""
        return EmbedInputs(self.processor, self.style, self.separator, self.mode.image_size)

    def tokenize(self, items: Sequence[EmbedItem]):
        prepared_items = self.inputs(items)
        return prepared_items.prompts, to_device(prepared_items.tensors, self.device)

    def forward(self, items: Sequence[EmbedItem]) -> torch.Tensor:
        """Embeddings [len(items), hidden] with gradients (training uses this)."""
        return self.forward_prepared(self.inputs(items))

    def forward_prepared(self, items: PreparedItems) -> torch.Tensor:
        """Embeddings of a prepared batch (:class:`EmbedInputs`), with gradients."""
        prompts, batch = items.prompts, to_device(items.tensors, self.device)
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
        """Embeddings as float32 [len(items), hidden]; items are batched by length, results in input order.
        The batches are prepared by ``self.loader``'s workers; the same batches, so the same embeddings, for any count."""
        if not items:
            raise ValueError("nothing to encode")
        order = sorted(range(len(items)), key=lambda i: (items[i].has_image, len(items[i].text or "")))
        batches = [order[start: start + batch_size] for start in range(0, len(order), batch_size)]
        out = np.empty((len(items), self.hidden_size), dtype=np.float32)
        was_training = self.model.training
        self.model.eval()
        with tqdm(total=len(items), desc="encode", unit="item", disable=not progress, mininterval=1.0) as bar:
            for idx, batch in zip(batches, prepared(ItemsAt(self.inputs, items), batches, self.loader, self.device)):
                out[idx] = self.forward_prepared(batch).cpu().numpy()
                bar.update(len(idx))
        self.model.train(was_training)
        return out

    @property
    def hidden_size(self) -> int:
        config = self.model.config
        return getattr(config, "text_config", config).hidden_size


def _load_image(source: str | Image.Image, size: int | None = None) -> Image.Image:
    """An RGB image from a file or from memory, resized to ``size`` x ``size`` if given."""
    if isinstance(source, Image.Image):
        image = source.convert("RGB")
    else:
        with Image.open(source) as opened:
            image = opened.convert("RGB")
    return image if size is None else image.resize((size, size), Image.Resampling.BICUBIC)


@dataclass(frozen=True)
class ItemsAt:
    """Prepare the items at some positions of ``items`` (a loader key is a list of positions)."""
    inputs: EmbedInputs
    items: Sequence[EmbedItem]

    def __call__(self, positions: Sequence[int]) -> PreparedItems:
        return self.inputs([self.items[i] for i in positions])
