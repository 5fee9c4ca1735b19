"""Checks the workflow runs when it is parsed, before any job: the recipe is complete for the DAG
it implies, and the base model has an identity the rules can depend on.

A recipe's sections decide the DAG (``workflow/rules/*.smk``): ``pretrain`` chains the progressive
transition, ``mine`` adds candidate mining and then needs ``filter``; ``judge`` adds the
MLLM-as-a-judge between them, and a filter that reads judge scores (UniME-V2's rule, or U-MARVEL's
with ``score_column: score``) needs it. A missing section fails here, naming it, not hours later
inside the stage that reads it.
"""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf


class RecipeError(ValueError):
    """A recipe that cannot drive the DAG it implies."""


def _needs_judge_scores(filter_cfg) -> bool:
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
        for key in ("judge", "filter"):
            if key in recipe:
                raise RecipeError(f"{where} has a `{key}` section but no `mine` section: {key} works on mined candidates")
        return
    if recipe.mine.source not in sources:
        raise RecipeError(f"{where}: mine.source = {recipe.mine.source!r} is not a source of data {cfg.data.name!r} "
                          f"(has {sorted(sources)})")
    if "filter" not in recipe:
        raise RecipeError(f"{where} has a `mine` section, so the DAG filters the mined candidates into hard "
                          f"negatives: add a `filter` section (strategy unime_v2 or umarvel; see config/recipe/tiny.yaml)")
    if _needs_judge_scores(recipe.filter) and "judge" not in recipe:
        raise RecipeError(f"{where}: filter strategy {recipe.filter.strategy!r} reads judge scores, but the recipe "
                          f"has no `judge` section: add one (see config/recipe/tiny.yaml), or filter on similarity "
                          f"(strategy umarvel, params.score_column: similarity)")


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
