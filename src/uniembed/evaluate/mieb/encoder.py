"""Any model this project saves as an mteb 2.x encoder, so MIEB (Xiao et al. 2025, §3) and every other mteb
task can run it: ``mteb.evaluate(MtebEncoder.from_pretrained(path, adapter), tasks=...)``.

``encode`` takes mteb's DataLoader batch by batch and embeds each batch with one processor call and one forward
(:meth:`uniembed.embed.embedder.Embedder.forward_prepared`; mteb issue 4711: per-item encoding is what makes
MLLM evaluation slow). A batch holds ``"text"``, ``"image"`` (PIL images) or both (fused inputs); an image-only
corpus has no ``"text"`` key at all (mteb PR 5249). Queries get the task's instruction for their prompt type
(the task's ``prompt``, a dict per prompt type or one string); documents get an instruction only where the task
declares a document prompt, as candidates are embedded without one in training
(U-MARVEL §3.1, UniME-V2 §3: the instruction belongs to the query side).

The wrapper carries its :class:`mteb.models.model_meta.ModelMeta` (:func:`model_meta`): without one,
``mteb.evaluate`` evaluates a placeholder instead of the model (the mteb 2.x trap the notes describe), and
``modalities`` must name ``image`` or mteb skips every image task.
"""
from __future__ import annotations

import os
from datetime import date
from typing import Any

import numpy as np
import torch
from mteb.models.abs_encoder import AbsEncoder
from mteb.models.model_meta import ModelMeta
from mteb.types import PromptType

from ...embed.embedder import EmbedItem, Embedder, EmbeddingMode

#: The name mteb files results under when none is given ("organisation/model", as ModelMeta requires).
DEFAULT_NAME = "uniembed/local-model"


def model_meta(embedder: Embedder, name: str = DEFAULT_NAME, revision: str = "local") -> ModelMeta:
    """mteb's record of ``embedder``: image and text modalities, cosine similarity, its size and width."""
    model = embedder.model
    n_parameters = sum(p.numel() for p in model.parameters())
    config = getattr(model.config, "text_config", model.config)
    return ModelMeta(
        loader=None, name=name, revision=revision, release_date=date.today().isoformat(), languages=["eng-Latn"],
        n_parameters=n_parameters, memory_usage_mb=round(n_parameters * 4 / 2**20, 1),
        max_tokens=getattr(config, "max_position_embeddings", None), embed_dim=embedder.hidden_size,
        license="apache-2.0", open_weights=True, public_training_code=None, public_training_data=None,
        framework=["PyTorch"], similarity_fn_name="cosine" if embedder.mode.normalize else "dot",
        use_instructions=True, training_datasets=None, modalities=["text", "image"])


class MtebEncoder(AbsEncoder):
    """An :class:`Embedder` behind mteb's encoder interface (the embeddings are the embedder's own)."""

    def __init__(self, embedder: Embedder, name: str = DEFAULT_NAME, revision: str = "local"):
        self.embedder = embedder
        self.mteb_model_meta = model_meta(embedder, name, revision)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, adapter_path: str | os.PathLike | None = None,
                        mode: EmbeddingMode = EmbeddingMode(), device: str = "auto", name: str = DEFAULT_NAME,
                        revision: str = "local") -> "MtebEncoder":
        """A saved base model, or base + LoRA adapter (loaded strictly: a missing adapter key is an error)."""
        return cls(Embedder.from_pretrained(path, adapter_path, mode=mode, device=device), name, revision)

    def instruction(self, task_metadata, prompt_type: PromptType | None) -> str | None:
        """The task's own instruction for this side: a ``prompt`` dict's entry for the prompt type, or a string
        ``prompt`` for queries and for tasks without sides (classification, clustering); documents only what the
        dict declares for them. mteb's generic fallback prompts per task type are not used."""
        prompt = task_metadata.prompt
        if isinstance(prompt, dict):
            return (prompt.get(prompt_type.value) or None) if prompt_type is not None else None
        return (prompt or None) if prompt_type != PromptType.document else None

    def items(self, batch: dict[str, Any], instruction: str | None) -> list[EmbedItem]:
        """One :class:`EmbedItem` per row of an mteb batch (text, in-memory image, or both)."""
        texts, images = batch.get("text"), batch.get("image")
        if texts is None and images is None:
            raise ValueError(f"an mteb batch with neither 'text' nor 'image' (keys {sorted(batch)})")
        n = len(texts if texts is not None else images)
        return [EmbedItem(texts[i] if texts is not None else None, instruction=instruction,
                          image=images[i] if images is not None else None) for i in range(n)]

    @torch.no_grad()
    def encode(self, inputs, *, task_metadata, hf_split: str, hf_subset: str,
               prompt_type: PromptType | None = None, **kwargs) -> np.ndarray:
        instruction = self.instruction(task_metadata, prompt_type)
        model = self.embedder.model
        was_training = model.training
        model.eval()
        out = [self.embedder.forward_prepared(self.embedder.inputs(self.items(batch, instruction))).cpu().numpy()
               for batch in inputs]
        model.train(was_training)
        if not out:
            raise ValueError(f"mteb gave no inputs to encode ({task_metadata.name}, {hf_split}, {hf_subset})")
        return np.concatenate(out).astype(np.float32)
