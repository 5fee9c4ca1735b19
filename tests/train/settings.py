"""Small training settings for the tests: ``make_settings(max_steps=3, lr=1e-3, objective={...}, ...)``."""
from uniembed.train.settings import LoraSettings, OptimizerSettings, TrainSettings

INFO_NCE = {"name": "info_nce", "learnable_temperature": True}


def make_settings(*, max_steps: int = 3, batch_size: int = 4, lr: float = 1e-3, lora_r: int = 4,
                  objective: dict | None = None, **run) -> TrainSettings:
    """A TrainSettings with the optimiser, LoRA and objective sections filled in."""
    return TrainSettings(max_steps=max_steps, batch_size=batch_size, optimizer=OptimizerSettings(lr=lr),
                         lora=LoraSettings(r=lora_r), objective=dict(objective or INFO_NCE), **run)
