"""Stage configuration: Hydra composes model / data / recipe groups from ``config/``.

The Snakemake config (``config/config.yaml``) chooses the experiment (one option per group) and
the paths; every stage entry point receives the same choices as Hydra overrides, so each
parameter has one home: its group file. Composition is strict: overriding a key that does not
exist fails with Hydra's message naming the key.

How the workflow hands a stage its configuration: the run's Hydra overrides (group choices,
``hydra_overrides``) travel in the environment variable ``UNIEMBED_OVERRIDES`` (a JSON list) and
the config directory in ``UNIEMBED_CONFIG_DIR``; per-invocation arguments (paths, a wildcard) are
``--stage KEY VALUE`` pairs taken verbatim, never parsed by Hydra, so any path (spaces, quotes,
shell metacharacters) arrives unchanged. Keeping the overrides out of the rule's command lets
each rule declare, as its params, only the configuration it depends on (``rule_settings`` in
``workflow/rules/common.smk``): a change to ``recipe.judge`` reruns the judge and what follows.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
from pathlib import Path
from typing import Sequence

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

PRIMARY = "stage"
CONFIG_DIR_ENV, OVERRIDES_ENV = "UNIEMBED_CONFIG_DIR", "UNIEMBED_OVERRIDES"


def compose_config(overrides: Sequence[str] = (), config_dir: str | os.PathLike | None = None) -> DictConfig:
    """Compose ``<config_dir>/stage.yaml`` with ``overrides`` (``group=option`` or ``key=value``)."""
    config_dir = Path(config_dir or os.environ.get(CONFIG_DIR_ENV, "config")).resolve()
    if not (config_dir / f"{PRIMARY}.yaml").is_file():
        raise FileNotFoundError(f"{config_dir}/{PRIMARY}.yaml not found: pass --config-dir pointing at the project's config/")
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        cfg = compose(config_name=PRIMARY, overrides=list(overrides))
    OmegaConf.resolve(cfg)
    return cfg


def experiment_overrides(experiment: dict, resources: str, extra: Sequence[str] = ()) -> list[str]:
    """Hydra overrides for a Snakemake experiment block: group choices, resource path, extras."""
    return [f"{group}={option}" for group, option in experiment.items()] + [f"paths.resources={hydra_quote(resources)}", *extra]


def hydra_quote(value: str) -> str:
    """``value`` as a Hydra override value that parses back to exactly ``value``: a single-quoted
    string with its quotes (and backslashes before them) escaped. OmegaConf interpolation (``${``)
    cannot be escaped through a chain of interpolations, so a value holding it is refused."""
    value = str(value)
    if "${" in value:
        raise ValueError(f"{value!r}: a path may not contain '${{' (OmegaConf interpolation)")
    escaped = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", value)
    escaped = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, escaped)
    return f"'{escaped}'"


def environment_overrides() -> list[str]:
    """The Hydra overrides the workflow passes in ``UNIEMBED_OVERRIDES`` (empty when unset)."""
    raw = os.environ.get(OVERRIDES_ENV)
    if not raw:
        return []
    overrides = json.loads(raw)
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise SystemExit(f"{OVERRIDES_ENV} must be a JSON list of Hydra override strings, got {raw!r}")
    return overrides


def set_stage_arguments(cfg: DictConfig, pairs: Sequence[Sequence[str]]) -> None:
    """Put ``--stage KEY VALUE`` pairs into ``cfg.stage`` verbatim (a list-valued key takes a JSON list)."""
    for key, value in pairs:
        if key not in cfg.stage:
            raise SystemExit(f"--stage {key}: unknown stage argument; config/stage.yaml defines {sorted(cfg.stage)}")
        if OmegaConf.is_list(cfg.stage[key]):
            value = json.loads(value)
            if not isinstance(value, list):
                raise SystemExit(f"--stage {key} expects a JSON list, got {value!r}")
        cfg.stage[key] = value


def stage_config(argv: Sequence[str] | None = None, description: str = "") -> DictConfig:
    """Parse ``[--config-dir DIR] [overrides...]`` for a stage entry point and set up logging."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config-dir", default=None, help="directory holding stage.yaml and the groups")
    parser.add_argument("--stage", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                        help="a per-invocation argument (stage.KEY), taken verbatim: paths need no escaping")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data=synthetic data.image_workers=2")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = compose_config([*environment_overrides(), *args.overrides], args.config_dir)
    from .config_schema import ConfigTypeError, validate_groups
    try:
        validate_groups(cfg)
    except ConfigTypeError as exc:
        raise SystemExit(f"invalid configuration: {exc}") from None
    set_stage_arguments(cfg, args.stage)
    return cfg
