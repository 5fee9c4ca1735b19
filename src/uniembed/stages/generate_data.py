"""Stage ``generate_data``: write the embedded default's synthetic world in the public formats.

    python -m uniembed.stages.generate_data [--config-dir config] data=synthetic paths.resources=resources

Writes ``data.root`` (M-BEIR layout, MMEB rows, NLI CSV, caption TSV, ground truth, manifest).
"""
from __future__ import annotations

import logging
import sys

from omegaconf import OmegaConf

from ..artifacts import atomic_path
from ..config import stage_config
from ..data.synthetic import generate_synthetic

log = logging.getLogger("uniembed.generate_data")


def run(cfg) -> dict:
    generator = cfg.data.generator
    if generator is None:
        raise SystemExit(f"data config {cfg.data.name!r} has no generator: it reads existing data at {cfg.data.root}")
    sizes = OmegaConf.to_container(generator.sizes) if generator.sizes is not None else None
    with atomic_path(cfg.data.root, directory=True) as tmp:  # all or nothing: no stale or partial files
        manifest = generate_synthetic(tmp, seed=generator.seed, sizes=sizes)
    log.info("generated synthetic data (seed %s) in %s", generator.seed, cfg.data.root)
    return manifest


def main(argv=None) -> None:
    run(stage_config(argv, __doc__))


if __name__ == "__main__":
    main(sys.argv[1:])
