"""Stage ``train``: every training rule's entry point (progressive transition, hard-negative training).

    python -m uniembed.stages.train --stage section pretrain --stage name nli --stage model_dir PREV \\
        --stage curated_dir DIR --stage out_dir DIR --stage checkpoint_dir DIR --stage log_dir DIR \\
        [--stage hard_negatives results/<run>/mining/filters/<name>/hard_negatives.parquet] [--stage retrieval mined.parquet]

Trains LoRA on ``stage.model_dir`` with the settings of ``recipe.<section>.<name>`` — one stage of
U-MARVEL's progressive transition (``section: pretrain``, §3.1.3), one hard-negative objective
(``section: train_hn``: U-MARVEL §3.2.2 ``info_nce`` with filtered negatives, UniME-V2's
``soft_label``), or one variant of an ablation study (``section: ablations``, ``name:
<study>/<variant>``, with ``--stage seed N``), U-MARVEL's distillation (``section: distill``, ``name:
distill``, on the teacher table of ``distill_data`` as ``--stage hard_negatives``), identity training (``section:
visme``, ``name: identity``, with ``--stage seed N``: VisME, on the identity split's own look-alike negatives), an
object embedder (``section: objembed``, ``name: objects``, with ``--stage seed N``: ObjEmbed, ``curated_dir`` = the
region set's training tables), or one generative reranker (``section: rerank``:
U-MARVEL's ``pointwise``, UniME-V2's ``pair_list``, on ``--stage retrieval``, the mined table) —
on the curated source it names, and writes ``out_dir/adapter`` +
``out_dir/model`` (merged) + ``training_summary.json``. Rerunning resumes from
``checkpoint_dir``; under torchrun each process trains its shard of every global batch (DDP).
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from omegaconf import OmegaConf

from ..config import stage_config
from ..embed.embedder import EmbeddingMode
from ..train.settings import ablation_entry, study_variants
from ..train.objectives import objective_task
from ..train.trainer import TrainSettings, train_contrastive, train_objects, train_reranker
from .common import loader_settings, require

log = logging.getLogger("uniembed.train")
SECTIONS = {
    "pretrain": lambda recipe: recipe["pretrain"]["stages"],
    "train_hn": lambda recipe: recipe["train_hn"]["objectives"],
    "ablations": lambda recipe: {f"{study}/{variant}": entry for study, spec in recipe["ablations"].items()
                                 for variant in study_variants(recipe, study)
                                 if (entry := ablation_entry(recipe, study, variant)) is not None},
    "rerank": lambda recipe: recipe["rerank"]["rerankers"],
    "distill": lambda recipe: {"distill": recipe["distill"]["train"]},
    "visme": lambda recipe: _identity_training(recipe),
    "objembed": lambda recipe: {"objects": {k: v for k, v in recipe["objembed"]["train"].items()
                                            if k not in ("from", "seeds")}},
}



def _identity_training(recipe: dict) -> dict:
    """``recipe.visme.train`` as the one entry ``identity`` (its ``from`` and ``seeds`` are the workflow's)."""
    train = (recipe.get("visme") or {}).get("train")
    return {"identity": {k: v for k, v in train.items() if k not in ("from", "seeds")}} if train else {}


def stage_settings(cfg, section: str, name: str) -> tuple[str, TrainSettings]:
    """(curated source, settings) of ``recipe.<section>.<name>``; errors name the recipe key."""
    if section not in SECTIONS or section not in cfg.recipe:
        raise SystemExit(f"stage.section must name a training section of recipe {cfg.recipe.name!r} "
                         f"({[s for s in SECTIONS if s in cfg.recipe]}), got {section!r}")
    entries = SECTIONS[section](OmegaConf.to_container(cfg.recipe, resolve=True))
    if name not in entries:
        raise SystemExit(f"unknown {section} entry {name!r}; recipe {cfg.recipe.name!r} defines {list(entries)}")
    params = dict(entries[name])
    source = params.pop("source", None)   # objembed trains on a region set (the rule passes its tables)
    params.pop("negatives", None)  # train_hn: which filter's hard negatives (the rule passes the file)
    try:
        settings = TrainSettings.from_dict({"seed": cfg.recipe.seed, **params})
    except (TypeError, ValueError) as exc:
        raise SystemExit(f"recipe.{section}.{name}: {exc}") from None
    if cfg.stage.get("seed") is not None:  # an ablation's repetition
        settings.seed = int(cfg.stage.seed)
    return source, settings


def run(cfg) -> dict:
    s = cfg.stage
    require(s, "section", "name", "model_dir", "curated_dir", "out_dir", "checkpoint_dir", "log_dir")
    source, settings = stage_settings(cfg, s.section, s.name)
    log.info("train %s.%s on %s from %s: %s", s.section, s.name, source, s.model_dir, settings)
    if objective_task(settings.objective["name"]) == "objects":
        summary = train_objects(settings, base_model=s.model_dir, region_dir=s.curated_dir, out_dir=s.out_dir,
                                checkpoint_dir=s.checkpoint_dir, log_dir=s.log_dir, device=cfg.recipe.device,
                                progress=s.progress, loader=loader_settings(cfg))
        log.info("train %s.%s done: %d steps on %d images", s.section, s.name, summary["step"], summary["num_images"])
        return summary
    if objective_task(settings.objective["name"]) == "rerank":
        require(s, "retrieval")
        summary = train_reranker(settings, base_model=s.model_dir, curated_dir=Path(s.curated_dir) / source,
                                 retrieval=s.retrieval, out_dir=s.out_dir, checkpoint_dir=s.checkpoint_dir,
                                 log_dir=s.log_dir, device=cfg.recipe.device, progress=s.progress,
                                 loader=loader_settings(cfg))
        log.info("train %s.%s done: %d steps, dropped queries %s", s.section, s.name, summary["step"],
                 summary.get("dropped_queries"))
        return summary
    summary = train_contrastive(
        settings, base_model=s.model_dir, curated_dir=Path(s.curated_dir) / source, out_dir=s.out_dir,
        checkpoint_dir=s.checkpoint_dir, log_dir=s.log_dir, hard_negatives=s.hard_negatives or None,
        mode=EmbeddingMode(**OmegaConf.to_container(cfg.recipe.embedding)), device=cfg.recipe.device,
        progress=s.progress, loader=loader_settings(cfg))
    log.info("train %s.%s done: %d steps, final temperature %.4f, dropped queries %s", s.section, s.name,
             summary["step"], summary.get("final_temperature", float("nan")), summary.get("dropped_queries"))
    return summary


def main(argv=None) -> None:
    run(stage_config(argv, __doc__))


if __name__ == "__main__":
    main(sys.argv[1:])
