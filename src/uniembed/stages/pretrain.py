"""Stage ``pretrain``: one step of U-MARVEL's progressive transition (§3.1.3).

    python -m uniembed.stages.pretrain [--config-dir config] stage.name=nli stage.model_dir=PREV \\
        stage.curated_dir=DIR stage.out_dir=DIR stage.checkpoint_dir=DIR stage.log_dir=DIR

Trains LoRA on ``stage.model_dir`` (the base model, or the previous stage's merged model) with
the settings of ``recipe.pretrain.stages.<name>`` on the curated source it names, and writes
``out_dir/adapter`` + ``out_dir/model`` (merged). Rerunning resumes from ``checkpoint_dir``.
Under torchrun each process trains its shard of every global batch (DDP).
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from omegaconf import OmegaConf

from ..config import stage_config
from ..embed.embedder import EmbeddingMode
from ..train.trainer import TrainSettings, train_contrastive
from .common import require

log = logging.getLogger("uniembed.pretrain")


def run(cfg) -> dict:
    s = cfg.stage
    stages = cfg.recipe.pretrain.stages
    if s.name not in stages:
        raise SystemExit(f"unknown pretrain stage {s.name!r}; recipe {cfg.recipe.name!r} defines {list(stages)}")
    require(s, "model_dir", "curated_dir", "out_dir", "checkpoint_dir", "log_dir")
    params = OmegaConf.to_container(stages[s.name])
    source = params.pop("source")
    try:
        settings = TrainSettings(**{"seed": cfg.recipe.seed, **params})
    except TypeError as exc:
        raise SystemExit(f"recipe.pretrain.stages.{s.name}: {exc}") from None
    log.info("pretrain %s on %s from %s: %s", s.name, source, s.model_dir, settings)
    summary = train_contrastive(
        settings, base_model=s.model_dir, curated_dir=Path(s.curated_dir) / source, out_dir=s.out_dir,
        checkpoint_dir=s.checkpoint_dir, log_dir=s.log_dir,
        mode=EmbeddingMode(**OmegaConf.to_container(cfg.recipe.embedding)), device=cfg.recipe.device,
        progress=s.progress)
    log.info("pretrain %s done: %d steps, final temperature %.4f", s.name, summary["step"], summary.get("final_temperature", float("nan")))
    return summary


def main(argv=None) -> None:
    run(stage_config(argv, __doc__))


if __name__ == "__main__":
    main(sys.argv[1:])
