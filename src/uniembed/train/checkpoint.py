"""Resumable training checkpoints (docs/interruptions.md): a requeued job continues, it does not restart.

``<checkpoint_dir>/step-<N>/`` holds ``state.pt`` (tensors and plain containers only: the
trainable parameters (LoRA), the objective's state (its temperature), the optimizer and
scheduler states, the torch CPU and CUDA RNG states), loaded with ``torch.load(weights_only=True)`` so a checkpoint can never run
code, and ``meta.json`` (the step, the python and numpy RNG states, the sampler position, the
history and the run's fingerprint: config, code version, base model, data). Each checkpoint
directory is written atomically and ``latest`` is replaced last, so a job killed mid-save
resumes from the previous complete checkpoint. Resuming under a different fingerprint is an
error. A run that finished marks its directory (:func:`mark_finished`); a finished run is never
resumed: rerunning a finished stage (``snakemake --forcerun``) trains again from the start.
"""
from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from ..artifacts import atomic_path


FINISHED = "FINISHED"


def rng_state() -> dict:
    """Every RNG state; python and numpy as JSON-able lists, torch as tensors."""
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": [version, list(mt), gauss], "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


_TENSOR_KEYS = ("trainable", "objective", "optimizer", "scheduler")


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().cpu().clone() for name, p in model.named_parameters() if p.requires_grad}


def save_checkpoint(checkpoint_dir: str | os.PathLike, step: int, state: dict, keep: int = 2) -> Path:
    """Write ``state`` (must include 'fingerprint') as ``step-<step>`` and point ``latest`` at it."""
    checkpoint_dir = Path(checkpoint_dir)
    target = checkpoint_dir / f"step-{step:08d}"
    rng = rng_state()
    tensors = {k: v for k, v in state.items() if k in _TENSOR_KEYS}
    tensors["rng"] = {k: v for k, v in rng.items() if k in ("torch", "cuda")}
    meta = {k: v for k, v in state.items() if k not in _TENSOR_KEYS}
    meta.update(step=step, rng={"python": rng["python"], "numpy": rng["numpy"]})
    with atomic_path(target, directory=True) as tmp:
        torch.save(tensors, tmp / "state.pt")
        (tmp / "meta.json").write_text(json.dumps(meta))
    with atomic_path(checkpoint_dir / "latest") as tmp:
        tmp.write_text(target.name)
    for old in sorted(checkpoint_dir.glob("step-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def load_latest(checkpoint_dir: str | os.PathLike, fingerprint: dict) -> dict | None:
    """The latest complete checkpoint's state, or None; a different fingerprint raises ValueError."""
    remove_orphans(checkpoint_dir)
    pointer = Path(checkpoint_dir) / "latest"
    if not pointer.is_file():
        return None
    directory = Path(checkpoint_dir) / pointer.read_text().strip()
    meta = json.loads((directory / "meta.json").read_text())
    check_fingerprint(meta["fingerprint"], fingerprint, directory, checkpoint_dir)
    tensors = torch.load(directory / "state.pt", map_location="cpu", weights_only=True)
    rng = {**meta.pop("rng"), **tensors.pop("rng")}
    return {**meta, **tensors, "rng": rng}


def remove_orphans(directory: str | os.PathLike) -> list[Path]:
    """Delete the temporary files of saves that a kill interrupted (``.<name>.*.tmp``)."""
    orphans = sorted(Path(directory).glob(".*.tmp")) if Path(directory).is_dir() else []
    for path in orphans:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return orphans


def mark_finished(checkpoint_dir: str | os.PathLike) -> None:
    """Record that the run of ``checkpoint_dir`` completed and its outputs were written."""
    with atomic_path(Path(checkpoint_dir) / FINISHED) as tmp:
        tmp.write_text("the run of this directory finished; a rerun starts over\n")


def discard_if_finished(checkpoint_dir: str | os.PathLike) -> bool:
    """Remove a finished run's checkpoints so that a rerun computes again (True if removed)."""
    if (Path(checkpoint_dir) / FINISHED).is_file():
        shutil.rmtree(checkpoint_dir)
        return True
    return False


def check_fingerprint(saved: dict, current: dict, path, checkpoint_dir) -> None:
    """Refuse to resume a checkpoint written by another run, naming what differs."""
    saved, current = (json.loads(json.dumps(x, sort_keys=True)) for x in (saved, current))
    if saved != current:
        keys = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        raise ValueError(f"{path} was written by a run with a different {keys}; resume refused. "
                         f"Delete {checkpoint_dir} to start over, or restore the original settings.")


def restore(state: dict, model: torch.nn.Module, optimizer, scheduler, extra_modules: dict) -> None:
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    if set(state["trainable"]) != set(params):
        missing, unexpected = sorted(set(params) - set(state["trainable"])), sorted(set(state["trainable"]) - set(params))
        raise ValueError(f"checkpoint does not hold this model's trainable parameters: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}; resume refused")
    with torch.no_grad():
        for name, value in state["trainable"].items():
            params[name].copy_(value)
    for name, module in extra_modules.items():
        module.load_state_dict(state[name])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
