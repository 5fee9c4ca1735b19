"""Generative training of the tiny instruct MLLM (docs/hard-negatives.md, the judge's model): every weight, vision tower included.

This simulates the backbone's pretraining + instruction tuning, which real runs inherit from
Qwen2-VL-7B-Instruct; every later stage keeps the vision tower frozen. Batches of
:mod:`.data` examples, next-token cross-entropy on the answer tokens only
(:mod:`uniembed.train.generative`), AdamW with warmup and a schedule, gradient clipping. With
``group`` settings each step adds ``group.queries`` groups (:func:`.data.make_group`: a positive and
its non-matches, all asked the judge's question) and the listwise term :func:`group_loss` over
their Yes/No margins; the groups' answer tokens join the answer-token loss. With ``world`` settings it
adds ``world.groups`` groups of fresh questions from the world's rules (:mod:`.world`) the same way.

A task of the one trainer core (:func:`uniembed.train.core.run_training`), like the embedding and reranker
tasks: the core owns the optimiser and schedule, the run fingerprint and its checkpoints (weights, optimizer,
scheduler, every RNG and the sampler position under ``checkpoint_dir/<fingerprint>/``: a rerun of a killed job
resumes bit-exact, a finished run trains again), TensorBoard, the progress bar and the final save. The result
is ``out_dir/model`` (model + processor + the files a downloaded checkpoint has, :mod:`uniembed.model.saving`)
and ``out_dir/training_summary.json``, written atomically together.
"""
from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F

from ..artifacts import atomic_path, write_json
from ..data.loader import LoaderSettings, to_device
from ..embed.cache import file_digest, fingerprint_model_dir
from ..model.chat import yes_no_token_ids
from ..model.families import family_of
from ..model.loading import load_for_generation, set_bidirectional
from ..model.processor import load_processor
from ..model.saving import write_model_files
from ..provenance import code_version
from ..train.core import run_training
from ..train.data import BatchSampler
from ..train.generative import answer_forward, collate
from ..train.objectives.base import TrainingObjective
from ..train.settings import OptimizerSettings, TrainSettings
from .data import group_queries, load_instruct_data, make_example, make_group, plan_entries
from .settings import InstructSettings
from .world import WorldQuestions

log = logging.getLogger(__name__)
CURATED_FILES = ("queries.parquet", "candidates.parquet", "pools.parquet")


def _device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def data_fingerprint(curated_dir: Path, sources) -> dict:
    """Digests of the curated tables the instruct data is built from (a changed table = a fresh run)."""
    return {source: {name: file_digest(curated_dir / source / name) for name in CURATED_FILES
                     if (curated_dir / source / name).is_file()} for source in sources}


def train_settings(settings: InstructSettings) -> TrainSettings:
    """The core's settings of an instruct run (no LoRA: every weight not frozen trains)."""
    return TrainSettings(max_steps=settings.max_steps, batch_size=settings.batch_size,
                         optimizer=OptimizerSettings(lr=settings.lr, weight_decay=settings.weight_decay,
                                                     warmup_steps=settings.warmup_steps, schedule=settings.schedule,
                                                     max_grad_norm=settings.max_grad_norm),
                         objective={"name": InstructObjective.name}, seed=settings.seed,
                         save_every=settings.save_every, log_every=settings.log_every)


def train_instruct(settings: InstructSettings, *, base_model, curated_dir, out_dir, checkpoint_dir, log_dir,
                   device: str = "auto", progress: bool = True, stop_after: int | None = None,
                   loader: LoaderSettings = LoaderSettings()) -> dict:
    """Train ``base_model`` into an instruct model on ``curated_dir/<source>`` train records; save to ``out_dir``.

    ``stop_after`` ends this process's loop after that many steps (to test resume). ``loader`` sets the workers that
    prepare the steps' batches (results do not depend on it); with ``world`` questions the steps are prepared in this
    process, which owns the scratch directory their pictures are drawn into.
    """
    task = InstructTask(settings, base_model=base_model, curated_dir=curated_dir, device=device)
    objective = InstructObjective(settings, *yes_no_token_ids(task.processor.tokenizer))
    if settings.world is not None:
        loader = dataclasses.replace(loader, workers=0)
    try:
        return run_training(task, objective, train_settings(settings), out_dir=out_dir, checkpoint_dir=checkpoint_dir,
                            log_dir=log_dir, progress=progress, stop_after=stop_after, loader=loader)
    finally:
        task.close()


class InstructObjective(TrainingObjective):
    """Answer-token cross-entropy over every example, plus each listwise term (``group``, ``world``) with its
    weight over its rows' Yes/No margins (:func:`group_loss`); logs each part and each example kind's loss."""

    name = "instruct"
    task = "instruct"

    def __init__(self, settings: InstructSettings, yes_id: int, no_id: int):
        super().__init__(settings)
        self.yes_id, self.no_id = yes_id, no_id

    def combine(self, examples, row_sums, lengths, first, listwise_terms) -> torch.Tensor:
        loss = row_sums.sum() / lengths.sum()
        parts = {"loss_answers": float(loss.detach())} if listwise_terms else {}
        offset = len(examples) - sum(len(rows) for _, _, rows in listwise_terms)
        for name, term, rows in listwise_terms:
            listwise = group_loss(first[offset:offset + len(rows)], self.yes_id, self.no_id, term.negatives + 1)
            parts[f"loss_{name}"] = float(listwise.detach())
            loss = loss + term.weight * listwise
            offset += len(rows)
        self.parts = {**parts, **_loss_by_kind(examples, row_sums.detach() / lengths)}
        return loss


class InstructTask:
    """The generative model (every weight trains but a frozen tower), its processor and the instruct data."""

    def __init__(self, settings: InstructSettings, *, base_model, curated_dir, device: str = "auto"):
        self.settings, self.base_model, self.curated_dir = settings, Path(base_model), Path(curated_dir)
        self.device = _device(device)
        torch.manual_seed(settings.seed)
        self.processor = load_processor(base_model)
        self.model = set_bidirectional(load_for_generation(base_model), False).to(self.device).train()
        family = family_of(self.model)
        self.end_of_turn = family.end_of_turn
        if settings.freeze_vision:
            frozen = set(family.frozen_parameters(self.model))
            for name, parameter in self.model.named_parameters():
                if name in frozen:
                    parameter.requires_grad_(False)
        self.encoder = self.model
        self.data = load_instruct_data({source: self.curated_dir / source for source in settings.sources})
        self.entries = plan_entries(self.data, settings.mix)
        log.info("instruct data: %d train queries of %s, %d candidates; %d examples per epoch %s",
                 len(self.data.queries), settings.sources, len(self.data.candidates), len(self.entries),
                 dict(Counter(kind for kind, _, _ in self.entries)))
        self.sampler = BatchSampler(len(self.entries), settings.batch_size, settings.seed)
        self.grouped = group_queries(self.data) if settings.group is not None else []
        if settings.group is not None and len(self.grouped) < settings.group.queries:
            raise ValueError(f"model.instruct.group.queries={settings.group.queries}, but only {len(self.grouped)} "
                             "train queries have a non-matching candidate to build a group from")
        self.scratch = tempfile.TemporaryDirectory(prefix="instruct-world-") if settings.world is not None else None
        self.world = WorldQuestions(self.scratch.name) if self.scratch is not None else None

    def fingerprint(self) -> dict:
        return {"task": "instruct", "code_instruct": code_version("instruct", "data.synthetic"),
                "base_model": fingerprint_model_dir(self.base_model, full=True),
                "data": data_fingerprint(self.curated_dir, self.settings.sources), "device_type": self.device.type}

    def attach(self, encoder) -> None:
        self.encoder = encoder

    def prepare(self, step: int):
        """(examples, listwise terms, collated CPU tensors) of ``step``: the sampled entries, then each listwise
        term's rows (the batch's RNG): a pure function of the step, so loader workers may run it. The world's
        pictures are drawn into this task's scratch directory, so with ``world`` questions :func:`train_instruct`
        prepares the steps in its own process."""
        s = self.settings
        indices, rng = self.sampler.at(step)
        examples = [make_example(self.data, self.entries[i], rng) for i in indices]
        terms = []   # (name, settings, rows): each group kind's rows follow the previous kind's
        if s.group is not None:
            rows = [example for index in rng.choice(self.grouped, s.group.queries, replace=False)
                    for example in make_group(self.data, int(index), rng, s.group)]
            terms.append(("group", s.group, rows))
        if self.world is not None:
            rows = [example for g in range(s.world.groups)
                    for example in self.world.group(rng, s.world.negatives, f"{step}-{g}")]
            terms.append(("world", s.world, rows))
        examples = examples + [example for _, _, rows in terms for example in rows]
        return examples, terms, collate(self.processor, examples, self.end_of_turn)

    def step(self, batch, objective: InstructObjective, backend, settings: TrainSettings) -> tuple[torch.Tensor, int]:
        examples, terms, tensors = batch
        row_sums, lengths, first = answer_forward(self.encoder, to_device(tensors, self.device))
        loss = objective.combine(examples, row_sums, lengths, first, terms)
        backend.backward(loss)
        return loss.detach(), len(examples)

    def summary(self) -> dict:
        return {"sources": list(self.settings.sources), "train_queries": len(self.data.queries),
                "examples_per_epoch": len(self.entries),
                "epochs": self.settings.max_steps * self.settings.batch_size / len(self.entries),
                "settings": dataclasses.asdict(self.settings)}

    def save(self, out_dir: Path, summary: dict, objective) -> None:
        with atomic_path(out_dir, directory=True, manifest=True) as tmp:
            write_model_files(self.model.eval(), self.processor, tmp / "model")
            write_json(summary, tmp / "training_summary.json")

    def close(self) -> None:
        if self.scratch is not None:
            self.scratch.cleanup()


def group_loss(first_logits: torch.Tensor, yes_id: int, no_id: int, size: int) -> torch.Tensor:
    """Listwise cross-entropy over groups of ``size`` consecutive rows, the first of each its positive:
    mean over groups of -log softmax(m)[0] with m = logit(Yes) - logit(No) at each row's answer position."""
    if first_logits.shape[0] % size:
        raise ValueError(f"{first_logits.shape[0]} group rows are not a multiple of the group size {size}")
    margins = (first_logits[:, yes_id] - first_logits[:, no_id]).view(-1, size)
    return F.cross_entropy(margins, margins.new_zeros(margins.shape[0], dtype=torch.long))


def _loss_by_kind(examples, per_row: torch.Tensor) -> dict[str, float]:
    """Mean answer loss of each example kind in the batch (``loss_<kind>``), for TensorBoard."""
    sums, counts = Counter(), Counter()
    for example, value in zip(examples, per_row.tolist()):
        sums[example.kind] += value
        counts[example.kind] += 1
    return {f"loss_{kind}": sums[kind] / counts[kind] for kind in sorted(counts)}
