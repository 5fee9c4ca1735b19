"""The InfoNCE temperature, fixed or learnable on a log scale (U-MARVEL §3.2.1, Finding 4).

U-MARVEL starts at tau = 0.05 and, where it is learnable, lets it move: 0.05 -> 0.0206 in the
M-BEIR instruction-tuning stage, then 0.0206 -> 0.0188 -> 0.0204 in the later stages (Appendix C,
Table 12). Table 4 (ID-4 vs ID-7, ID-6 vs ID-8) shows the learnable one scoring higher. Storing
log tau keeps tau positive and makes steps relative; the clamp to ``[minimum, maximum]`` bounds
the logit scale (1/tau <= 200 by default). Inside the range the gradient is that of exp(log tau);
at a bound it is zero, so the value stays there until an outside force (e.g. the optimizer's
weight decay, which should exclude this parameter) moves it back.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class Temperature(nn.Module):
    """tau = clamp(exp(log_tau), minimum, maximum); ``log_tau`` is a parameter or a buffer.

    Args:
        initial: starting tau (U-MARVEL: 0.05).
        learnable: store ``log_tau`` as an ``nn.Parameter`` (true) or a persistent buffer.
        minimum, maximum: bounds on the returned tau, ``0 < minimum <= initial <= maximum``.
    """

    def __init__(self, initial: float = 0.05, learnable: bool = True,
                 minimum: float = 0.005, maximum: float = 1.0):
        super().__init__()
        if not 0 < minimum <= initial <= maximum:
            raise ValueError(f"need 0 < minimum <= initial <= maximum, got {minimum}, {initial}, {maximum}")
        self.learnable, self.minimum, self.maximum = learnable, float(minimum), float(maximum)
        log_tau = torch.tensor([math.log(initial)])  # shape [1]: DeepSpeed cannot broadcast 0-d parameters
        if learnable:
            self.log_tau = nn.Parameter(log_tau)
        else:
            self.register_buffer("log_tau", log_tau)

    def forward(self) -> Tensor:
        """tau as a 0-d tensor, differentiable with respect to ``log_tau`` inside the bounds."""
        return self.log_tau.exp().clamp(self.minimum, self.maximum).squeeze(0)

    @property
    def value(self) -> float:
        """tau as a Python float, for logging."""
        with torch.no_grad():
            return float(self.forward())

    def extra_repr(self) -> str:
        return (f"value={self.value:.4g}, learnable={self.learnable}, "
                f"minimum={self.minimum:g}, maximum={self.maximum:g}")
