"""Stage ``run_manifest``: record what made a run directory (base model, data, recipe, code).

    python -m uniembed.stages.run_manifest [--config-dir config] --stage out_dir results/<run>

Writes ``<out_dir>/run_manifest.json``: the composed model, data and recipe configuration, the
base model's identity (config; files' sizes and times for a checkpoint on disk) and the code
version. The workflow reruns this rule, and through their params every rule that depends on what
changed, whenever one of them changes, so a run directory never mixes outputs of two setups.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from omegaconf import OmegaConf

from ..artifacts import write_json
from ..config import stage_config
from ..provenance import code_version
from ..workflow_checks import model_identity
from .common import require

log = logging.getLogger("uniembed.run_manifest")


def run(cfg) -> dict:
    require(cfg.stage, "out_dir")
    manifest = {
        "base_model": model_identity(cfg.model),
        "data": OmegaConf.to_container(cfg.data, resolve=True),
        "recipe": OmegaConf.to_container(cfg.recipe, resolve=True),
        "code_version": code_version("uniembed"),
    }
    path = write_json(manifest, Path(cfg.stage.out_dir) / "run_manifest.json")
    log.info("run manifest -> %s (model %s, data %s, recipe %s)", path, cfg.model.name, cfg.data.name, cfg.recipe.name)
    return manifest


def main(argv=None) -> None:
    run(stage_config(argv, __doc__))


if __name__ == "__main__":
    main(sys.argv[1:])
