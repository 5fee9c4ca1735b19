"""Stage configuration: Hydra composes model / data / recipe groups from ``config/``.

The Snakemake config (``config/config.yaml``) chooses the experiment (one option per group) and
the paths; every stage entry point receives the same choices as Hydra overrides, so each
parameter has one home: its group file. Composition is strict: overriding a key that does not
exist fails with Hydra's message naming the key.
"""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Sequence

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

PRIMARY = "stage"
DEFAULT_CONFIG_DIR = Path(os.environ.get("UNIEMBED_CONFIG_DIR", "config"))


def compose_config(overrides: Sequence[str] = (), config_dir: str | os.PathLike | None = None) -> DictConfig:
    """Compose ``<config_dir>/stage.yaml`` with ``overrides`` (``group=option`` or ``key=value``)."""
    config_dir = Path(config_dir or DEFAULT_CONFIG_DIR).resolve()
    if not (config_dir / f"{PRIMARY}.yaml").is_file():
        raise FileNotFoundError(f"{config_dir}/{PRIMARY}.yaml not found: pass --config-dir pointing at the project's config/")
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        cfg = compose(config_name=PRIMARY, overrides=list(overrides))
    OmegaConf.resolve(cfg)
    return cfg


def experiment_overrides(experiment: dict, resources: str, extra: Sequence[str] = ()) -> list[str]:
    """Hydra overrides for a Snakemake experiment block: group choices, resource path, extras."""
    return [f"{group}={option}" for group, option in experiment.items()] + [f"paths.resources={resources}", *extra]


def stage_config(argv: Sequence[str] | None = None, description: str = "") -> DictConfig:
    """Parse ``[--config-dir DIR] [overrides...]`` for a stage entry point and set up logging."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config-dir", default=None, help="directory holding stage.yaml and the groups")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data=synthetic data.image_workers=2")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = compose_config(args.overrides, args.config_dir)
    return cfg
