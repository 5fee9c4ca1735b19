"""The one training loop: a task, an objective, a backend and the settings.

A *task* knows how to build a batch and run its model on it (:class:`uniembed.train.embedding_task.
EmbeddingTask` for the embedder; a generative reranker task plugs in the same way); an *objective*
(:mod:`uniembed.train.objectives`) turns the model's outputs into a loss and owns its parameters;
a *backend* (:mod:`uniembed.train.backends`) executes backward/step and checkpoints. The loop
here owns what every training stage shares: the optimiser and schedule, the run fingerprint and
its checkpoint directory (resume after a kill, start over after a finished run), logging to
TensorBoard and the progress bar, and the final save.

A step's batch is prepared on the CPU by the task's ``prepare`` (a pure function of the step: the sampler's
batch for that step, images decoded, processor run) in data-loader workers ahead of the step
(:func:`uniembed.data.loader.prepared`, ``loader`` settings); the step itself runs the model in this process.
The loader starts at the resumed step, so a resumed run sees exactly the batches of an uninterrupted one, and
the worker count is no part of the run's fingerprint: any count gives the same batches and the same weights.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Protocol

import torch
from tqdm import tqdm
from transformers import get_scheduler

from ..data.loader import LoaderSettings, prepared
from ..provenance import code_version
from .backends import make_backend
from .checkpoint import discard_if_finished, mark_finished
from .distributed import world_info
from .objectives import Objective
from .settings import TrainSettings

log = logging.getLogger(__name__)


class Task(Protocol):
    """What the loop needs from a task (the embedding task, a reranker task)."""

    model: torch.nn.Module
    device: torch.device
    sampler: object   # .seek(steps) / .state() / .load_state(state)
    prepare: Callable[[int], Any]   # step -> its prepared batch, on the CPU (runs in loader workers: no model)

    def fingerprint(self) -> dict: ...
    def attach(self, encoder) -> None: ...
    def step(self, batch, objective: Objective, backend, settings: TrainSettings) -> tuple[torch.Tensor, int]: ...
    def summary(self) -> dict: ...
    def save(self, out_dir: Path, summary: dict, objective: Objective) -> None: ...


def init_distributed() -> tuple[int, int]:
    """Join torchrun's process group when launched by it; ``(rank, world_size)``."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")  # env://
    return world_info()


def build_optimizer(settings: TrainSettings, trainable: list, objective: Objective):
    """AdamW over the model's trainable parameters plus the objective's own groups, and the schedule."""
    o = settings.optimizer
    groups = [{"params": trainable}] + objective.param_groups(o.lr)
    optimizer = torch.optim.AdamW(groups, lr=o.lr, weight_decay=o.weight_decay)
    return optimizer, get_scheduler(o.schedule, optimizer, o.warmup_steps, settings.max_steps)


def run_training(task: Task, objective: Objective, settings: TrainSettings, *, out_dir, checkpoint_dir, log_dir,
                 progress: bool = True, stop_after: int | None = None, loader: LoaderSettings = LoaderSettings()) -> dict:
    """Train ``task`` with ``objective`` for ``settings.max_steps``; save into ``out_dir`` at the end.

    Checkpoints go to ``checkpoint_dir/<fingerprint>``: rerunning the same call after a kill resumes
    bit-exactly; rerunning after it finished trains again. ``stop_after`` ends this process's loop
    after that many steps (to test resume) and returns ``{"finished": False, "step": ...}``. ``loader`` sets the
    workers that prepare the steps' batches (results do not depend on it).
    """
    rank, world = world_info()
    trainable = [p for p in task.model.parameters() if p.requires_grad]
    params = trainable + list(objective.parameters())
    optimizer, scheduler = build_optimizer(settings, trainable, objective)
    fingerprint = {"settings": settings.as_dict(), "objective": objective.config(), "world_size": world,
                   "code": code_version("train", "embed", "model"), **task.fingerprint()}
    checkpoint_dir = Path(checkpoint_dir) / hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]
    backend = make_backend(settings.backend, task.model, objective, optimizer, scheduler, params, settings, world)
    task.attach(backend.encoder)
    if rank == 0 and discard_if_finished(checkpoint_dir):
        log.info("%s holds a finished run: training again from the start", checkpoint_dir)
    if world > 1:
        torch.distributed.barrier()
    step, history = 0, []
    state = backend.load(checkpoint_dir, fingerprint)
    if state is not None:
        task.sampler.load_state(state["sampler"])
        step, history = state["step"], state["history"]
        log.info("resumed from %s at step %d", checkpoint_dir, step)
    writer = _writer(log_dir) if rank == 0 else None
    bar = tqdm(total=settings.max_steps, initial=step, desc="train", unit="step", disable=not progress or rank)
    last = settings.max_steps if stop_after is None else min(settings.max_steps, step + stop_after)
    batches = prepared(task.prepare, range(step, last), loader, task.device)
    while step < last:
        start = time.perf_counter()
        loss, items = task.step(next(batches), objective, backend, settings)
        backend.step()
        step = step + 1
        task.sampler.seek(step)
        record = {"step": step, "loss": float(loss), **objective.parts, **objective.log_values(), "lr": backend.lr,
                  "items_per_s": items * world / (time.perf_counter() - start)}
        history.append(record)
        bar.update(1)
        bar.set_postfix({k: f"{record[k]:.4g}" for k in ("loss", "temperature") if k in record})
        if writer and (step % settings.log_every == 0 or step == settings.max_steps):
            for key, value in record.items():
                if key != "step":
                    writer.add_scalar(f"train/{key}", value, step)
        if step % settings.save_every == 0 or step == settings.max_steps:
            backend.save(checkpoint_dir, step, {"fingerprint": fingerprint, "sampler": task.sampler.state(),
                                                "history": history})
    bar.close()
    del batches   # the loader's workers end
    if writer:
        writer.close()
    if step < settings.max_steps:
        return {"finished": False, "step": step}
    summary = {"finished": True, "step": step, "objective": objective.name, "history": history,
               **{f"final_{k}": v for k, v in objective.log_values().items()}, **task.summary()}
    if rank == 0:
        task.save(Path(out_dir), summary, objective)
        mark_finished(checkpoint_dir)
    return summary


def _writer(log_dir):
    from torch.utils.tensorboard import SummaryWriter
    return SummaryWriter(str(log_dir))
