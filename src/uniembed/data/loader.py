"""Input pipelines with worker processes: CPU-side preparation ahead of the forward pass.

Every model call site splits its work in two: a *prepare* function (open and decode images, render the chat
prompts, run the HF processor; tensors stay on the CPU) and a forward on the prepared batch in the main
process. :func:`prepared` runs the prepare function over a list of *keys* (an index batch of the embedder, a
training step, a batch of judge items) with a ``torch.utils.data.DataLoader`` (``batch_size=None``: each
key is one batch; workers, prefetching, pinned memory on CUDA, as PyTorch's data-loading tutorial sets
them up). Items come back in key order whatever the worker count, and preparation is a pure function of
its key, so the results are identical for 0, 1 or N workers; 0 prepares in the main process, as before.

Workers run one torch thread each (:func:`limit_threads`, the DataLoader docs' advice for CPU-bound
workers) so that N workers use N cores, not N x the machine. The loader draws its base seed from its own
generator, never from the global torch RNG, so opening a loader does not shift dropout or a resumed run.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Callable, Iterator, Sequence

import torch

from .loader_settings import LoaderSettings


def limit_threads(worker_id: int) -> None:
    """A worker's ``worker_init_fn``: one intra-op thread, so N workers use N cores."""
    torch.set_num_threads(1)


class Pinnable:
    """A dataclass of prepared tensors that the DataLoader's pin-memory thread can pin (it calls ``pin_memory``)."""

    def pin_memory(self):
        return dataclasses.replace(self, **{f.name: pin(getattr(self, f.name)) for f in dataclasses.fields(self)})


def pin(value: Any) -> Any:
    """``value`` with every tensor inside (mappings, lists, tuples, :class:`Pinnable`) in pinned memory."""
    if isinstance(value, torch.Tensor):
        return value.pin_memory()
    if isinstance(value, Pinnable):
        return value.pin_memory()
    if isinstance(value, Mapping):
        pinned = {k: pin(v) for k, v in value.items()}
        return pinned if type(value) is dict else type(value)(pinned)
    if isinstance(value, (list, tuple)):
        return type(value)(pin(v) for v in value)
    return value


def to_device(tensors: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """A prepared batch's tensors on ``device`` (asynchronous from pinned memory; ordered on the stream)."""
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in tensors.items()}


class _Prepare(torch.utils.data.Dataset):
    """Key i of ``keys`` prepared by ``prepare`` (a map-style dataset; the loader's index is the position)."""

    def __init__(self, prepare: Callable[[Any], Any], keys: Sequence):
        self.prepare, self.keys = prepare, keys

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, position: int):
        return self.prepare(self.keys[position])


def _as_is(batch):
    """The prepared batch unchanged (no default collation: it would turn numpy arrays into tensors)."""
    return batch


def prepared(prepare: Callable[[Any], Any], keys: Sequence, settings: LoaderSettings = LoaderSettings(),
             device: torch.device | str = "cpu") -> Iterator[Any]:
    """``prepare(key)`` for every key in order, computed by ``settings.workers`` processes ahead of the consumer.

    ``prepare`` must not touch the model or CUDA (workers are forked); it may raise, and the error reaches the
    caller as a DataLoader re-raise of the worker's exception. Pinned memory is used when ``device`` is CUDA.
    """
    if not len(keys):
        return iter(())
    workers = min(settings.workers, len(keys))
    loader = torch.utils.data.DataLoader(
        _Prepare(prepare, keys), batch_size=None, shuffle=False, num_workers=workers, collate_fn=_as_is,
        pin_memory=settings.pin_memory and torch.device(device).type == "cuda",
        prefetch_factor=settings.prefetch_factor if workers else None, worker_init_fn=limit_threads if workers else None,
        generator=torch.Generator().manual_seed(0))
    return iter(loader)


def batches_of(size: int, count: int) -> list[range]:
    """Positions ``0 .. count - 1`` cut into consecutive batches of ``size`` (the last may be shorter)."""
    return [range(start, min(start + size, count)) for start in range(0, count, size)]
