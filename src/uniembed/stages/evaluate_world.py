"""Stage ``evaluate_world``: one model (base, or base + adapter) on a suite of in-memory tasks of the synthetic world.

    python -m uniembed.stages.evaluate_world stage.suite=mieb|identity stage.tag=zero_shot stage.out_dir=DIR
        [stage.model_dir=...] [stage.adapter_dir=...]

* ``mieb``: the eight MIEB-style tasks of seven categories (:mod:`uniembed.evaluate.mieb.suite`; the numbers mteb
  computes for the same local tasks), written as ``mieb.parquet`` / ``.csv`` and ``mieb.md`` / ``.tex`` (MIEB
  Table 2 layout, then one row per task);
* ``identity``: VisME's four identity meta-tasks (:mod:`uniembed.evaluate.identity` on
  :func:`uniembed.data.synthetic.identity_tasks.build_tasks`), written as ``identity.parquet`` / ``.csv`` and
  ``identity.md`` / ``.tex`` (VisME Table 6 layout).

The rows are the evaluation schema (benchmark ``mieb`` / ``visme``).
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from ..config import stage_config
from ..data.synthetic.identity_tasks import build_tasks
from ..evaluate.identity import evaluate_identity
from ..evaluate.mieb.suite import evaluate_world
from .common import load_embedder, require
from .evaluate import write_outputs

log = logging.getLogger("uniembed.evaluate_world")

SUITES = {"mieb": evaluate_world, "identity": lambda embedder, tag: evaluate_identity(embedder, build_tasks(), tag)}


def run(cfg) -> list[dict]:
    s = cfg.stage
    require(s, "suite", "tag", "out_dir")
    if s.suite not in SUITES:
        raise SystemExit(f"stage.suite = {s.suite!r}: expected one of {sorted(SUITES)}")
    rows = SUITES[s.suite](load_embedder(cfg, s.model_dir or cfg.model.path, s.adapter_dir), s.tag)
    for row in rows:
        log.info("%s %s: %s %.1f", row["setting"], row["dataset"], row["metric"], row["value"])
    write_outputs(rows, Path(s.out_dir), s.tag, scores=s.suite, tables=s.suite)
    return rows


def main(argv=None) -> None:
    rows = run(stage_config(argv, __doc__))
    log.info("evaluated %d rows", len(rows))


if __name__ == "__main__":
    main(sys.argv[1:])
