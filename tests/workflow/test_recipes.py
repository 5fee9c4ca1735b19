"""Every shipped experiment and recipe drives a complete DAG; a recipe missing a section fails at parse time."""
import pytest
import yaml
from omegaconf import OmegaConf

from uniembed.config import compose_config
from uniembed.train.settings import study_variants
from uniembed.workflow_checks import RecipeError, check_recipe, run_model_tags

from .dag import ROOT, planned_jobs, scratch_project, snakemake, write_config

EXPERIMENTS = sorted((ROOT / "config" / "experiments").glob("*.yaml"))
RECIPES = sorted(p.stem for p in (ROOT / "config" / "recipe").glob("*.yaml"))
#: The stages each paper's DAG holds (issue: the recipe decides the DAG's shape).
PAPER_STAGES = {
    "tiny": {"curate", "pretrain", "evaluate", "evaluate_mieb", "tables", "mine", "judge", "filter", "judge_quality",
             "train_hn", "train_reranker", "rerank", "distill_data", "distill"},
    "umarvel_qwen2vl_7b": {"curate", "pretrain", "evaluate", "tables", "mine", "mine_encode_part", "filter", "train_hn",
                           "train_reranker", "rerank", "rerank_part", "distill_data", "distill"},
}


UNIME_V2 = {"curate", "evaluate", "tables", "mine", "mine_encode_part", "judge", "judge_part", "filter", "train_hn",
            "train_reranker", "rerank", "rerank_part"}   # the mine's encoding, the judge and the rerank in parts
PAPER_STAGES.update(dict.fromkeys(("unime_v2_qwen2vl_2b", "unime_v2_qwen2vl_7b", "unime_v2_llavaov_7b"), UNIME_V2))
#: How the data sources of the real config are pointed at the synthetic world.
WORLD_PATHS = {"mbeir": ["root={root}/mbeir"], "mmeb": ["root={root}/mmeb", "image_root={root}/mmeb"],
               "nli": ["path={root}/nli/nli_for_simcse.csv"],
               "captions": ["path={root}/captions/captions.tsv", "image_root={root}/captions"]}


@pytest.fixture(scope="module")
def tiny_of_family(tmp_path_factory, tiny_qwen2vl):
    """``tiny_of_family(family)``: a tiny checkpoint of that family, built once (Qwen2-VL: the session's)."""
    from uniembed.data.synthetic.world import corpus
    from uniembed.model.tiny import build_tiny_model

    built = {"qwen2_vl": tiny_qwen2vl}

    def get(family: str):
        if family not in built:
            built[family] = build_tiny_model(tmp_path_factory.mktemp("models") / family, corpus(0), family_name=family)
        return built[family]
    return get


def _real_paths(cfg: dict, world, tiny_of_family) -> list[str]:
    """The experiment's own overrides with every local path (checkpoints, data roots) pointed at the synthetic world
    and a tiny checkpoint of the configured family (the published sizes dropped: the tiny model has others)."""
    own = [o for o in cfg.get("hydra_overrides", []) if "/path/to/" not in o]
    composed = compose_config([*(f"{g}={o}" for g, o in cfg["experiment"].items()), *own], ROOT / "config")
    paths = [f"data.root={world['root']}"]
    for role in ("model", "judge_model"):
        paths += [f"{role}.path={tiny_of_family(composed[role].family)}", f"{role}.architecture=null"]
    if (composed.recipe.get("mine") or {}).get("checkpoint"):
        paths.append(f"recipe.mine.checkpoint={tiny_of_family('qwen2_vl')}")
    for source in composed.data.sources:
        paths += [f"data.sources.{source}.{p.format(root=world['root'])}" for p in WORLD_PATHS[source]]
    return [*own, *paths]


@pytest.mark.parametrize("experiment", EXPERIMENTS, ids=lambda p: p.stem)
def test_every_shipped_experiment_dry_runs_with_its_recipe(tmp_path, experiment, small_world, tiny_of_family):
    text = experiment.read_text()
    cfg = yaml.safe_load(text)
    recipe = cfg["experiment"]["recipe"]
    assert f"config/recipe/{recipe}.yaml" in text, "an experiment's comments must name the recipe it uses"
    project = scratch_project(tmp_path)
    overrides = _real_paths(cfg, small_world, tiny_of_family)
    write_config(project, **{**cfg, "hydra_overrides": overrides,
                             "results": str(tmp_path / "results"), "resources": str(tmp_path / "resources")})
    result = snakemake(project, "-n")
    assert result.returncode == 0, result.output[-3000:]
    jobs = set(planned_jobs(result.output)) - {"all", "run_manifest"}
    assert jobs == PAPER_STAGES[recipe], jobs
    composed = compose_config([*(f"{g}={o}" for g, o in cfg["experiment"].items()), *overrides], ROOT / "config")
    check_recipe(composed)


def test_a_model_section_of_an_unknown_family_or_the_wrong_checkpoint_is_refused(tiny_qwen2vl):
    """At parse time: an unregistered family, a checkpoint of another family, or one of other sizes than the
    section's published architecture, each named with both values."""
    real = ["model=qwen2vl_7b", f"model.path={tiny_qwen2vl}"]
    cases = [(["model.family=qwen9_vl"], r"unknown model family 'qwen9_vl'; registered families: .*qwen2_vl"),
             (["model.family=qwen3_vl", "model.architecture=null"],
              r"says family 'qwen3_vl' \(Qwen3-VL\), but the checkpoint's .*config.json has model_type 'qwen2_vl'"),
             ([], r"architecture.text_config.hidden_size = 3584, but the checkpoint's .*config.json has 64"),
             (["model=tiny", "model.build.vocab_size=280", "model.family=qwen2_vl"], None)]
    for overrides, message in cases:
        cfg = compose_config([*real, *overrides] if overrides[:1] != ["model=tiny"] else overrides, ROOT / "config")
        if message is None:
            check_recipe(cfg)       # 8 special tokens + 256 bytes + 16 reserved: the least Qwen2-VL takes
            continue
        with pytest.raises(RecipeError, match=message):
            check_recipe(cfg)
    cfg = compose_config(["model.build.vocab_size=279"], ROOT / "config")
    OmegaConf.set_struct(cfg, False)
    with pytest.raises(RecipeError, match="build.vocab_size = 279 is too small for Qwen2-VL"):
        check_recipe(cfg)


def test_a_mining_checkpoint_replaces_from_and_must_be_a_registered_family(tmp_path, tiny_qwen2vl):
    """recipe.mine.checkpoint (UniME-V2 mines with VLM2Vec) is an embedder outside the run: with `from` as well it is
    refused, naming both; a checkpoint on disk of an unregistered model_type is refused at parse time; the mine rule
    reads it as it is."""
    with pytest.raises(RecipeError, match=r"recipe.mine sets both from = 'pretrain_mbeir' and checkpoint = '/x'"):
        run_model_tags(compose_config(["recipe.mine.checkpoint=/x"], ROOT / "config"))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text('{"model_type": "clip"}')
    with pytest.raises(RecipeError, match=r"recipe.mine.checkpoint .*other.*model_type 'clip', not a registered"):
        check_recipe(compose_config(["recipe.mine.from=null", f"recipe.mine.checkpoint={tmp_path / 'other'}"],
                                    ROOT / "config"))
    (tmp_path / "project").mkdir()
    project = scratch_project(tmp_path / "project", hydra_overrides=["recipe.mine.from=null",
                                                                     f"recipe.mine.checkpoint={tiny_qwen2vl}"])
    result = snakemake(project, "-n", "-p", "mine")
    assert result.returncode == 0, result.output[-3000:]
    (mine,) = [line for line in result.output.splitlines() if "uniembed.stages.mine " in line]
    assert f"--stage model_dir {tiny_qwen2vl} " in mine and "pretrain" not in planned_jobs(result.output)


@pytest.mark.parametrize("override, message", [
    ("judge_model.instruct.sources=[mbeir,flickr]", r"judge_model.instruct.sources names \['flickr'\], which are not "
                                                    r"sources of data 'synthetic'"),
    ("recipe.rerank.base=teacher", r"recipe.rerank.base = 'teacher': expected one of \['model', 'judge_model'\]")])
def test_cross_section_model_settings_are_checked_at_parse_time(override, message):
    with pytest.raises(RecipeError, match=message):
        check_recipe(compose_config([override], ROOT / "config"))


@pytest.mark.parametrize("recipe", RECIPES)
def test_each_recipe_composes_and_is_complete(recipe):
    cfg = compose_config([f"recipe={recipe}"], ROOT / "config")
    check_recipe(cfg)
    assert recipe in PAPER_STAGES, f"add recipe {recipe!r} to PAPER_STAGES with the stages of its paper"


@pytest.mark.parametrize("drop, message", [("filters", "add a `filters` section"), ("judge", "has no `judge` section"),
                                           ("mine", "has a `judge` section but no `mine` section")])
def test_a_recipe_missing_a_section_is_refused_naming_it(drop, message):
    cfg = compose_config(["recipe=tiny"], ROOT / "config")
    OmegaConf.set_struct(cfg, False)
    del cfg.recipe[drop]
    with pytest.raises(RecipeError, match=message):
        check_recipe(cfg)


def test_the_workflow_refuses_an_incomplete_recipe_before_any_job(tmp_path):
    project = scratch_project(tmp_path)
    recipe = project / "config" / "recipe" / "tiny.yaml"
    data = yaml.safe_load(recipe.read_text())
    del data["filters"]
    recipe.write_text(yaml.safe_dump(data))
    result = snakemake(project, "-n")
    assert result.returncode != 0 and "add a `filters` section" in result.output


def test_the_ablation_target_plans_every_variant_and_seed_outside_all(tmp_path):
    project = scratch_project(tmp_path)
    cfg = compose_config(["recipe=tiny"], ROOT / "config")
    study = cfg.recipe.ablations.unime_v2
    runs = len(study.variants) * len(study.seeds)
    plan = planned_jobs(snakemake(project, "-n", "ablation_unime_v2").output)
    assert plan["ablation_train"] == runs and plan["evaluate"] == runs and plan["ablation_table"] == 1
    assert "ablation_train" not in planned_jobs(snakemake(project, "-n").output)


def test_the_table_13_ablation_chains_hard_negatives_and_distillation_per_seed(tmp_path):
    """U-MARVEL Table 13: the shared start evaluated once, per seed a hard-negative model, its own teacher
    table and a distilled model continued from it; `ablations` plans every study."""
    project = scratch_project(tmp_path)
    cfg = compose_config(["recipe=tiny"], ROOT / "config")
    seeds = len(cfg.recipe.ablations.umarvel.seeds)
    output = snakemake(project, "-n", "ablation_umarvel").output
    plan = planned_jobs(output)
    assert plan["ablation_train"] == seeds and plan["ablation_distill_data"] == seeds and plan["ablation_distill"] == seeds
    assert plan["evaluate"] == 2 * seeds + 1 and plan["ablation_table"] == 1   # + the shared start, pretrain_mbeir
    assert "eval/pretrain_mbeir/scores.parquet" in output and "ablations/umarvel/hard_negatives/seed1/model" in output
    every = planned_jobs(snakemake(project, "-n", "ablations").output)
    studies = cfg.recipe.ablations
    assert every["ablation_table"] == len(studies)
    recipe = OmegaConf.to_container(cfg.recipe, resolve=True)
    trained = sum(len(study_variants(recipe, s)) * len(studies[s].seeds) for s in studies if s != "umarvel")
    assert every["ablation_train"] == seeds + trained


def test_the_judge_quality_study_trains_the_judged_rows_on_a_simulated_judge_per_auc_and_seed(tmp_path):
    """`ablation_judge_quality`: per (ROC-AUC, seed) a simulated judge, the unime_v2 filter over its scores (with its
    quality against the truth), and UniME-V2 Table 4's judged rows trained on that table; the rows on the run's own
    judge and the in-batch baseline once per seed; one table. Not part of `all`."""
    project = scratch_project(tmp_path)
    study = compose_config(["recipe=tiny"], ROOT / "config").recipe.ablations.judge_quality
    levels, seeds = len(study.judge_aucs), len(study.seeds)
    output = snakemake(project, "-n", "ablation_judge_quality").output
    plan = planned_jobs(output)
    assert plan["ablation_judge"] == plan["ablation_filter"] == levels * seeds
    assert plan["ablation_train"] == plan["evaluate"] == (len(study.variants) + 2 * levels) * seeds
    assert "judges/auc0.9_seed1/unime_v2/hard_negatives.parquet" in output
    assert "models/ablations/judge_quality/soft_labels@auc0.9/seed1" in output
    assert "'recipe.judge.simulated={auc: 0.9, seed: 1}'" in snakemake(project, "-n", "-p", "ablation_judge_quality").output
    assert "ablation_judge" not in planned_jobs(snakemake(project, "-n").output)


def test_a_judge_quality_study_is_refused_outside_the_synthetic_world_when_the_config_is_read():
    with pytest.raises(RecipeError, match=r"ablations.judge_quality.judge_aucs simulates judges .* data 'real'"):
        check_recipe(compose_config(["recipe=tiny", "data=real"], ROOT / "config"))
    cfg = compose_config(["recipe=tiny"], ROOT / "config")
    OmegaConf.set_struct(cfg, False)
    cfg.recipe.ablations.judge_quality.variants = {"no_hard_negatives": cfg.recipe.ablations.judge_quality.variants.no_hard_negatives}
    cfg.recipe.ablations.judge_quality.tables = {"table4": ["no_hard_negatives"]}
    with pytest.raises(RecipeError, match=r"judge_aucs: no variant trains on negatives a judge filters"):
        check_recipe(cfg)


@pytest.mark.parametrize("variant, message", [
    ({"distill_from": "nowhere"}, "distill_from: expected a hard-negative variant of the same study"),
    ({"model": "pretrain_mbeir", "base": "umarvel"}, "a model variant holds only `model"),
    ({"base": "missing"}, "base: expected one of recipe.train_hn.objectives"),
])
def test_ablation_variants_are_checked_when_the_config_is_read(variant, message):
    from uniembed.config_schema import ConfigTypeError, validate_groups

    cfg = compose_config(["recipe=tiny"], ROOT / "config")
    OmegaConf.set_struct(cfg, False)
    cfg.recipe.ablations.umarvel.variants.broken = variant
    with pytest.raises(ConfigTypeError, match=message):
        validate_groups(cfg)


@pytest.mark.parametrize("override, message", [
    ("recipe.rerank.listwise_top_k=0", "recipe.rerank.listwise_top_k: expected a value >= 1, got 0"),
    ("+recipe.embedding.image_size=0", "recipe.embedding.image_size: expected a value >= 1, got 0"),
    ("recipe.rerank.alpha=1.5", r"recipe.rerank.alpha: expected a value >= 0 and <= 1, got 1.5"),
    ("+recipe.rerank.choose_alpha.grid=[0.5,2.0]", r"recipe.rerank.choose_alpha.grid\[1\]: expected a value >= 0 and <= 1"),
])
def test_rerank_settings_are_checked_when_the_config_is_read(override, message):
    from uniembed.config_schema import ConfigTypeError, validate_groups

    with pytest.raises(ConfigTypeError, match=message):
        validate_groups(compose_config(["recipe=tiny", override], ROOT / "config"))


@pytest.mark.parametrize("override, message", [
    # the unime_v2 filter stores max(k, minimum) = 10 per query: 12 would repeat them (soft labels counted twice)
    ("recipe.train_hn.objectives.unime_v2.objective.num_negatives=12",
     r"train_hn.objectives.unime_v2.objective.num_negatives = 12 is more than the 10 negatives per query that "
     r"filters.unime_v2.params.k, minimum stores"),
    ("recipe.train_hn.objectives.umarvel.objective.num_negatives=6",
     r"train_hn.objectives.umarvel.objective.num_negatives = 6 is more than the 5 .* filters.umarvel.params.k stores"),
    ("recipe.distill.train.objective.num_negatives=10",
     r"distill.train.objective.num_negatives = 10 is more than the 9 .* distill.candidates stores"),
    ("recipe.ablations.unime_v2.variants.k10.objective.num_negatives=11",
     r"ablations.unime_v2.variants.k10.objective.num_negatives = 11 is more than the 10"),
])
def test_more_negatives_than_the_table_stores_is_refused_at_parse_time_naming_both_keys(override, message):
    cfg = compose_config(["recipe=tiny", override], ROOT / "config")
    with pytest.raises(RecipeError, match=message):
        check_recipe(cfg)


def test_unime_v2s_reranker_must_train_on_a_filters_negatives():
    cfg = compose_config(["recipe=tiny", "~recipe.rerank.rerankers.listwise.negatives"], ROOT / "config")
    with pytest.raises(RecipeError, match=r"rerank.rerankers.listwise \(pair_list, UniME-V2-Reranker\) trains on the "
                                          r"judge-filtered hard negatives"):
        check_recipe(cfg)
    cfg = compose_config(["recipe=tiny", "recipe.rerank.rerankers.listwise.negatives=nope"], ROOT / "config")
    with pytest.raises(RecipeError, match=r"rerank.rerankers.listwise.negatives = 'nope' names no filter"):
        check_recipe(cfg)


def test_the_judge_and_the_rerankers_start_from_the_judge_model_and_the_embedder_from_its_own(tmp_path):
    """The embedded default: build_judge_model -> pretrain_judge_vision -> instruct_judge_model (resources); the judge
    waits for and loads the judge's instruct model, the rerankers start from it (recipe.rerank.base: judge_model),
    the first pretrain stage (the embedder) from the embedder's vision-pretrained model (build_model -> pretrain_vision)."""
    project = scratch_project(tmp_path)
    result = snakemake(project, "-n", "-p")
    assert result.returncode == 0, result.output[-3000:]
    plan = planned_jobs(result.output)
    assert {rule: plan.get(rule) for rule in ("build_model", "pretrain_vision", "build_judge_model",
                                              "pretrain_judge_vision", "instruct_judge_model")} == dict.fromkeys(
        ("build_model", "pretrain_vision", "build_judge_model", "pretrain_judge_vision", "instruct_judge_model"), 1)
    commands = [line for line in result.output.splitlines() if "python -m uniembed.stages." in line]
    vision, judge_vision = "resources/models/tiny-qwen2vl-vision", "resources/models/tiny-judge-vision"
    instruct = "resources/models/tiny-judge-instruct"

    def command(stage, *words):
        (found,) = [c for c in commands if f"uniembed.stages.{stage} " in c and all(w in c for w in words)]
        return found
    assert f"--stage role judge_model --stage model_dir {judge_vision}" in command("instruct")
    assert "--stage role judge_model --stage model_dir resources/models/tiny-judge " in command("pretrain_vision",
                                                                                                  "judge_model")
    assert f"--stage model_dir {vision}" in command("train", "--stage name nli")
    assert f"--stage model_dir {instruct}/model" in command("train", "--stage name pointwise")
    assert f"--stage model_dir {instruct}/model" in command("train", "--stage name listwise")
    judge = result.output.split("rule judge:", 1)[1].split("\n\n", 1)[0]    # the judge waits for the instruct model
    (inputs,) = [line for line in judge.splitlines() if line.strip().startswith("input:")]
    assert instruct in inputs and judge_vision not in inputs


def test_a_real_judge_model_is_loaded_as_it_is_and_the_rerankers_start_from_the_embedders_model(tmp_path):
    """judge_model without build / instruct (a checkpoint on disk): no model rule of the judge; with
    recipe.rerank.base: model the rerankers start from the embedder's model (a real instruct backbone)."""
    project = scratch_project(tmp_path, hydra_overrides=["judge_model.build=null", "judge_model.vision_pretrain=null",
                                                         "judge_model.instruct=null", "recipe.rerank.base=model"])
    (project / "resources" / "models" / "tiny-judge").mkdir(parents=True)
    result = snakemake(project, "-n", "-p")
    assert result.returncode == 0, result.output[-3000:]
    plan = planned_jobs(result.output)
    assert not {"build_judge_model", "pretrain_judge_vision", "instruct_judge_model"} & set(plan)
    (pointwise,) = [line for line in result.output.splitlines()
                    if "uniembed.stages.train " in line and "--stage name pointwise" in line]
    assert "--stage model_dir resources/models/tiny-qwen2vl-vision " in pointwise   # its vision-pretrained model
    judge = result.output.split("rule judge:", 1)[1].split("\n\n", 1)[0]    # a checkpoint: its path, as it is
    assert "resources/models/tiny-judge" in judge and "tiny-judge-instruct" not in judge


def test_the_runs_models_are_listed_in_dag_order():
    tags = run_model_tags(compose_config(["recipe=tiny"], ROOT / "config"))
    assert tags == ["zero_shot", "pretrain_nli", "pretrain_captions", "pretrain_mbeir", "hn_umarvel", "hn_unime_v2",
                    "distill"]


@pytest.mark.parametrize("override, message", [
    ("recipe.mine.from=hn_umarvel", r"recipe.mine.from = 'hn_umarvel' is not one of this run's \['zero_shot', "),
    ("recipe.train_hn.from=distill", r"recipe.train_hn.from = 'distill' is not one of"),
    ("recipe.rerank.recall=pretrain_typo", r"recipe.rerank.recall = 'pretrain_typo' is not one of"),
    ("recipe.distill.from=distill", r"recipe.distill.from = 'distill' is not one of"),
    ("recipe.distill.reranker=listwise_typo", r"recipe.distill.reranker = 'listwise_typo' is not one of this run's "
                                              r"\['pointwise', 'listwise'\]"),
    ("recipe.ablations.umarvel.variants.progressive.model=hn_nothing",
     r"recipe.ablations.umarvel.variants.progressive.model = 'hn_nothing' is not one of"),
    ("~recipe.distill", r"recipe.ablations.umarvel.variants.distillation: a distillation variant needs recipe.rerank"),
    ("recipe.visme.train.from=visme_seed0", r"recipe.visme.train.from = 'visme_seed0' is not one of"),
    ("recipe.visme.train.source=identities", r"recipe.visme.train.source = 'identities' is not a source of data"),
    ("recipe.visme.train.from=zero_shot", r"temperature = 'previous' continues the temperature of `from`, but "
                                          r"zero_shot was never trained"),
    ("recipe.visme.models=[zero_shot,visme_seed7]", r"recipe.visme.models = 'visme_seed7' is not one of this run's "
                                                    r"\['zero_shot', .*'visme_seed0', 'visme_seed1', 'visme_seed2'\]"),
    ("recipe.objembed.train.from=objembed_seed0", r"recipe.objembed.train.from = 'objembed_seed0' is not one of"),
    ("recipe.objembed.baselines=[hn_umarvel,visme_seed0]", r"recipe.objembed.baselines = 'visme_seed0' is not one of"),
    ("recipe.objembed.regions=scenes", r"recipe.objembed.regions = 'scenes' is not a region set of data.regions "
                                       r"\['objects'\]"),
    ("~data.regions.objects.global_retrieval", r"data.regions.objects: recipe.objembed trains and evaluates on it, so "
                                               r"it needs \['global_retrieval'\]"),
])
def test_a_recipe_key_naming_a_model_the_run_does_not_make_is_refused_naming_it(override, message):
    with pytest.raises(RecipeError, match=message):
        run_model_tags(compose_config(["recipe=tiny", override], ROOT / "config"))
