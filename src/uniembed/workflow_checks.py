"""Checks the workflow runs when it is parsed, before any job: the models are of registered families (and a
checkpoint on disk is of the family and sizes its section says), the recipe is complete for the DAG it
implies, and the base model has an identity the rules can depend on.

A recipe's sections decide the DAG (``workflow/rules/*.smk``): ``pretrain`` chains the progressive
transition, ``mine`` adds candidate mining and then needs named ``filters``; ``judge`` adds the
MLLM-as-a-judge between them, and a filter that reads judge scores (UniME-V2's rule, or U-MARVEL's
with ``score_column: score``) needs it; ``train_hn`` trains one model per objective on the
negatives of the filter it names. A missing section fails here, naming it, not hours later inside
the stage that reads it.
"""
from __future__ import annotations

import json
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
    check_model_families(cfg)
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
    if "judge" in recipe:
        _check_judge_backend(cfg, where)
    _check_judge_studies(cfg, where)
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
    for key, entry, stored_key, stored in _negative_counts(recipe):
        asked = (entry.get("objective") or {}).get("num_negatives", 0)
        if stored is not None and asked > stored:
            raise RecipeError(f"{where}: {key}.objective.num_negatives = {asked} is more than the {stored} negatives "
                              f"per query that {stored_key} stores: lower the one or raise the other")
    for name, spec in ((recipe.get("rerank") or {}).get("rerankers") or {}).items():
        negatives = spec.get("negatives")
        if negatives is not None and negatives not in filters:
            raise RecipeError(f"{where}: rerank.rerankers.{name}.negatives = {negatives!r} names no filter "
                              f"(filters: {sorted(filters)})")
        if spec.objective.name == "pair_list" and negatives is None:
            raise RecipeError(f"{where}: rerank.rerankers.{name} (pair_list, UniME-V2-Reranker) trains on the "
                              f"judge-filtered hard negatives (UniME-V2 eq. 5-6): set its `negatives` to a filter "
                              f"(filters: {sorted(filters)})")


def _check_judge_backend(cfg: DictConfig, where: str) -> None:
    """A known backend; ``simulated`` (scores from the world's truth, a study-only judge) with its settings and
    on the synthetic world's M-BEIR source alone: no other data has a truth to score from."""
    from .config_schema import JUDGE_BACKENDS

    judge = cfg.recipe.judge
    if judge.backend not in JUDGE_BACKENDS:
        raise RecipeError(f"{where}: judge.backend = {judge.backend!r}: expected one of {list(JUDGE_BACKENDS)}")
    if judge.backend != "simulated":
        return
    if not mined_source_has_truth(cfg):
        raise RecipeError(f"{where}: judge.backend = simulated scores pairs from the synthetic world's truth, a "
                          f"study-only judge; data {cfg.data.name!r} (mine.source {cfg.recipe.mine.source!r}) is not "
                          f"the generated world's M-BEIR source: use transformers, vllm_offline or vllm_server")
    if judge.get("simulated") is None:
        raise RecipeError(f"{where}: judge.backend = simulated needs judge.simulated: {{auc: <0.5-1.0>, seed: <int>}}")


def run_model_tags(cfg: DictConfig) -> list[str]:
    """The models a run trains and evaluates, by tag, in DAG order (``zero_shot``, ``pretrain_<stage>``, ``hn_<objective>``,
    ``distill``), each also the name of its stage output; raises :class:`RecipeError` where a recipe key names a
    model (``mine.from``, ``train_hn.from``, ``rerank.recall``, ``distill.from``, an ablation's ``model`` variant,
    ``visme.train.from``, ``visme.models``, ``objembed.train.from``, ``objembed.baselines``) or a
    reranker (``distill.reranker``) the run does not make before it is needed, or a distillation variant without
    ``rerank`` and ``distill``."""
    recipe = cfg.recipe
    mining = "mine" in recipe and recipe.mine.source in set(cfg.data.sources)
    tags = ["zero_shot", *(f"pretrain_{s}" for s in (recipe.pretrain.order if "pretrain" in recipe else []))]
    objectives = list(((recipe.get("train_hn") or {}).get("objectives") or {})) if mining else []

    def known(key: str, value, choices: list[str]) -> None:
        if value not in choices:
            raise RecipeError(f"recipe.{key} = {value!r} is not one of this run's {choices} (models in DAG order, "
                              f"each made before the stage that reads it)")

    if mining and recipe.mine.get("checkpoint") is not None:
        if recipe.mine.get("from") is not None:
            raise RecipeError(f"recipe.mine sets both from = {recipe.mine['from']!r} and checkpoint = "
                              f"{recipe.mine.checkpoint!r}: one embedder mines; set the other to null")
    elif mining:
        known("mine.from", recipe.mine["from"], tags)
    if objectives:
        known("train_hn.from", recipe.train_hn["from"], tags)
    tags += [f"hn_{o}" for o in objectives]
    rerankers = list(((recipe.get("rerank") or {}).get("rerankers") or {})) if mining else []
    if rerankers:
        known("rerank.recall", recipe.rerank.recall, tags)
    distill = bool(rerankers) and bool(recipe.get("distill"))
    if distill:
        known("distill.from", recipe.distill["from"], tags)
        known("distill.reranker", recipe.distill.reranker, rerankers)
        tags.append("distill")
    from .train.settings import variant_kind

    for study, spec in ((recipe.get("ablations") or {}) if objectives else {}).items():
        for variant, vspec in spec.variants.items():
            kind = variant_kind(OmegaConf.to_container(vspec))
            if kind == "model":
                known(f"ablations.{study}.variants.{variant}.model", vspec.model, tags)
            elif kind == "distill" and not distill:
                raise RecipeError(f"recipe.ablations.{study}.variants.{variant}: a distillation variant needs "
                                  f"recipe.rerank (a reranker) and recipe.distill")
    _check_visme(cfg, tags, known)
    objembed = cfg.recipe.get("objembed")
    if objembed:   # ObjEmbed: starts from a model of the run, compared with whole-image embedders of the run
        from .config_objects import check_region_set

        check_region_set(OmegaConf.to_container(recipe, resolve=True), OmegaConf.to_container(cfg.data, resolve=True),
                         RecipeError)
        known("objembed.train.from", objembed.train["from"], tags)
        for tag in objembed.baselines:
            known("objembed.baselines", tag, tags)
    return tags


def _check_visme(cfg: DictConfig, tags: list[str], known) -> None:
    """``recipe.visme``: training for identity starts from a model of the run (one with a learnt temperature when it
    continues it) on a source of the data; the models compared are the run's or the identity-trained ones."""
    visme = cfg.recipe.get("visme") or {}
    train = visme.get("train")
    if train:
        known("visme.train.from", train["from"], tags)
        if train.source not in cfg.data.sources:
            raise RecipeError(f"recipe.visme.train.source = {train.source!r} is not a source of data "
                              f"{cfg.data.name!r} (has {sorted(cfg.data.sources)})")
        if train["from"] == "zero_shot" and train.objective.get("temperature") == "previous":
            raise RecipeError("recipe.visme.train.objective.temperature = 'previous' continues the temperature of "
                              "`from`, but zero_shot was never trained: give a number")
    trained = [f"visme_seed{seed}" for seed in train.seeds] if train else []
    for tag in visme.get("models") or []:
        known("visme.models", tag, tags + trained)


def mined_source_has_truth(cfg: DictConfig) -> bool:
    """Whether the mined source is the synthetic world's M-BEIR source: the only data with a truth (every genuine
    match) to measure a judge against (judge quality) or to simulate one from."""
    source = cfg.data.sources.get(cfg.recipe.mine.source) or {}
    return cfg.data.get("generator") is not None and source.get("format") == "mbeir"


def _check_judge_studies(cfg: DictConfig, where: str) -> None:
    """A study with ``judge_aucs`` (simulated judges) runs on the synthetic world, with a judge section, and has a
    variant that trains on judged negatives (the thing a judge's quality moves)."""
    from .train.settings import trains_on_judged_negatives

    plain = OmegaConf.to_container(cfg.recipe, resolve=True)
    for study, spec in (plain.get("ablations") or {}).items():
        if not spec.get("judge_aucs"):
            continue
        key = f"{where}: ablations.{study}.judge_aucs"
        if not mined_source_has_truth(cfg):
            raise RecipeError(f"{key} simulates judges from the synthetic world's truth (a study-only judge); data "
                              f"{cfg.data.name!r} (mine.source {cfg.recipe.mine.source!r}) is not the generated world's "
                              f"M-BEIR source: remove judge_aucs")
        if "judge" not in plain:
            raise RecipeError(f"{key} needs a `judge` section (the simulated judges judge its subset of queries)")
        judged = [v for v in spec["variants"] if trains_on_judged_negatives(plain, study, v)]
        filters = cfg.recipe.get("filters") or {}
        if not any(needs_judge_scores(filters[ablation_filter(plain, study, v)]) for v in judged):
            raise RecipeError(f"{key}: no variant trains on negatives a judge filters (num_negatives > 0 on a filter "
                              f"that reads judge scores, e.g. unime_v2)")


def ablation_filter(recipe: dict, study: str, variant: str) -> str:
    """The filter whose hard negatives an ablation variant trains on (its base objective's ``negatives``)."""
    from .train.settings import split_judged_variant

    base = recipe["ablations"][study]["variants"][split_judged_variant(variant)[0]]["base"]
    return recipe["train_hn"]["objectives"][base]["negatives"]


def _negative_counts(recipe: DictConfig):
    """(key, training entry, key of the table's size, negatives per query that table stores) of every training
    entry that reads a hard-negative table: train_hn objectives and their ablation variants (a filter's
    table: ``k``, or UniME-V2's max(k, minimum)) and distillation (the teacher table: ``distill.candidates``)."""
    from .mine.schemas import stored_negatives
    from .train.settings import ablation_entry, variant_kind

    plain = OmegaConf.to_container(recipe, resolve=True)
    filters = plain.get("filters") or {}

    def filter_size(filter_name):
        spec = filters.get(filter_name) or {}
        params = spec.get("params") or {}
        size_key = "k, minimum" if spec.get("strategy") == "unime_v2" else "k"
        return f"filters.{filter_name}.params.{size_key}", stored_negatives(spec.get("strategy"), params)

    objectives = (plain.get("train_hn") or {}).get("objectives") or {}
    for name, entry in objectives.items():
        yield (f"train_hn.objectives.{name}", entry, *filter_size(entry.get("negatives")))
    distill = plain.get("distill")
    if distill:
        yield "distill.train", distill["train"], "distill.candidates", distill["candidates"]
    for study, spec in (plain.get("ablations") or {}).items():
        for variant, vspec in spec["variants"].items():
            kind, entry = variant_kind(vspec), ablation_entry(plain, study, variant)
            key = f"ablations.{study}.variants.{variant}"
            if kind == "train_hn" and entry.get("negatives") in filters:
                yield (key, entry, *filter_size(entry["negatives"]))
            elif kind == "distill" and distill:
                yield key, entry, "distill.candidates", distill["candidates"]


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


MODEL_ROLES = ("model", "judge_model")


def check_model_families(cfg: DictConfig) -> None:
    """Each model section's ``family`` is registered (:mod:`uniembed.model.families`), a tiny build's vocabulary
    fits the family's special tokens, and a checkpoint already on disk is of that family and, where the section
    writes its published ``architecture``, of those sizes; RecipeError naming the section, the file and both values."""
    from .model.families import families
    from .model.tokenizer import minimum_vocab_size

    for role in MODEL_ROLES:
        section = cfg.get(role)
        if section is None:
            continue
        where = f"{role}: {section.get('name')!r}"
        known = families()
        if section.family not in known:
            raise RecipeError(f"{where}: unknown model family {section.family!r}; registered families: "
                              f"{', '.join(sorted(known))}")
        chosen = known[section.family]
        build = section.get("build")
        if build is not None and build.vocab_size < minimum_vocab_size(chosen):
            raise RecipeError(f"{where}: build.vocab_size = {build.vocab_size} is too small for {chosen.title}'s "
                              f"special tokens: at least {minimum_vocab_size(chosen)}")
        config_file = Path(section.path) / "config.json"
        if build is None and config_file.is_file():
            _check_checkpoint(where, section, chosen, config_file)
        instruct_sources(cfg, role)
    miner = (cfg.recipe.get("mine") or {}).get("checkpoint")
    if miner is not None and (Path(miner) / "config.json").is_file():
        model_type = json.loads((Path(miner) / "config.json").read_text()).get("model_type")
        if model_type not in families():
            raise RecipeError(f"recipe.mine.checkpoint {miner!r}: config.json has model_type {model_type!r}, not a "
                              f"registered family ({', '.join(sorted(families()))})")
    base = (cfg.recipe.get("rerank") or {}).get("base", "judge_model")
    if base not in MODEL_ROLES:
        raise RecipeError(f"recipe.rerank.base = {base!r}: expected one of {list(MODEL_ROLES)}")


def instruct_sources(cfg: DictConfig, role: str) -> list[str]:
    """The data sources ``<role>.instruct`` curates (its default if unset; [] without an instruct section);
    RecipeError if one is not a source of the run's data."""
    section = cfg[role].get("instruct")
    if section is None:
        return []
    from .instruct.settings import InstructSettings

    sources = InstructSettings(**OmegaConf.to_container(section, resolve=True)).sources
    unknown = [s for s in sources if s not in cfg.data.sources]
    if unknown:
        raise RecipeError(f"{role}.instruct.sources names {unknown}, which are not sources of data "
                          f"{cfg.data.name!r}: expected some of {list(cfg.data.sources)}")
    return sources


def _check_checkpoint(where: str, section, chosen, config_file: Path) -> None:
    saved = json.loads(config_file.read_text())
    if saved.get("model_type") != chosen.model_type:
        raise RecipeError(f"{where} says family {chosen.model_type!r} ({chosen.title}), but the checkpoint's "
                          f"{config_file} has model_type {saved.get('model_type')!r} "
                          f"(architectures {saved.get('architectures')})")
    expected = OmegaConf.to_container(section.architecture, resolve=True) if section.get("architecture") else {}
    for key, value in expected.items():
        found = saved.get(key)
        pairs = ([(f"{key}.{k}", v, (found or {}).get(k)) for k, v in value.items()] if isinstance(value, dict)
                 else [(key, value, found)])
        wrong = [(k, v, f) for k, v, f in pairs if f is not None and f != v]
        if wrong:
            k, v, f = wrong[0]
            raise RecipeError(f"{where}: architecture.{k} = {v!r}, but the checkpoint's {config_file} has {f!r} "
                              f"(a different checkpoint at {section.path}?)")
