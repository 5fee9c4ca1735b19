"""Stage ``ablation_table``: mean ± sd tables of an ablation study (UniME-V2 Tables 4 and 6 layouts).

    python -m uniembed.stages.ablation_table --stage name unime_v2 --stage scores '[".../scores.parquet", ...]' \\
        --stage out_dir results/<run>/ablations/unime_v2

Reads the evaluation of every (variant, seed) of ``recipe.ablations.<name>`` (a ``model`` variant, the
run's own evaluated model named in ``--stage shared '{"variant": "eval/<tag>/scores.parquet"}'``, is
one model: its numbers stand at every seed, so its sd is 0 by construction) and writes, per table
of the study, ``<table>.md`` and ``<table>.tex``, plus ``values.json`` (every seed's numbers) and
``figure.png`` (one panel per table: bars with ± sd error bars).
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pyarrow as pa
from omegaconf import OmegaConf

from ..artifacts import atomic_path, read_parquet, write_json
from ..config import stage_config
from ..evaluate.ablation import ablation_table, ablation_tag, collect
from ..evaluate.figures import ablation_figure
from ..evaluate.results import SCORES
from ..train.settings import ablation_entry, variant_kind
from .common import require

log = logging.getLogger("uniembed.ablation_table")


def _stage(spec: dict, kind: str) -> str:
    """What a variant of a stage-chain study is (U-MARVEL Table 13 rows)."""
    if kind == "model":
        return f"{spec['model']} (shared start, one model)"
    if kind == "distill":
        return f"+ distillation (from {spec['distill_from']})"
    return f"+ hard negatives ({spec['base']})"


def run(cfg) -> dict:
    s = cfg.stage
    require(s, "name", "scores", "out_dir")
    recipe = OmegaConf.to_container(cfg.recipe, resolve=True)
    study = recipe["ablations"][s.name]
    rows = pa.concat_tables([read_parquet(p, SCORES) for p in s.scores]).to_pylist()
    for variant, path in (json.loads(s.shared) if s.get("shared") else {}).items():
        shared = read_parquet(path, SCORES).to_pylist()
        rows += [{**r, "tag": ablation_tag(s.name, variant, seed)} for seed in study["seeds"] for r in shared]
    values = collect(rows)
    missing = sorted(set(study["variants"]) - set(values))
    if missing:
        raise SystemExit(f"ablation {s.name!r}: no evaluation for variant(s) {missing}")
    settings = {v: ablation_entry(recipe, s.name, v) for v in study["variants"]}
    kinds = {v: variant_kind(spec) for v, spec in study["variants"].items()}
    stages = None if set(kinds.values()) == {"train_hn"} else {v: _stage(spec, kinds[v]) for v, spec in study["variants"].items()}
    out = Path(s.out_dir)
    for table, variants in study["tables"].items():
        caption = f"Ablation {s.name}, {table}: mean ± sd over seeds {study['seeds']}"
        for fmt, suffix in (("markdown", "md"), ("latex", "tex")):
            with atomic_path(out / f"{table}.{suffix}") as tmp:
                tmp.write_text(ablation_table(variants, settings, values, fmt, caption, stages))
    ablation_figure(values, study["tables"], out / "figure.png", f"Ablation {s.name}: mean ± sd over seeds {study['seeds']}")
    write_json({"seeds": study["seeds"], "values": values}, out / "values.json")
    log.info("ablation %s: %d variants x %d seeds -> %s", s.name, len(values), len(study["seeds"]), out)
    return values


def main(argv=None) -> None:
    run(stage_config(argv, __doc__))


if __name__ == "__main__":
    main(sys.argv[1:])
