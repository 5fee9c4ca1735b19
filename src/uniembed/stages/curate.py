"""Stage ``curate``: one source (M-BEIR, MMEB, NLI, captions) -> canonical Parquet tables.

    python -m uniembed.stages.curate [--config-dir config] data=synthetic stage.source=mbeir stage.out_dir=DIR

Writes ``queries``, ``candidates``, ``pools``, ``datasets`` and ``quarantine`` Parquet tables and
``summary.json`` (rows in / kept / quarantined per file and reason) into ``stage.out_dir``.
"""
from __future__ import annotations

import logging
import sys

from omegaconf import OmegaConf

from ..config import stage_config
from ..data.curate import finalize
from ..data.readers import FORMATS

log = logging.getLogger("uniembed.curate")


def run(cfg) -> dict:
    if not cfg.stage.out_dir:
        raise SystemExit("stage.out_dir is required")
    return curate_source(cfg, cfg.stage.source, cfg.stage.out_dir, progress=cfg.stage.progress)


def curate_source(cfg, name: str, out_dir, progress: bool = True) -> dict:
    """Curate data source ``name`` of ``cfg.data`` into ``out_dir``; its summary (rows in, kept, quarantined)."""
    sources = cfg.data.sources
    if name not in sources:
        raise SystemExit(f"unknown source {name!r}: data config {cfg.data.name!r} defines {sorted(sources)}")
    spec = OmegaConf.to_container(sources[name])
    spec.pop("declared", None)   # the cost plan's sizes (uniembed.plan), not the reader's
    fmt = spec.pop("format")
    if fmt not in FORMATS:
        raise SystemExit(f"source {name!r}: unknown format {fmt!r}; expected one of {sorted(FORMATS)}")
    log.info("curating source %s (%s) from %s", name, fmt, spec)
    records = FORMATS[fmt](name, **spec)
    curated = finalize(records, validate_images=cfg.data.validate_images,
                       image_workers=cfg.data.image_workers, progress=progress)
    curated.write(out_dir)
    s = curated.summary
    log.info("%s: %d rows in, %d kept, %d quarantined %s -> %s", name, s["rows_in"], s["kept"],
             s["quarantined"], s["reasons"], out_dir)
    return s


def main(argv=None) -> None:
    run(stage_config(argv, __doc__))


if __name__ == "__main__":
    main(sys.argv[1:])
