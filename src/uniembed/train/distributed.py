"""Cross-device contrastive batches: gather embeddings from all ranks, keep the local gradient.

U-MARVEL trains with global batches of up to 3840 over 64 devices (§3.2.1, Table 4, Appendix C
Table 12), so every query is scored against the candidates of all ranks. ``all_gather`` has no
gradient; the trick (U-MARVEL's ``qwen2_vl_finetune_with_hard_neg.py``) is to gather detached
copies and put the local tensor back into its own slot, so autograd reaches the local shard.

Why that gives the true gradient: every rank computes the same global loss L on the gathered
batch. On rank r autograd reaches only its shard x_r, but there it sees every term of L, so
the gradient it gets is exactly dL/dx_r. For an encoder parameter theta,
dL/dtheta = sum_r dL/dx_r * dx_r/dtheta is the *sum* of the per-rank gradients, while DDP
*averages* them. So the backward of the local slot multiplies its gradient by the world size:
DDP's average then equals the global gradient. The loss itself is not scaled, so a parameter
the loss uses directly on every rank (the learnable temperature) gets exactly dL/dtau.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def world_info() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` when ``torch.distributed`` is absent or not initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _ScaleGradient(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by ``factor`` (the world size)."""

    @staticmethod
    def forward(ctx, x: Tensor, factor: int) -> Tensor:
        ctx.factor = factor
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad * ctx.factor, None


def gather_with_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` from all ranks along dim 0, rank order; gradient flows to the local slot.

    ``x`` must have the same shape on every rank (a requirement of ``all_gather``). Rows of the
    other ranks are constants here; the local slot's gradient is scaled by the world size
    (module docstring). Returns ``x`` itself when not distributed.
    """
    rank, world = world_info()
    if world == 1:
        return x
    shards = [torch.empty_like(x) for _ in range(world)]
    dist.all_gather(shards, x.detach().contiguous())
    shards[rank] = _ScaleGradient.apply(x, world)
    return torch.cat(shards, dim=0)


def average_gradients(module: torch.nn.Module) -> None:
    """Average every trainable parameter's gradient over the processes (DDP's reduction), for a step whose backward
    passes all ran under ``no_sync``; nothing when not distributed. A parameter without a gradient counts as zero."""
    _, world = world_info()
    if world == 1:
        return
    for parameter in module.parameters():
        if parameter.requires_grad:
            if parameter.grad is None:
                parameter.grad = torch.zeros_like(parameter)
            dist.all_reduce(parameter.grad)
            parameter.grad /= world
