"""The embedding task: LoRA on the language model of a Qwen2-VL embedder (vision tower frozen),
contrastive batches from curated tables, one training step with or without gradient caching.

U-MARVEL §3.1-3.2 / UniME-V2: queries and candidates share one embedder; a batch holds B queries,
their B positives and B*k hard negatives; every objective computes from the embeddings, so
gradient caching (GradCache) and the cross-process gather wrap any of them unchanged.

A step's inputs are prepared on the CPU by :class:`EmbeddingSteps` (the sampler's batch of the step, this
rank's slice, cut into GradCache's chunks, each through the embedder's processor) in the core's loader workers;
:meth:`EmbeddingTask.step` runs the embedder on the prepared chunks.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import torch

from ..artifacts import atomic_path, write_json
from ..embed.cache import file_digest, fingerprint_model_dir
from ..data.loader import Pinnable
from ..embed.embedder import EmbedInputs, Embedder, EmbeddingMode, PreparedItems
from .data import BatchSampler, TrainingSet, assemble_batch, load_training_set
from .distributed import world_info
from .gradcache import chunks, gradcache_chunks
from .lora import apply_lora, enable_activation_checkpointing
from .objectives import Objective, ObjectiveBatch
from .settings import TrainSettings
from .temperature import write_final_temperature


@dataclass(frozen=True)
class PreparedStep(Pinnable):
    """One step's inputs on this rank: the batch's layout and its query and candidate chunks, prepared."""
    size: int                       # B, the global batch
    exclude: np.ndarray
    scores: np.ndarray | None
    score_mask: np.ndarray | None
    queries: list[PreparedItems]     # GradCache's chunks (one chunk without chunk_size)
    candidates: list[PreparedItems]
    items: int                      # this rank's queries + candidates


@dataclass(frozen=True)
class EmbeddingSteps:
    """step -> :class:`PreparedStep`: a pure function of (seed, step), so any loader worker prepares any step."""
    data: TrainingSet
    sampler: BatchSampler
    inputs: EmbedInputs
    num_negatives: int
    with_scores: bool
    mask_fallback: bool
    rank: int
    local_size: int
    chunk_size: int | None

    def __call__(self, step: int) -> PreparedStep:
        batch = assemble_batch(self.data, *self.sampler.at(step), num_negatives=self.num_negatives,
                               with_scores=self.with_scores, mask_fallback=self.mask_fallback)
        r, b, k, n = self.rank, self.local_size, self.num_negatives, batch.size
        queries = batch.queries[r * b:(r + 1) * b]
        candidates = batch.candidates[r * b:(r + 1) * b] + batch.candidates[n + r * b * k:n + (r + 1) * b * k]
        cut = (lambda items: chunks(items, self.chunk_size)) if self.chunk_size else (lambda items: [list(items)])
        return PreparedStep(n, batch.exclude, batch.scores, batch.score_mask, [self.inputs(c) for c in cut(queries)],
                            [self.inputs(c) for c in cut(candidates)], len(queries) + len(candidates))


class EmbeddingTask:
    """Builds the LoRA embedder and the training set; ``prepare`` makes a step's inputs, ``step`` runs it."""

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
        self.device = self.embedder.device
        objective.to(self.embedder.device)
        s = objective.settings
        self.num_negatives, self.with_scores = objective.num_negatives, objective.needs_scores
        self.fallback_rows = getattr(s, "fallback_rows", "keep")
        self.data = load_training_set(curated_dir, use_given_negatives=getattr(s, "use_given_negatives", False),
                                      hard_negatives=hard_negatives, num_hard_negatives=self.num_negatives,
                                      needs_scores=self.with_scores, fallback_rows=self.fallback_rows)
        self.sampler = BatchSampler(len(self.data.queries), settings.batch_size, settings.seed)
        self.local_size = settings.batch_size // world
        self.prepare = EmbeddingSteps(self.data, self.sampler, self.embedder.inputs, self.num_negatives,
                                      self.with_scores, self.fallback_rows == "mask", rank, self.local_size,
                                      settings.chunk_size)

    def fingerprint(self) -> dict:
        return {"task": "embedding", "mode": self.mode.as_dict(),
                "base_model": fingerprint_model_dir(self.base_model, full=True),
                "data": file_digest(self.curated_dir / "queries.parquet"),
                "hard_negatives": file_digest(self.hard_negatives) if self.hard_negatives else None}

    def attach(self, encoder) -> None:
        """Run the embedder through the backend's module (DDP / DeepSpeed engine)."""
        self.embedder.model = encoder

    def step(self, batch: PreparedStep, objective: Objective, backend, settings: TrainSettings) -> tuple[torch.Tensor, int]:
        """Accumulate the gradient of the objective on a prepared step; return (detached loss, local items)."""
        _, world = world_info()
        view = ObjectiveBatch(batch.size, self.num_negatives, batch.exclude, batch.scores, batch.score_mask)
        loss_fn = lambda q, c: objective(q, c, view, world)  # noqa: E731
        if settings.chunk_size:
            loss = gradcache_chunks(self.embedder.forward_prepared, batch.queries, batch.candidates, loss_fn,
                                    no_sync=backend.no_sync)
        else:
            loss = loss_fn(self.embedder.forward_prepared(batch.queries[0]),
                           self.embedder.forward_prepared(batch.candidates[0]))
            backend.backward(loss)
            loss = loss.detach()
        return loss, batch.items

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
