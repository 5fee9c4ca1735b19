"""Stage ``identity_report``: VisME's identity tables for every model tag and the t-SNE of identities.

    python -m uniembed.stages.identity_report stage.scores='[eval/<tag>/identity.parquet, ...]'
        stage.models='{"zero_shot": DIR, "hn_umarvel": DIR}' stage.out_dir=DIR
        [stage.training='{"from": "hn_umarvel", "trained": ["visme_seed0", ...]}']

Writes ``identity.md`` / ``.tex`` (VisME supplement Table 6 layout, one column per tag), ``identity_tsne.png`` (Figure
7: renderings of 40 identities, one panel per model of ``stage.models``, before training first),
``identity_tsne.json`` (each panel's silhouette and k-means NMI against the identities) and ``identity_training.json``
(with ``stage.training``: Recall@1 and mAP@10 per meta-task before and after training for identity, mean and spread
over the seeds; the same as a table at the end of ``identity.md``; null without it).
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pyarrow as pa

from ..artifacts import atomic_path, read_parquet, write_json
from ..config import stage_config
from ..data.synthetic.identity_tasks import identity_samples
from ..embed.embedder import EmbedItem
from ..evaluate.identity_training import training_effect, training_effect_table
from ..evaluate.identity_figures import tsne_figure
from ..evaluate.results import SCORES
from ..evaluate.tables import render_tables
from .common import load_embedder, require

log = logging.getLogger("uniembed.identity_report")


def run(cfg) -> dict:
    s = cfg.stage
    require(s, "scores", "models", "out_dir")
    out = Path(s.out_dir)
    rows = pa.concat_tables([read_parquet(p, SCORES) for p in s.scores]).to_pylist()
    training = json.loads(s.training) if s.get("training") else None
    effect = training_effect(rows, training["from"], training["trained"]) if training else None
    for fmt, suffix in (("markdown", "md"), ("latex", "tex")):
        with atomic_path(out / f"identity.{suffix}") as tmp:
            tmp.write_text(render_tables(rows, fmt, "per model")
                           + ("\n" + training_effect_table(effect, training["from"], fmt) if effect else ""))
    write_json({"training": {**training, "effect": effect} if training else None}, out / "identity_training.json")
    images, labels = identity_samples()
    embeddings = {tag: load_embedder(cfg, model_dir).encode([EmbedItem(None, image=i) for i in images])
                  for tag, model_dir in json.loads(s.models).items()}
    quality = tsne_figure(embeddings, labels, out / "identity_tsne.png", seed=cfg.recipe.seed)
    write_json({"identities": len(set(labels)), "renderings": len(labels), "quality": quality},
               out / "identity_tsne.json")
    log.info("identity clusters: %s", quality)
    return quality


def main(argv=None) -> None:
    run(stage_config(argv, __doc__))


if __name__ == "__main__":
    main(sys.argv[1:])
