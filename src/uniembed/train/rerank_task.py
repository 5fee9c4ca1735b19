"""The reranker task: LoRA on the language model of a generative Qwen2-VL (vision tower frozen),
chat examples from the recall model's retrieval over the training queries, next-token
cross-entropy on the answers (U-MARVEL App. C eq. 3; UniME-V2-Reranker).

A task of the one trainer core (:mod:`uniembed.train.core`), like the embedding task: the core owns
the optimiser, schedule, checkpoints (resume bit-exact), DDP/DeepSpeed backends, TensorBoard and
the progress bar. The objective (:mod:`uniembed.train.objectives.rerank`) says which examples a
query gives and how their losses combine. Training data (``retrieval``): the mined table
(U-MARVEL) or a filter's hard-negative table (UniME-V2), recognised by its schema (see
:mod:`uniembed.rerank.examples` for why each), with the curated queries and candidates. A step's chat
examples are drawn and collated (images decoded, processor run) by :class:`RerankSteps` in the core's loader
workers; :meth:`RerankTask.step` runs the model on them.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from ..artifacts import atomic_path, read_parquet, write_json
from ..data.loader import Pinnable, to_device
from ..data.schemas import QUERIES
from ..embed.cache import file_digest, fingerprint_model_dir
from ..judge.pairs import build_judge_pairs
from ..mine.schemas import HARD_NEGATIVES, MINED
from ..model.families import family_of
from ..model.loading import load_for_generation, set_bidirectional
from ..model.processor import load_processor
from ..model.saving import write_model_files
from ..rerank.examples import RerankQuery, count_unusable, group_pairs, ranked_negatives
from .data import BatchSampler
from .distributed import world_info
from .generative import answer_token_losses, collate
from .lora import apply_lora, enable_activation_checkpointing
from .objectives.rerank import RerankObjective
from .settings import TrainSettings


@dataclass(frozen=True)
class PreparedExamples(Pinnable):
    """This rank's share of a step's chat examples: their kinds and the collated CPU tensors (labels included)."""
    kinds: list[str]
    tensors: dict


@dataclass(frozen=True)
class RerankSteps:
    """step -> :class:`PreparedExamples`: the sampler's queries of the step, their examples (choices from the
    batch's RNG), this rank's share, collated; a pure function of (seed, step)."""
    queries: list[RerankQuery]
    objective: RerankObjective
    sampler: BatchSampler
    processor: object
    end_of_turn: str
    rank: int
    local_size: int

    def __call__(self, step: int) -> PreparedExamples:
        indices, rng = self.sampler.at(step)
        examples = [example for i in indices for example in self.objective.examples(self.queries[i], rng)]
        per_query = len(examples) // len(indices)
        mine = examples[self.rank * self.local_size * per_query:(self.rank + 1) * self.local_size * per_query]
        return PreparedExamples([e.kind for e in mine], collate(self.processor, mine, self.end_of_turn))


class RerankTask:
    """Builds the LoRA reranker and its training queries; ``prepare`` makes a step's inputs, ``step`` runs it."""

    def __init__(self, settings: TrainSettings, objective: RerankObjective, *, base_model, curated_dir, retrieval,
                 device: str = "auto"):
        rank, world = world_info()
        if settings.chunk_size:
            raise ValueError("gradient caching (chunk_size) is for contrastive objectives; a reranker batch has none")
        if settings.batch_size % world:
            raise ValueError(f"batch_size {settings.batch_size} must be divisible by the {world} processes")
        if device == "auto":
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', rank))}" if torch.cuda.is_available() else "cpu"
        torch.manual_seed(settings.seed)
        self.base_model, self.curated_dir, self.retrieval = Path(base_model), Path(curated_dir), Path(retrieval)
        self.processor = load_processor(base_model)
        model = set_bidirectional(load_for_generation(base_model), False).to(device)
        self.model = apply_lora(model, settings.lora)
        self.end_of_turn = family_of(model).end_of_turn
        self.encoder, self.device = self.model, torch.device(device)
        if settings.activation_checkpointing:
            enable_activation_checkpointing(self.model)
        self.objective = objective
        queries = read_parquet(self.curated_dir / "queries.parquet", QUERIES)
        train = queries.filter(pc.equal(queries["split"], "train"))       # never a test query, whatever the table holds
        pairs = build_judge_pairs(train, self.curated_dir / "candidates.parquet",
                                  _train_rows(read_ranked(self.retrieval), train))
        self.queries, self.dropped = group_pairs(pairs), count_unusable(pairs)
        if not self.queries:
            raise ValueError(f"{self.retrieval}: no training query has both a positive and retrieved candidates "
                             f"(dropped: {self.dropped})")
        self.sampler = BatchSampler(len(self.queries), settings.batch_size, settings.seed)
        self.local_size = settings.batch_size // world
        self.prepare = RerankSteps(self.queries, objective, self.sampler, self.processor, self.end_of_turn, rank,
                                   self.local_size)

    def fingerprint(self) -> dict:
        return {"task": "rerank", "base_model": fingerprint_model_dir(self.base_model, full=True),
                "data": {name: file_digest(self.curated_dir / name) for name in ("queries.parquet", "candidates.parquet")},
                "retrieval": file_digest(self.retrieval)}

    def attach(self, encoder) -> None:
        self.encoder = encoder

    def step(self, batch: PreparedExamples, objective: RerankObjective, backend,
             settings: TrainSettings) -> tuple[torch.Tensor, int]:
        row_sums, lengths = answer_token_losses(self.encoder, to_device(batch.tensors, self.device))
        loss = objective.combine(batch.kinds, row_sums, lengths)
        backend.backward(loss)
        return loss.detach(), len(batch.kinds)

    def summary(self) -> dict:
        return {"num_queries": len(self.queries), "dropped_queries": self.dropped,
                "examples_per_query": dict(Counter(e.kind for e in self.objective.examples(
                    self.queries[0], np.random.default_rng(0))))}

    def save(self, out_dir: Path, summary: dict, objective) -> None:
        """``out_dir/adapter`` (the LoRA) and ``out_dir/model`` (merged: a complete checkpoint that the
        judge's scoring backends, transformers or vLLM, load), written atomically together."""
        with atomic_path(out_dir, directory=True, manifest=True) as tmp:
            self.model.save_pretrained(tmp / "adapter")
            write_model_files(self.model.merge_and_unload().eval(), self.processor, tmp / "model")
            write_json(summary, tmp / "training_summary.json")


def read_ranked(path: Path) -> pa.Table:
    """The ranked candidates of a MINED table, or of a HARD_NEGATIVES table (:func:`ranked_negatives`)."""
    schema = pq.read_schema(path)
    if schema.equals(HARD_NEGATIVES, check_metadata=False):
        return ranked_negatives(read_parquet(path, HARD_NEGATIVES))
    if schema.equals(MINED, check_metadata=False):
        return read_parquet(path, MINED)
    raise ValueError(f"{path}: a reranker trains on a mined table or a filter's hard negatives; its schema is neither"
                     f"\nexpected:\n{MINED}\nor:\n{HARD_NEGATIVES}\nfound:\n{schema}")


def _train_rows(mined: pa.Table, train_queries: pa.Table) -> pa.Table:
    """The mined rows of train-split queries (a mined table of another split's queries contributes nothing)."""
    return mined.filter(pc.is_in(mined["query_id"], value_set=train_queries["query_id"]))
