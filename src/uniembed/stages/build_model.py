"""Stage ``build_model``: build the embedded default's tiny model of ``<role>.family``, offline.

    python -m uniembed.stages.build_model [--config-dir config] [--stage role judge_model]

Trains the tokenizer on the synthetic world's corpus, builds a randomly initialised model of the
real class and saves model + processor with ``save_pretrained`` into ``<role>.path`` (``model``: the
embedder's base model; ``judge_model``: the judge's).
"""
from __future__ import annotations

import logging
import sys

from omegaconf import OmegaConf

from ..config import stage_config
from ..data.synthetic.world import corpus
from ..model.tiny import build_tiny_model
from .common import model_section

log = logging.getLogger("uniembed.build_model")


def run(cfg):
    model = model_section(cfg)
    if model.build is None:
        raise SystemExit(f"{cfg.stage.role} {model.name!r} is a checkpoint at {model.path}: nothing to build")
    params = OmegaConf.to_container(model.build)
    path = build_tiny_model(model.path, corpus(params["seed"]), family_name=model.family, **params)
    log.info("built %s (%s) at %s", model.name, model.family, path)
    return path


def main(argv=None) -> None:
    run(stage_config(argv, __doc__))


if __name__ == "__main__":
    main(sys.argv[1:])
