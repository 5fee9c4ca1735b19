"""Gradient caching: contrastive batches larger than memory allows, with exact gradients.

Gao et al. 2021, "Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup"
(GradCache, §3). The contrastive loss couples every embedding of the batch, but the encoder
does not: with e = f_theta(x), dL/dtheta = sum_j (dL/de_j) (de_j/dtheta). So

1. embed every chunk without a graph, recording the RNG state before each chunk;
2. make the embeddings leaf tensors, compute the loss on the whole batch and backward: this
   caches dL/de (parameters used by the loss itself, such as a learnable temperature, get
   their gradients here, once);
3. re-embed each chunk with a graph under its recorded RNG state (dropout draws the same mask)
   and backpropagate the cached gradient slice, accumulating dL/dtheta chunk by chunk.

Peak activation memory is that of one chunk; the result equals the full-batch gradient up to
floating-point summation order. This is what makes U-MARVEL's batch sizes of 576-3840
(Appendix C, Table 12) fit; combine with :func:`uniembed.train.distributed.gather_with_grad`
inside ``loss_fn`` for cross-device batches.
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import Callable, ContextManager, Iterator, Sequence

import torch
from torch import Tensor


class RngState:
    """The CPU and (initialised) CUDA generator states at creation, replayable later."""

    def __init__(self) -> None:
        self.cpu = torch.get_rng_state()
        cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
        self.cuda = torch.cuda.get_rng_state_all() if cuda else None

    @contextmanager
    def replay(self) -> Iterator[None]:
        """Run the body from the recorded states; the global generators resume afterwards."""
        devices = list(range(len(self.cuda))) if self.cuda is not None else []
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(self.cpu)
            if self.cuda is not None:
                torch.cuda.set_rng_state_all(self.cuda)
            yield


def chunks(items: Sequence, size: int) -> list[list]:
    """``items`` cut into consecutive chunks of ``size`` (the last may be shorter): one encoder call each."""
    if size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {size}")
    return [list(items[start:start + size]) for start in range(0, len(items), size)]


def gradcache_step(encode: Callable[[list], Tensor], query_items: Sequence, candidate_items: Sequence,
                   loss_fn: Callable[[Tensor, Tensor], Tensor], chunk_size: int, *,
                   no_sync: Callable[[], ContextManager] | None = None) -> Tensor:
    """Accumulate into ``.grad`` the gradient of ``loss_fn`` on the whole batch, chunk by chunk.

    Args:
        encode: maps a list of items (any type) to ``[len, d]`` L2-normalised embeddings with a
            graph; queries and candidates share it (one embedder, as in U-MARVEL).
        query_items: the B queries; candidate_items: the N candidates (positives first, then the
            hard negatives, the layout :func:`uniembed.train.losses.info_nce` expects).
        loss_fn: ``(queries [B, d], candidates [N, d]) -> 0-d loss``; may close over other
            parameters (the temperature) and gather across ranks.
        chunk_size: items per encoder call, for queries and candidates alike.
        no_sync: e.g. ``ddp_model.no_sync``: every chunk's re-encode and backward except the last
            run inside it, so DDP accumulates locally and all-reduces the summed gradient once,
            on the last backward. Without it DDP would all-reduce after every chunk.

    Returns:
        The loss, detached. Gradients are accumulated (not zeroed) as by ``loss.backward()``.
    """
    return gradcache_chunks(encode, chunks(query_items, chunk_size), chunks(candidate_items, chunk_size), loss_fn,
                            no_sync=no_sync)


def gradcache_chunks(encode: Callable[[object], Tensor], query_chunks: Sequence, candidate_chunks: Sequence,
                     loss_fn: Callable[[Tensor, Tensor], Tensor], *,
                     no_sync: Callable[[], ContextManager] | None = None) -> Tensor:
    """:func:`gradcache_step` on chunks already cut (and possibly prepared ahead by a data loader): ``encode``
    maps one chunk to its embeddings; each chunk's cached gradient is the slice of its own rows."""
    all_chunks = list(query_chunks) + list(candidate_chunks)
    states, cached = [], []
    with torch.no_grad():
        for chunk in all_chunks:
            states.append(RngState())
            cached.append(encode(chunk))
    queries = torch.cat(cached[:len(query_chunks)]).requires_grad_()
    candidates = torch.cat(cached[len(query_chunks):]).requires_grad_()
    loss = loss_fn(queries, candidates)
    loss.backward()
    if queries.grad is None or candidates.grad is None:
        raise RuntimeError("loss_fn must depend on both the query and the candidate embeddings")
    sizes = [len(embeddings) for embeddings in cached]
    grads = list(queries.grad.split(sizes[:len(query_chunks)])) + list(candidates.grad.split(sizes[len(query_chunks):]))
    for position, (chunk, state, grad) in enumerate(zip(all_chunks, states, grads)):
        last = position == len(all_chunks) - 1
        with (nullcontext() if no_sync is None or last else no_sync()):
            with state.replay():
                embeddings = encode(chunk)
            embeddings.backward(grad)
    return loss.detach()
