"""Checks the workflow runs when it is parsed, before any job: the recipe is complete for the DAG
it implies, and the base model has an identity the rules can depend on.

A recipe's sections decide the DAG (``workflow/rules/*.smk``): ``pretrain`` chains the progressive
transition, ``mine`` adds candidate mining and then needs named ``filters``; ``judge`` adds the
MLLM-as-a-judge between them, and a filter that reads judge scores (UniME-V2's rule, or U-MARVEL's
with ``score_column: score``) needs it; ``train_hn`` trains one model per objective on the
negatives of the filter it names. A missing section fails here, naming it, not hours later inside
the stage that reads it.
"""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf


class RecipeError(ValueError):
    """A recipe that cannot drive the DAG it implies."""


def needs_judge_scores(filter_cfg) -> bool:
    """Whether a filter reads the judge's scores (UniME-V2's alpha rule, or U-MARVEL's on ``score``)."""
    if filter_cfg.strategy == "unime_v2":
        return True
    return (filter_cfg.get("params") or {}).get("score_column", "similarity") == "score"


def check_recipe(cfg: DictConfig) -> None:
    """Raise :class:`RecipeError` naming the first missing or inconsistent section of ``cfg.recipe``."""
    recipe, name = cfg.recipe, cfg.recipe.get("name", "?")
    sources = set(cfg.data.sources)
    where = f"recipe {name!r} (config/recipe/{name}.yaml)"
    for key in ("embedding", "evaluate"):
        if key not in recipe:
            raise RecipeError(f"{where} has no `{key}` section; every recipe needs one (see config/recipe/tiny.yaml)")
    if "pretrain" in recipe:
        stages = recipe.pretrain.get("stages") or {}
        for stage in recipe.pretrain.get("order") or []:
            if stage not in stages:
                raise RecipeError(f"{where}: pretrain.order names {stage!r} but pretrain.stages has no such entry "
                                  f"(has {sorted(stages)})")
            if stages[stage].get("source") not in sources:
                raise RecipeError(f"{where}: pretrain.stages.{stage}.source = {stages[stage].get('source')!r} is not "
                                  f"a source of data {cfg.data.name!r} (has {sorted(sources)})")
    if "mine" not in recipe:
        for key in ("judge", "filters", "train_hn"):
            if key in recipe:
                raise RecipeError(f"{where} has a `{key}` section but no `mine` section: {key} works on mined candidates")
        return
    if recipe.mine.source not in sources:
        raise RecipeError(f"{where}: mine.source = {recipe.mine.source!r} is not a source of data {cfg.data.name!r} "
                          f"(has {sorted(sources)})")
    filters = recipe.get("filters") or {}
    if not filters:
        raise RecipeError(f"{where} has a `mine` section, so the DAG filters the mined candidates into hard "
                          f"negatives: add a `filters` section (named filters with strategy unime_v2 or umarvel; "
                          f"see config/recipe/tiny.yaml)")
    for name, spec in filters.items():
        if needs_judge_scores(spec) and "judge" not in recipe:
            raise RecipeError(f"{where}: filters.{name} (strategy {spec.strategy!r}) reads judge scores, but the "
                              f"recipe has no `judge` section: add one (see config/recipe/tiny.yaml), or filter on "
                              f"similarity (strategy umarvel, params.score_column: similarity)")
    if "judge" in recipe and not any(needs_judge_scores(spec) for spec in filters.values()):
        raise RecipeError(f"{where} has a `judge` section but no filter reads judge scores: remove it, or add a "
                          f"unime_v2 filter")
    for name, spec in ((recipe.get("train_hn") or {}).get("objectives") or {}).items():
        if spec.get("negatives") not in filters:
            raise RecipeError(f"{where}: train_hn.objectives.{name}.negatives = {spec.get('negatives')!r} names no "
                              f"filter (filters: {sorted(filters)})")
        if spec.get("source") != recipe.mine.source:
            raise RecipeError(f"{where}: train_hn.objectives.{name}.source must be the mined source "
                              f"{recipe.mine.source!r}, got {spec.get('source')!r}")


def model_identity(model_cfg: DictConfig) -> dict:
    """What a rule that loads the base model depends on: its config, and for a checkpoint on disk
    (no ``build``) each file's size and modification time, so new weights at the same path rerun
    what was made from the old ones. A model the DAG builds is tracked through its build rule."""
    identity = {"config": OmegaConf.to_container(model_cfg, resolve=True)}
    path = Path(model_cfg.path)
    if model_cfg.get("build") is None and path.is_dir():
        identity["files"] = {p.name: [p.stat().st_size, p.stat().st_mtime_ns]
                             for p in sorted(path.iterdir()) if p.is_file()}
    return identity
