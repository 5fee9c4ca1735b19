"""Stage ``ablation_table``: mean ± sd tables of an ablation study (UniME-V2 Tables 4 and 6 layouts).

    python -m uniembed.stages.ablation_table --stage name unime_v2 --stage scores '[".../scores.parquet", ...]' \\
        --stage out_dir results/<run>/ablations/unime_v2

Reads the evaluation of every (variant, seed) of ``recipe.ablations.<name>`` and writes, per table
of the study, ``<table>.md`` and ``<table>.tex``, plus ``values.json`` (every seed's numbers) and
``figure.png`` (one panel per table: bars with ± sd error bars).
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import pyarrow as pa
from omegaconf import OmegaConf

from ..artifacts import atomic_path, read_parquet, write_json
from ..config import stage_config
from ..evaluate.ablation import ablation_table, collect
from ..evaluate.figures import ablation_figure
from ..evaluate.results import SCORES
from ..train.settings import ablation_entry
from .common import require

log = logging.getLogger("uniembed.ablation_table")


def run(cfg) -> dict:
    s = cfg.stage
    require(s, "name", "scores", "out_dir")
    recipe = OmegaConf.to_container(cfg.recipe, resolve=True)
    study = recipe["ablations"][s.name]
    rows = pa.concat_tables([read_parquet(p, SCORES) for p in s.scores]).to_pylist()
    values = collect(rows)
    missing = sorted(set(study["variants"]) - set(values))
    if missing:
        raise SystemExit(f"ablation {s.name!r}: no evaluation for variant(s) {missing}")
    settings = {v: ablation_entry(recipe, s.name, v) for v in study["variants"]}
    out = Path(s.out_dir)
    for table, variants in study["tables"].items():
        caption = f"Ablation {s.name}, {table}: mean ± sd over seeds {study['seeds']}"
        for fmt, suffix in (("markdown", "md"), ("latex", "tex")):
            with atomic_path(out / f"{table}.{suffix}") as tmp:
                tmp.write_text(ablation_table(variants, settings, values, fmt, caption))
    ablation_figure(values, study["tables"], out / "figure.png", f"Ablation {s.name}: mean ± sd over seeds {study['seeds']}")
    write_json({"seeds": study["seeds"], "values": values}, out / "values.json")
    log.info("ablation %s: %d variants x %d seeds -> %s", s.name, len(values), len(study["seeds"]), out)
    return values


def main(argv=None) -> None:
    run(stage_config(argv, __doc__))


if __name__ == "__main__":
    main(sys.argv[1:])
