"""Execution backends of the contrastive trainer: plain torch / DDP, or DeepSpeed ZeRO-2.

Both expose the same small surface to the training loop: the module the embedder calls, a
``no_sync`` factory for gradient caching, ``backward``, ``step``, the current learning rate, and
checkpoint save/load (docs/interruptions.md: resumable; a checkpoint of another run is refused).

* ``ddp`` (default): one process, or DDP under torchrun; checkpoints by
  :mod:`uniembed.train.checkpoint`. Works with gradient caching.
* ``deepspeed_zero2``: DeepSpeed ZeRO stage 2 (optimizer state and gradients partitioned across
  processes), DeepSpeed's own checkpoints. Gradient caching is refused: its second, chunked
  backward pass fights ZeRO's gradient partitioning and reduction hooks (the known trap);
  use ``ddp`` for large contrastive batches.
"""
from __future__ import annotations

import os
import socket
from contextlib import nullcontext
from pathlib import Path

import torch

from .checkpoint import (check_fingerprint, load_latest, restore, rng_state, save_checkpoint, set_rng_state,
                         trainable_state)

BACKENDS = ("ddp", "deepspeed_zero2")


class TorchBackend:
    def __init__(self, model, objective, optimizer, scheduler, params, settings, world: int):
        self.model, self.objective, self.optimizer, self.scheduler = model, objective, optimizer, scheduler
        self.params, self.max_grad_norm, self.world = params, settings.optimizer.max_grad_norm, world
        self.encoder = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model

    @property
    def no_sync(self):
        return self.encoder.no_sync if self.world > 1 else nullcontext

    def backward(self, loss):
        loss.backward()

    def step(self):
        torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    @property
    def lr(self) -> float:
        return self.scheduler.get_last_lr()[0]

    def save(self, checkpoint_dir, step: int, client_state: dict) -> None:
        if torch.distributed.is_initialized() and torch.distributed.get_rank() != 0:
            torch.distributed.barrier()
            return
        save_checkpoint(checkpoint_dir, step, {
            **client_state, "trainable": trainable_state(self.model), "objective": self.objective.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()})
        if torch.distributed.is_initialized():
            torch.distributed.barrier()

    def load(self, checkpoint_dir, fingerprint: dict) -> dict | None:
        state = load_latest(checkpoint_dir, fingerprint)
        if state is not None:
            restore(state, self.model, self.optimizer, self.scheduler, {"objective": self.objective})
        return state


class _TrainingModule(torch.nn.Module):
    """The encoder and the objective (its temperature) in one module, so ZeRO partitions and reduces both."""

    def __init__(self, encoder, objective):
        super().__init__()
        self.encoder, self.objective = encoder, objective

    def forward(self, **inputs):
        return self.encoder(**inputs)


def _init_deepspeed_distributed(deepspeed) -> None:
    """A single process without a launcher still needs a process group for DeepSpeed."""
    if "RANK" not in os.environ:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    deepspeed.init_distributed(dist_backend="nccl" if torch.cuda.is_available() else "gloo")


class DeepSpeedBackend:
    def __init__(self, model, objective, optimizer, scheduler, params, settings, world: int):
        import deepspeed

        if settings.chunk_size:
            raise ValueError("gradient caching (chunk_size) cannot be combined with DeepSpeed ZeRO-2: its chunked "
                             "second backward fights ZeRO's gradient partitioning; use backend: ddp for large batches")
        if not torch.distributed.is_initialized():
            _init_deepspeed_distributed(deepspeed)
        world = torch.distributed.get_world_size()
        config = {
            "train_micro_batch_size_per_gpu": settings.batch_size // world,
            "gradient_accumulation_steps": 1,
            "gradient_clipping": settings.optimizer.max_grad_norm,
            "zero_optimization": {"stage": 2, "overlap_comm": True, "contiguous_gradients": True},
            "bf16": {"enabled": torch.cuda.is_available()},
            "steps_per_print": 10**9,
        }
        self.module = _TrainingModule(model, objective)
        self.engine, _, _, self.scheduler = deepspeed.initialize(
            model=self.module, optimizer=optimizer, lr_scheduler=scheduler, config=config)
        self.model, self.objective = model, objective
        self.encoder = self.engine
        self.no_sync = nullcontext

    def backward(self, loss):
        self.engine.backward(loss)

    def step(self):
        self.engine.step()

    @property
    def lr(self) -> float:
        return self.engine.get_lr()[0]

    def save(self, checkpoint_dir, step: int, client_state: dict) -> None:
        self.engine.save_checkpoint(str(Path(checkpoint_dir) / "deepspeed"), tag=f"step-{step:08d}",
                                    client_state={**client_state, "step": step, "rng": rng_state()})

    def load(self, checkpoint_dir, fingerprint: dict) -> dict | None:
        directory = Path(checkpoint_dir) / "deepspeed"
        if not (directory / "latest").is_file():
            return None
        path, state = self.engine.load_checkpoint(str(directory))
        check_fingerprint(state["fingerprint"], fingerprint, path, checkpoint_dir)
        set_rng_state(state["rng"])
        return state


def make_backend(name: str, *args):
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    return (TorchBackend if name == "ddp" else DeepSpeedBackend)(*args)
