"""Resumable training checkpoints (design.md §4): a requeued job continues, it does not restart.

``<checkpoint_dir>/step-<N>/state.pt`` holds the trainable parameters (LoRA + temperature), the
optimizer and scheduler states, every RNG state (python, numpy, torch CPU and CUDA), the step,
the sampler position and the run's fingerprint (config, base model, data). Each checkpoint
directory is written atomically and ``latest`` is replaced last, so a job killed mid-save
resumes from the previous complete checkpoint. Resuming under a different fingerprint is an error.
"""
from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from ..artifacts import atomic_path


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().cpu().clone() for name, p in model.named_parameters() if p.requires_grad}


def save_checkpoint(checkpoint_dir: str | os.PathLike, step: int, state: dict, keep: int = 2) -> Path:
    """Write ``state`` (must include 'fingerprint') as ``step-<step>`` and point ``latest`` at it."""
    checkpoint_dir = Path(checkpoint_dir)
    target = checkpoint_dir / f"step-{step:08d}"
    with atomic_path(target, directory=True) as tmp:
        torch.save({**state, "step": step, "rng": rng_state()}, tmp / "state.pt")
    with atomic_path(checkpoint_dir / "latest") as tmp:
        tmp.write_text(target.name)
    for old in sorted(checkpoint_dir.glob("step-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def load_latest(checkpoint_dir: str | os.PathLike, fingerprint: dict) -> dict | None:
    """The latest complete checkpoint's state, or None; a different fingerprint raises ValueError."""
    pointer = Path(checkpoint_dir) / "latest"
    if not pointer.is_file():
        return None
    path = Path(checkpoint_dir) / pointer.read_text().strip() / "state.pt"
    state = torch.load(path, map_location="cpu", weights_only=False)
    check_fingerprint(state["fingerprint"], fingerprint, path, checkpoint_dir)
    return state


def check_fingerprint(saved: dict, current: dict, path, checkpoint_dir) -> None:
    """Refuse to resume a checkpoint written by another run, naming what differs."""
    if saved != current:
        keys = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        raise ValueError(f"{path} was written by a run with a different {keys}; resume refused. "
                         f"Delete {checkpoint_dir} to start over, or restore the original settings.")


def restore(state: dict, model: torch.nn.Module, optimizer, scheduler, extra_modules: dict) -> None:
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state["trainable"].items():
            params[name].copy_(value)
    for name, module in extra_modules.items():
        module.load_state_dict(state[name])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
