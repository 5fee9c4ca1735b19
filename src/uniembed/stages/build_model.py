"""Stage ``build_model``: build the tiny Qwen2-VL of the embedded default, offline.

    python -m uniembed.stages.build_model [--config-dir config] model=tiny paths.resources=resources

Trains the tokenizer on the synthetic world's corpus, builds a randomly initialised model of the
real class and saves model + processor with ``save_pretrained`` into ``model.path``.
"""
from __future__ import annotations

import logging
import sys

from omegaconf import OmegaConf

from ..config import stage_config
from ..data.synthetic.world import corpus
from ..model.tiny import build_tiny_model

log = logging.getLogger("uniembed.build_model")


def run(cfg):
    build = cfg.model.build
    if build is None:
        raise SystemExit(f"model {cfg.model.name!r} is a checkpoint at {cfg.model.path}: nothing to build")
    params = OmegaConf.to_container(build)
    path = build_tiny_model(cfg.model.path, corpus(params["seed"]), **params)
    log.info("built %s (%s) at %s", cfg.model.name, params["variant"], path)
    return path


def main(argv=None) -> None:
    run(stage_config(argv, __doc__))


if __name__ == "__main__":
    main(sys.argv[1:])
