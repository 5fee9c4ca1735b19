"""Stage ``evaluate_mieb``: one model (base, or base + adapter) on the MIEB-style tasks of the synthetic world.

    python -m uniembed.stages.evaluate_mieb stage.tag=zero_shot stage.out_dir=DIR [stage.model_dir=...]
        [stage.adapter_dir=...]

Scores the seven MIEB categories the world expresses (:mod:`uniembed.evaluate.mieb.suite`; the numbers mteb
computes for the same local tasks) and writes ``mieb.parquet`` / ``mieb.csv`` (the evaluation schema, benchmark
``mieb``) and ``mieb.md`` / ``mieb.tex`` (MIEB Table 2 layout, then one row per task).
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from omegaconf import OmegaConf

from ..config import stage_config
from ..embed.embedder import Embedder, EmbeddingMode
from ..evaluate.mieb.suite import evaluate_world
from .common import loader_settings, require
from .evaluate import write_outputs

log = logging.getLogger("uniembed.evaluate_mieb")


def run(cfg) -> list[dict]:
    s = cfg.stage
    require(s, "tag", "out_dir")
    mode = EmbeddingMode(**OmegaConf.to_container(cfg.recipe.embedding))
    embedder = Embedder.from_pretrained(s.model_dir or cfg.model.path, s.adapter_dir, mode,
                                        device=cfg.recipe.device, loader=loader_settings(cfg))
    rows = evaluate_world(embedder, s.tag)
    for row in rows:
        log.info("%s %s: %s %.1f", row["setting"], row["dataset"], row["metric"], row["value"])
    write_outputs(rows, Path(s.out_dir), s.tag, scores="mieb", tables="mieb")
    return rows


def main(argv=None) -> None:
    rows = run(stage_config(argv, __doc__))
    log.info("evaluated %d MIEB-style tasks", len(rows))


if __name__ == "__main__":
    main(sys.argv[1:])
