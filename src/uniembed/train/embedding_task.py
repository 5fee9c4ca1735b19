"""The embedding task: LoRA on the language model of a Qwen2-VL embedder (vision tower frozen),
contrastive batches from curated tables, one training step with or without gradient caching.

U-MARVEL §3.1-3.2 / UniME-V2: queries and candidates share one embedder; a batch holds B queries,
their B positives and B*k hard negatives; every objective computes from the embeddings, so
gradient caching (GradCache) and the cross-process gather wrap any of them unchanged.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ..artifacts import atomic_path, write_json
from ..embed.cache import file_digest, fingerprint_model_dir
from ..embed.embedder import Embedder, EmbeddingMode
from .data import BatchSampler, assemble_batch, load_training_set
from .distributed import world_info
from .gradcache import gradcache_step
from .lora import apply_lora, enable_activation_checkpointing
from .objectives import Objective, ObjectiveBatch
from .settings import TrainSettings
from .temperature import write_final_temperature


class EmbeddingTask:
    """Builds the LoRA embedder and the training set; ``step`` runs one contrastive step."""

    def __init__(self, settings: TrainSettings, objective: Objective, *, base_model, curated_dir,
                 mode: EmbeddingMode = EmbeddingMode(), hard_negatives=None, device: str = "auto"):
        rank, world = world_info()
        if world > 1 and torch.cuda.is_available():
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', rank))}"
        if settings.batch_size % world:
            raise ValueError(f"batch_size {settings.batch_size} must be divisible by the {world} processes")
        torch.manual_seed(settings.seed)
        self.base_model, self.curated_dir, self.mode, self.hard_negatives = base_model, Path(curated_dir), mode, hard_negatives
        self.embedder = Embedder.from_pretrained(base_model, mode=mode, device=device)
        self.model = apply_lora(self.embedder.model, settings.lora)
        if settings.activation_checkpointing:
            enable_activation_checkpointing(self.model)
        self.embedder.model = self.model
        objective.to(self.embedder.device)
        s = objective.settings
        self.num_negatives, self.with_scores = objective.num_negatives, objective.needs_scores
        self.fallback_rows = getattr(s, "fallback_rows", "keep")
        self.data = load_training_set(curated_dir, use_given_negatives=getattr(s, "use_given_negatives", False),
                                      hard_negatives=hard_negatives, num_hard_negatives=self.num_negatives,
                                      needs_scores=self.with_scores, fallback_rows=self.fallback_rows)
        self.sampler = BatchSampler(len(self.data.queries), settings.batch_size, settings.seed)
        self.local_size = settings.batch_size // world

    def fingerprint(self) -> dict:
        return {"task": "embedding", "mode": self.mode.as_dict(),
                "base_model": fingerprint_model_dir(self.base_model, full=True),
                "data": file_digest(self.curated_dir / "queries.parquet"),
                "hard_negatives": file_digest(self.hard_negatives) if self.hard_negatives else None}

    def attach(self, encoder) -> None:
        """Run the embedder through the backend's module (DDP / DeepSpeed engine)."""
        self.embedder.model = encoder

    def next_batch(self):
        return assemble_batch(self.data, *self.sampler.next(), num_negatives=self.num_negatives,
                              with_scores=self.with_scores, mask_fallback=self.fallback_rows == "mask")

    def step(self, batch, objective: Objective, backend, settings: TrainSettings) -> tuple[torch.Tensor, int]:
        """Accumulate the gradient of the objective on ``batch``; return (detached loss, local items)."""
        rank, world = world_info()
        b, k, n = self.local_size, self.num_negatives, batch.size
        queries = batch.queries[rank * b:(rank + 1) * b]
        candidates = batch.candidates[rank * b:(rank + 1) * b] + batch.candidates[n + rank * b * k:n + (rank + 1) * b * k]
        view = ObjectiveBatch(n, k, batch.exclude, batch.scores, batch.score_mask)
        loss_fn = lambda q, c: objective(q, c, view, world)  # noqa: E731
        if settings.chunk_size:
            loss = gradcache_step(self.embedder.forward, queries, candidates, loss_fn, settings.chunk_size,
                                  no_sync=backend.no_sync)
        else:
            loss = loss_fn(self.embedder.forward(queries), self.embedder.forward(candidates))
            backend.backward(loss)
            loss = loss.detach()
        return loss, len(queries) + len(candidates)

    def summary(self) -> dict:
        summary = {"source": self.data.source, "num_queries": len(self.data.queries),
                   "dropped_queries": dict(self.data.dropped)}
        if self.hard_negatives:  # how the filter filled the rows trained on (UniME-V2's fallback scores 1.0)
            summary.update(hard_negative_outcomes=dict(self.data.outcomes), fallback_rows=self.fallback_rows,
                           fallback_fraction=self.data.fallback_fraction(),
                           positives_without_score=self.data.positives_without_score)
        return summary

    def save(self, out_dir: Path, summary: dict, objective: Objective) -> None:
        """``out_dir/adapter`` (this stage's LoRA) and ``out_dir/model`` (base with LoRA merged: the
        next stage's starting point, loadable with from_pretrained), written atomically together with
        the artifact manifest that loading verifies."""
        with atomic_path(out_dir, directory=True, manifest=True) as tmp:
            self.model.save_pretrained(tmp / "adapter")
            merged = self.model.merge_and_unload()
            merged.save_pretrained(tmp / "model")
            self.embedder.processor.save_pretrained(tmp / "model")
            tau = getattr(objective, "temperature", None)
            if tau is not None:
                write_final_temperature(tmp / "model", tau.value, tau.learnable)
            write_json(summary, tmp / "training_summary.json")
