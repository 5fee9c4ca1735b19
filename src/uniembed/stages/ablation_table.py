"""Stage ``ablation_table``: mean ± sd tables of an ablation study (UniME-V2 Tables 4 and 6 layouts).

    python -m uniembed.stages.ablation_table --stage name unime_v2 --stage scores '[".../scores.parquet", ...]' \\
        --stage out_dir results/<run>/ablations/unime_v2

Reads the evaluation of every (variant, seed) of ``recipe.ablations.<name>`` (a ``model`` variant, the
run's own evaluated model named in ``--stage shared '{"variant": "eval/<tag>/scores.parquet"}'``, is
one model: its numbers stand at every seed, so its sd is 0 by construction) and writes, per table
of the study, ``<table>.md`` and ``<table>.tex``, plus ``values.json`` (every seed's numbers) and
``figure.png`` (one panel per table: bars with ± sd error bars). A judge-quality study (``judge_aucs``; its
simulated judges' and the run's judge's filter directories in ``--stage quality '{"<auc>" | "real": [dir, ...]}'``)
also writes ``judge_quality.{md,tex}`` and draws ``figure.png`` against the judge's ROC-AUC instead. With the
trained repetitions' ``training_summary.json`` in ``--stage summaries``, ``training_curves.png``: each variant's loss
per step, averaged over seeds (a judge-quality study: one line per judge).
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
from ..evaluate.figures import ablation_figure, judge_study_figure, seed_mean_curves_figure
from ..evaluate.judge_study import REAL, first_wins, judge_study_table, read_quality, wins_markdown
from ..evaluate.results import SCORES
from ..train.settings import (ablation_entry, judged_variant, split_judged_variant, study_variants,
                              trains_on_judged_negatives, variant_kind)
from .common import require

log = logging.getLogger("uniembed.ablation_table")


def _stage(spec: dict, kind: str) -> str:
    """What a variant of a stage-chain study is (U-MARVEL Table 13 rows)."""
    if kind == "model":
        return f"{spec['model']} (shared start, one model)"
    if kind == "distill":
        return f"+ distillation (from {spec['distill_from']})"
    return f"+ hard negatives ({spec['base']})"


def judge_study(recipe: dict, name: str, values: dict, dirs: dict, out: Path, title: str) -> dict:
    """The judge-quality study (``judge_aucs``): ``judge_quality.{md,tex}`` and ``figure.png`` against the judge's
    ROC-AUC (uniembed.evaluate.judge_study); returns the judges' measures and the first winning AUCs."""
    study = recipe["ablations"][name]
    judged = [v for v in study["variants"] if trains_on_judged_negatives(recipe, name, v)]
    baseline = next((v for v in study["variants"] if v not in judged and variant_kind(study["variants"][v]) == "train_hn"), None)
    quality = read_quality(dirs)
    names = {level: {v: v if level == REAL else judged_variant(v, float(level)) for v in judged} for level in quality}
    wins = first_wins(values, quality, names, judged, baseline)
    caption = f"What judge quality buys ({name}): mean ± sd over seeds {study['seeds']}"
    for fmt, suffix in (("markdown", "md"), ("latex", "tex")):
        with atomic_path(out / f"judge_quality.{suffix}") as tmp:
            text = judge_study_table(values, quality, names, judged, baseline, fmt, caption)
            tmp.write_text(text + ("\n" + wins_markdown(wins, judged[-1]) if fmt == "markdown" else ""))
    judge_study_figure(values, quality, names, judged, baseline, out / "figure.png", title)
    return {"judge_quality": quality, "first_wins": wins}


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
    missing = sorted(set(study_variants(recipe, s.name)) - set(values))
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
    title = f"Ablation {s.name}: mean ± sd over seeds {study['seeds']}"
    extra = judge_study(recipe, s.name, values, json.loads(s.quality), out, title) if study.get("judge_aucs") else {}
    if not extra:
        ablation_figure(values, study["tables"], out / "figure.png", title)
    curves: dict[str, dict[str, list]] = {}
    for path in s.get("summaries") or []:   # <models>/ablations/<study>/<variant>/seed<seed>/training_summary.json
        variant, auc = split_judged_variant(Path(path).parent.parent.name)
        label = "run's judge" if study.get("judge_aucs") and auc is None else f"ROC-AUC {auc:g}" if auc else variant
        curves.setdefault(variant, {}).setdefault(label, []).append(json.loads(Path(path).read_text())["history"])
    seed_mean_curves_figure(curves, out / "training_curves.png", f"Ablation {s.name}: training loss, mean over seeds")
    write_json({"seeds": study["seeds"], "values": values, **extra}, out / "values.json")
    log.info("ablation %s: %d variants x %d seeds -> %s", s.name, len(values), len(study["seeds"]), out)
    return values


def main(argv=None) -> None:
    run(stage_config(argv, __doc__))


if __name__ == "__main__":
    main(sys.argv[1:])
