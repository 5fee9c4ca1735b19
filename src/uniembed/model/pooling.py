"""Pooling of last hidden states into one embedding per item (U-MARVEL §3.1.1, Table 1)."""
from __future__ import annotations

import torch


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the positions where ``mask`` is True (U-MARVEL: content tokens, instruction masked)."""
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


def last_token_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Hidden state of the last real token, found from ``attention_mask`` so padding side does not matter."""
    seq = attention_mask.shape[1]
    positions = torch.arange(seq, device=attention_mask.device).expand_as(attention_mask)
    last = torch.where(attention_mask.bool(), positions, torch.full_like(positions, -1)).max(dim=1).values
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
