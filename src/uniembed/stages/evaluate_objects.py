"""Stage ``evaluate_objects``: ObjEmbed's evaluation (seed 002 §4) of the object embedders of ``recipe.objembed``
against the object embedder before training and the run's whole-image embedders.

    python -m uniembed.stages.evaluate_objects --stage regions_dir results/<run>/regions/objects \\
        --stage model_dir DIR --stage models '{"objembed_seed0": DIR, ...}' --stage baselines '{"hn_umarvel": DIR}' \\
        --stage out_dir results/<run>/tables

On the region set's evaluation tables (``regions_dir/eval``): referring-expression grounding, local image retrieval
and global retrieval (:mod:`uniembed.evaluate.objects`) of the object embedder made on ``model_dir`` before training
(heads from the first training seed, LoRA zero) and of each trained one; the whole-image embedders on the same
local-retrieval queries; the time per image at ``recipe.objembed.timing_proposals`` proposals. Writes
``objects_scores.parquet`` (long rows, :mod:`uniembed.evaluate.object_tables`), ``objects_grounding.parquet`` (one row
per expression and model), ``objects.md`` / ``.tex`` (the tables) and ``objects.json`` (training effect, timing).
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..artifacts import atomic_path, write_json, write_parquet
from ..config import stage_config
from ..embed.objects import ObjectEmbedder
from ..evaluate.object_tables import GROUNDING_SCHEMA, SCORES_SCHEMA, objects_table, score_rows, timing_table, training_effect, training_effect_table
from ..evaluate.objects import (EvalImage, Expression, LocalQuery, encode_images, global_retrieval, grounding,
                                local_gallery, local_retrieval_scores, recall, relevant_columns, time_per_image,
                                time_whole_image, whole_image_scores)
from .common import load_embedder, require

log = logging.getLogger("uniembed.evaluate_objects")
BEFORE = "objembed_before"
#: the world's text-to-image instruction (its M-BEIR task 0), which the whole-image embedders were trained with
TEXT_TO_IMAGE = "Find the picture that matches this caption of a shape."
def load_eval(regions_dir: Path) -> tuple[list[EvalImage], list[Expression], list[LocalQuery]]:
    eval_dir = regions_dir / "eval"
    images = [EvalImage(r["image_id"], r["image_path"], np.array(r["proposals"], dtype=np.float32).reshape(-1, 4),
                        r["short_caption"], r["long_caption"], bool(r["local_gallery"]))
              for r in pq.read_table(eval_dir / "images.parquet").to_pylist()]
    expressions = [Expression(r["object_id"], r["image_id"], r["phrase"], tuple(r["box"]))
                   for r in pq.read_table(eval_dir / "objects.parquet").to_pylist()]
    queries = [LocalQuery(r["query_id"], r["text"], r["image_id"])
               for r in pq.read_table(eval_dir / "local_queries.parquet").to_pylist()]
    if not expressions or not queries:
        raise SystemExit(f"{eval_dir}: the evaluation needs grounding expressions and local-retrieval queries; found "
                         f"{len(expressions)} and {len(queries)}")
    return images, expressions, queries


def evaluate_object_embedder(embedder: ObjectEmbedder, images, expressions, queries, batch_size: int):
    encoded = encode_images(embedder, images, batch_size)
    found = grounding(embedder, images, encoded, expressions)
    gallery = local_gallery(images)
    local = local_retrieval_scores(embedder, encoded.subset(gallery), queries)
    results = {"grounding": {"accuracy@0.5": found["accuracy@0.5"], "chance": found["chance"]},
               "local": recall(local, relevant_columns([images[n] for n in gallery], queries))}
    results.update({f"global_{name}": value for name, value in global_retrieval(embedder, images, encoded).items()})
    return results, found["rows"]


def run(cfg) -> dict:
    s = cfg.stage
    require(s, "regions_dir", "model_dir", "models", "baselines", "out_dir")
    spec, out = cfg.recipe.objembed, Path(s.out_dir)
    regions_dir = Path(s.regions_dir)
    images, expressions, queries = load_eval(regions_dir)
    trained, baselines = json.loads(s.models), json.loads(s.baselines)
    device = cfg.recipe.device
    rows, grounding_rows, timing = [], [], []
    models = {BEFORE: None, **trained}
    for tag, model_dir in models.items():
        embedder = (ObjectEmbedder.from_base(s.model_dir, roi_size=spec.train.objective.get("roi_size", 7),
                                             seed=int(spec.train.seeds[0]), device=device)
                    if model_dir is None else ObjectEmbedder.from_pretrained(Path(model_dir) / "model", device=device))
        results, per_expression = evaluate_object_embedder(embedder, images, expressions, queries, spec.batch_size)
        rows += score_rows(tag, "objembed", results)
        grounding_rows += [{"model": tag, **r} for r in per_expression]
        log.info("%s: %s", tag, results)
        if tag == next(iter(trained)):
            batch = images[:spec.batch_size]
            per_image = time_per_image(embedder, batch, list(spec.timing_proposals))
            first = per_image[min(per_image)]
            timing += [{"what": tag, "proposals": n, "ms_per_image": ms, "ratio": ms / first} for n, ms in per_image.items()]
    for tag, model_dir in baselines.items():
        embedder = load_embedder(cfg, model_dir)
        gallery = [images[n] for n in local_gallery(images)]
        scores = whole_image_scores(embedder, gallery, queries, TEXT_TO_IMAGE, cfg.recipe.evaluate.batch_size)
        rows += score_rows(tag, "whole-image", {"local": recall(scores, relevant_columns(gallery, queries))})
        ms = time_whole_image(embedder, images[:spec.batch_size])
        timing.append({"what": f"{tag} (whole image)", "proposals": None, "ms_per_image": ms,
                       "ratio": ms / timing[0]["ms_per_image"]})
    effect = training_effect(rows, BEFORE, list(trained), list(baselines))
    write_parquet(pa.Table.from_pylist(rows, SCORES_SCHEMA), out / "objects_scores.parquet")
    write_parquet(pa.Table.from_pylist(grounding_rows, GROUNDING_SCHEMA), out / "objects_grounding.parquet")
    for fmt, suffix in (("markdown", "md"), ("latex", "tex")):
        with atomic_path(out / f"objects.{suffix}") as tmp:
            tmp.write_text("\n".join([objects_table(rows, fmt), training_effect_table(effect, BEFORE, fmt),
                                      timing_table(timing, fmt)]))
    summary = {"images": len(images), "expressions": len(expressions), "local_queries": len(queries),
               "effect": effect, "timing": timing}
    write_json(summary, out / "objects.json")
    return summary


def main(argv=None) -> None:
    run(stage_config(argv, __doc__))


if __name__ == "__main__":
    main(sys.argv[1:])
