"""U-MARVEL's contrastive objective: InfoNCE over in-batch (+ hard) negatives (App. C eq. 2).

Pretraining (§3.1.3) uses in-batch negatives only: unidirectional for NLI, bidirectional for
image-caption pairs. The hard-negative stage (§3.2.2, Table 12 row 4; released code) adds k = 5
filtered hard negatives per query to the in-batch candidates (a query with fewer is padded with its
first, as the released code: ``train.data.pad_negatives``) and continues the learnable temperature of the previous stage (0.0206 -> 0.0188).
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..objective_settings import InfoNCESettings
from ..losses import info_nce
from ..temperature import Temperature, previous_temperature
from .base import Objective, ObjectiveBatch


class InfoNCEObjective(Objective):
    name = "info_nce"

    def __init__(self, settings: InfoNCESettings, start_model=None):
        super().__init__(settings, start_model)
        s = settings
        initial = previous_temperature(start_model) if s.temperature == "previous" else float(s.temperature)
        self.initial_temperature = initial
        self.temperature = Temperature(initial, s.learnable_temperature, s.temperature_min, s.temperature_max)

    def config(self) -> dict:
        return {**super().config(), "initial_temperature": self.initial_temperature}

    def param_groups(self, lr: float) -> list[dict]:
        """tau in its own group: no weight decay, its own learning rate (see temperature.py)."""
        if not self.settings.learnable_temperature:
            return []
        tau_lr = self.settings.temperature_lr if self.settings.temperature_lr is not None else lr
        return [{"params": list(self.temperature.parameters()), "weight_decay": 0.0, "lr": tau_lr}]

    def log_values(self) -> dict[str, float]:
        return {"temperature": self.temperature.value}

    def loss(self, q: Tensor, c: Tensor, batch: ObjectiveBatch) -> tuple[Tensor, dict[str, Tensor]]:
        exclude = torch.as_tensor(batch.exclude, device=q.device)
        value = info_nce(q, c, self.temperature(), bidirectional=self.settings.bidirectional, exclude=exclude)
        return value, {"info_nce": value}
