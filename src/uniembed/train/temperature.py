"""The InfoNCE temperature, fixed or learnable (U-MARVEL §3.2.1, Finding 4, Appendix C Table 12).

U-MARVEL starts at tau = 0.05 and, where it is learnable, lets it move: 0.05 -> 0.0206 within
one epoch of the M-BEIR instruction-tuning stage (lr 4e-4, 290 steps at batch 3840), then
0.0206 -> 0.0188 (hard negatives, lr 1.5e-5) and 0.0188 -> 0.0204 (distillation, lr 1e-5).

Parameterisation: tau itself is the parameter, as in U-MARVEL's released code (an
``nn.Parameter`` initialised to 0.05), not log tau. Adam moves a parameter by about its learning
rate per step whatever the gradient's scale, so the reachable change is ~lr x steps *in tau's own
units*: 290 x 4e-4 ~ 0.12 covers 0.05 -> 0.0206, while the same budget on log tau (at most
e^-0.12: 0.05 -> 0.044) cannot reproduce Table 12. The trainer puts tau in its own optimiser
group (no weight decay; an optional learning rate of its own, default the model's, as in the
released code). The returned value is clamped to ``[minimum, maximum]`` (1/tau <= 200 by default);
at a bound the gradient is zero, so the value stays there until the loss pulls it back inside.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import Tensor, nn

#: Written into a trained model's directory so that a later stage can continue from its tau
#: (Table 12 rows 4-5 continue from row 3).
TEMPERATURE_FILE = "uniembed_temperature.json"


class Temperature(nn.Module):
    """tau = clamp(tau_raw, minimum, maximum); ``tau_raw`` is a parameter (learnable) or a buffer.

    Args:
        initial: starting tau (U-MARVEL: 0.05).
        learnable: store ``tau`` as an ``nn.Parameter`` (true) or a persistent buffer.
        minimum, maximum: bounds on the returned tau, ``0 < minimum <= initial <= maximum``.
    """

    def __init__(self, initial: float = 0.05, learnable: bool = True,
                 minimum: float = 0.005, maximum: float = 1.0):
        super().__init__()
        if not 0 < minimum <= initial <= maximum:
            raise ValueError(f"need 0 < minimum <= initial <= maximum, got {minimum}, {initial}, {maximum}")
        self.learnable, self.minimum, self.maximum = learnable, float(minimum), float(maximum)
        tau = torch.tensor([float(initial)])  # shape [1]: DeepSpeed cannot broadcast 0-d parameters
        if learnable:
            self.tau = nn.Parameter(tau)
        else:
            self.register_buffer("tau", tau)

    def forward(self) -> Tensor:
        """tau as a 0-d tensor, differentiable with respect to the parameter inside the bounds."""
        return self.tau.clamp(self.minimum, self.maximum).squeeze(0)

    @property
    def value(self) -> float:
        """tau as a Python float, for logging."""
        with torch.no_grad():
            return float(self.forward())

    def extra_repr(self) -> str:
        return (f"value={self.value:.4g}, learnable={self.learnable}, "
                f"minimum={self.minimum:g}, maximum={self.maximum:g}")


def write_final_temperature(model_dir: str | os.PathLike, value: float, learnable: bool) -> None:
    """Record a stage's final tau beside its saved model (read by :func:`previous_temperature`)."""
    (Path(model_dir) / TEMPERATURE_FILE).write_text(json.dumps({"temperature": value, "learnable": learnable}) + "\n")


def previous_temperature(model_dir: str | os.PathLike) -> float:
    """The final tau of the stage that produced ``model_dir`` (``temperature: previous`` in a recipe)."""
    path = Path(model_dir) / TEMPERATURE_FILE
    if not path.is_file():
        raise ValueError(f"temperature: previous needs the starting model to come from a training stage, but "
                         f"{path} does not exist (is {model_dir} a base model?); give a number instead")
    return float(json.loads(path.read_text())["temperature"])
