# Path helpers and config lookups shared by the rule files; no algorithm lives here.
import json
import re
import shlex

from omegaconf import OmegaConf

from uniembed.config import CONFIG_DIR_ENV, OVERRIDES_ENV, compose_config, experiment_overrides, hydra_quote
from uniembed.config_schema import validate_groups
from uniembed.evaluate.ablation import ablation_tag
from uniembed.evaluate.sources import BENCHMARK_FORMATS, evaluation_split
from uniembed.evaluate.zeroshot import ZEROSHOT_FORMATS
from uniembed.instruct.settings import InstructSettings
from uniembed.train.settings import split_judged_variant, study_variants, trains_on_judged_negatives, variant_kind
from uniembed.launch import launch_command
from uniembed.provenance import code_version
from uniembed.workflow_checks import (ablation_filter, check_recipe, instruct_sources, mined_source_has_truth, model_identity,
                                      needs_judge_scores, run_model_tags)

CONFIG_DIR = str(Path(workflow.basedir) / "config")
RESOURCES = config["resources"]
RUN_DIR = f"{config['results']}/{config['run_name']}"
LOGS = f"{RUN_DIR}/logs"
BENCHMARKS = f"{RUN_DIR}/benchmarks"
OVERRIDES = experiment_overrides(config["experiment"], RESOURCES, config.get("hydra_overrides", []))
# The composed stage config, read here to lay out the DAG (sources, what must be built) and to
# give each rule, as params, exactly the configuration it depends on (rule_settings).
STAGE_CONFIG = compose_config(OVERRIDES, CONFIG_DIR)
validate_groups(STAGE_CONFIG)  # types of every group value, before any job (uniembed.config_schema)


def stage_output(stage):
    """The directory a training stage writes: model/ (loadable), adapter/ (LoRA stages), training_summary.json."""
    return f"{RUN_DIR}/models/{stage}"


def loadable(path):
    """The from_pretrained path inside a model artifact: a stage output's model/, or the path itself."""
    return f"{path}/model" if path.startswith(f"{RUN_DIR}/models/") else path


# The models the DAG starts from, one section each: `model` (the embedder's base) and `judge_model` (the
# judge's, and the rerankers' with recipe.rerank.base: judge_model). A section's `path` holds a real
# checkpoint, or the tiny model build_model writes when it has `build`; with `vision_pretrain` its tower is
# pretrained next (<path>-vision), with `instruct` it is then made an instruct model (<path>-instruct, whose
# model/ is loaded). All are resources beside the world: they read no run's data, every run reuses them.
# MODEL_DIRS[role] is the last of them (the artifact rules depend on), LOADABLE[role] the directory loaded.
check_recipe(STAGE_CONFIG)   # model families, instruct sources, rerank base, the recipe's sections (uniembed.workflow_checks)
MODEL_ROLES = {"model": "", "judge_model": "judge_"}   # role -> prefix of its rules' names
MODEL_STEPS = {}   # role -> [(step, output directory)] in order: build, vision, instruct
INSTRUCT_SOURCES = {}   # role -> the data sources its instruct step curates (InstructSettings holds the default)
for _role in MODEL_ROLES:
    _section = STAGE_CONFIG[_role]
    _steps = [("build", _section.path)] if _section.build is not None else []
    if _section.get("vision_pretrain") is not None:
        _steps.append(("vision", f"{_section.path}-vision"))
    if _section.get("instruct") is not None:
        _steps.append(("instruct", f"{_section.path}-instruct"))
        INSTRUCT_SOURCES[_role] = instruct_sources(STAGE_CONFIG, _role)   # checked by check_recipe
    MODEL_STEPS[_role] = _steps
MODEL_DIRS = {role: steps[-1][1] if steps else STAGE_CONFIG[role].path for role, steps in MODEL_STEPS.items()}
LOADABLE = {role: f"{MODEL_DIRS[role]}/model" if steps and steps[-1][0] == "instruct" else MODEL_DIRS[role]
            for role, steps in MODEL_STEPS.items()}
MODEL_DIR = MODEL_DIRS["model"]   # the embedder's start: zero-shot evaluation, the first pretrain stage
# the rerankers' start (U-MARVEL App. C: the reranker is trained from the instruct backbone, not the embedder)
RERANK_BASE = (STAGE_CONFIG.recipe.get("rerank") or {}).get("base", "judge_model")   # checked by check_recipe


def model_step_input(role, step):
    """The directory a model step starts from (the step before it in MODEL_STEPS[role])."""
    steps = MODEL_STEPS[role]
    position = [name for name, _ in steps].index(step)
    return steps[position - 1][1] if position else STAGE_CONFIG[role].path


# recipe.judge.model: null judges with the judge model; the judge waits for it (a checkpoint on disk too). The
# study-only `simulated` backend scores from the generated world's truth instead (uniembed.judge.simulated).
SIMULATED_JUDGE = "judge" in STAGE_CONFIG.recipe and STAGE_CONFIG.recipe.judge.backend == "simulated"
JUDGE_INPUT = ({"truth": STAGE_CONFIG.data.root} if SIMULATED_JUDGE else
               {"model": MODEL_DIRS["judge_model"]}
               if "judge" in STAGE_CONFIG.recipe and STAGE_CONFIG.recipe.judge.model is None else {})
if "model" in JUDGE_INPUT:
    # the judge stage reads its model from the config
    OVERRIDES.append(f"recipe.judge.model={hydra_quote(LOADABLE['judge_model'])}")
    STAGE_CONFIG = compose_config(OVERRIDES, CONFIG_DIR)
# Stage modules run as `python -m uniembed.stages.<stage>` in whatever env a rule uses (the project
# venv, or a conda env from envs/ under --sdm conda): put the library on its path. The run's Hydra
# overrides travel in the environment (uniembed.config), not in the command, so a rule's command
# and params change only when the configuration it depends on changes; every value is quoted.
_SRC = shlex.quote(str(Path(workflow.basedir) / "src"))
shell.prefix(
    f"set -euo pipefail; export PYTHONPATH={_SRC}${{PYTHONPATH:+:$PYTHONPATH}}; "
    f"export {CONFIG_DIR_ENV}={shlex.quote(CONFIG_DIR)}; "
    f"export {OVERRIDES_ENV}={shlex.quote(json.dumps(OVERRIDES))}; ".replace("{", "{{").replace("}", "}}")
)
SOURCES = list(STAGE_CONFIG.data.sources)
DATA_ROOT = STAGE_CONFIG.data.root
CURATED_TABLES = ["queries", "candidates", "pools", "datasets", "quarantine"]
# M-BEIR and MMEB sources the evaluate rule scores (a training-only source, e.g. the identity split, is not one).
EVAL_SOURCES = [s for s, spec in STAGE_CONFIG.data.sources.items() if spec.format in BENCHMARK_FORMATS
                and evaluation_split(spec, STAGE_CONFIG.recipe.evaluate) is not None]
# Unseen sets (evaluate scores all their queries; never trained on): UniME-V2 Table 2, U-MARVEL Table 8.
ZEROSHOT_SOURCES = [s for s, spec in STAGE_CONFIG.data.sources.items() if spec.format in ZEROSHOT_FORMATS]
PRETRAIN_STAGES = list(STAGE_CONFIG.recipe.pretrain.order) if "pretrain" in STAGE_CONFIG.recipe else []


def pretrain_start(stage):
    """Progressive transition: the first stage starts from the base model, each next from the previous."""
    position = PRETRAIN_STAGES.index(stage)
    return MODEL_DIR if position == 0 else stage_output(f"pretrain_{PRETRAIN_STAGES[position - 1]}")


MINING = "mine" in STAGE_CONFIG.recipe and STAGE_CONFIG.recipe.mine.source in SOURCES
JUDGING = MINING and "judge" in STAGE_CONFIG.recipe


FILTERS = list(STAGE_CONFIG.recipe.get("filters") or {}) if MINING else []
HN_OBJECTIVES = list((STAGE_CONFIG.recipe.get("train_hn") or {}).get("objectives") or {}) if MINING else []

# Models the evaluate rule knows, by tag, in DAG order (the base model, then every stage output; every recipe key
# that names one is checked by uniembed.workflow_checks.run_model_tags) (the artifact the rule depends on;
# `loadable` gives the path handed to from_pretrained).
EVAL_MODELS = {tag: MODEL_DIR if tag == "zero_shot" else stage_output(tag) for tag in run_model_tags(STAGE_CONFIG)}
# Generative rerankers (recipe.rerank.rerankers), trained on the mined retrieval of the training queries.
RERANKERS = list((STAGE_CONFIG.recipe.get("rerank") or {}).get("rerankers") or {}) if MINING else []
# Recall-then-rerank evaluations (U-MARVEL+): eval tag "<recall>+<reranker>" -> reranker name.
RERANK_TAGS = {f"{STAGE_CONFIG.recipe.rerank.recall}+{r}": r for r in RERANKERS} if EVAL_SOURCES else {}
# U-MARVEL's distillation (recipe.distill): continues `from` on the teacher table of its reranker.
DISTILL = "distill" in EVAL_MODELS
# The trained embedders in DAG order (their training summaries feed the report's temperature figure).
TRAINED_MODELS = [path for tag, path in EVAL_MODELS.items() if tag != "zero_shot"]
# The MIEB-style evaluation of every model tag (recipe.evaluate.mieb: the synthetic world's tasks, evaluate_mieb).
MIEB_SCORES = ([f"{RUN_DIR}/eval/{tag}/mieb.parquet" for tag in EVAL_MODELS]
               if STAGE_CONFIG.recipe.evaluate.get("mieb") else [])
# Ablation repetitions (recipe.ablations: a separate target per study, not part of `all`), by eval tag.
# A variant is trained per seed (a hard-negative objective, or a distillation continuing another variant) or
# is a model of the run (the shared start of U-MARVEL Table 13: evaluated once; uniembed.train.settings.variant_kind).
# A judge-quality study (`judge_aucs`) repeats each variant on judged negatives per simulated judge (judge_study.smk).
ABLATIONS = dict(STAGE_CONFIG.recipe.get("ablations") or {}) if HN_OBJECTIVES else {}
_RECIPE = OmegaConf.to_container(STAGE_CONFIG.recipe, resolve=True)
STUDY_VARIANTS = {study: study_variants(_RECIPE, study) for study in ABLATIONS}
ABLATION_KINDS = {(study, v): variant_kind(OmegaConf.to_container(ABLATIONS[study].variants[split_judged_variant(v)[0]]))
                  for study in ABLATIONS for v in STUDY_VARIANTS[study]}
ABLATION_MODELS = {ablation_tag(study, variant, seed): stage_output(f"ablations/{study}/{variant}/seed{seed}")
                   for study, spec in ABLATIONS.items() for variant in STUDY_VARIANTS[study] for seed in spec.seeds
                   if ABLATION_KINDS[study, variant] != "model"}


# Training for identity (recipe.visme.train; `snakemake visme`, not part of `all`): one model per seed, by eval tag.
_VISME_TRAIN = (STAGE_CONFIG.recipe.get("visme") or {}).get("train")
VISME_TRAINED = ({f"visme_seed{seed}": stage_output(f"visme/seed{seed}") for seed in _VISME_TRAIN.seeds}
                 if _VISME_TRAIN else {})


def ablation_variants(kind):
    """Variant names of that kind across studies (a rule's wildcard constraint)."""
    return "|".join(sorted({re.escape(v) for (_, v), k in ABLATION_KINDS.items() if k == kind})) or "none"


def ablation_model(wildcards, variant):
    """The model of `variant` (same study and seed as the job)."""
    return ABLATION_MODELS[ablation_tag(wildcards.study, variant, wildcards.seed)]


def ablation_scores(study):
    """[scores of every trained repetition], and {model variant: the run's scores of that model}."""
    spec = ABLATIONS[study]
    trained = [f"{RUN_DIR}/eval/{ablation_tag(study, v, seed)}/scores.parquet" for v in STUDY_VARIANTS[study]
               for seed in spec.seeds if ABLATION_KINDS[study, v] != "model"]
    shared = {v: f"{RUN_DIR}/eval/{spec.variants[v].model}/scores.parquet" for v in spec.variants
              if ABLATION_KINDS[study, v] == "model"}
    return trained, shared


# The papers' published numbers (data/published/*.csv), beside ours in tables/papers.md.
PUBLISHED = sorted(str(p) for p in (Path(workflow.basedir) / "data" / "published").glob("*.csv"))


def ablation_variant(study, variant):
    """The settings of one ablation variant (recipe.ablations.<study>.variants.<variant>; a judge-quality
    repetition "<variant>@auc<AUC>" has its variant's)."""
    return STAGE_CONFIG.recipe.ablations[study].variants[split_judged_variant(variant)[0]]


def ablation_negatives(wildcards):
    """The hard negatives an ablation variant trains on: its base objective's filter over the run's judge, or, for
    a judge-quality repetition, that filter over the simulated judge of its ROC-AUC and seed (judge_study.smk)."""
    name = ablation_filter(_RECIPE, wildcards.study, wildcards.variant)
    auc = split_judged_variant(wildcards.variant)[1]
    if auc is None:
        return filter_outputs(name)["negatives"]
    return f"{simulated_judge_dir(wildcards.study, auc, wildcards.seed)}/{name}/hard_negatives.parquet"


def simulated_judge_dir(study, auc, seed):
    return f"{RUN_DIR}/ablations/{study}/judges/auc{float(auc):g}_seed{seed}"


def judge_study_quality(study):
    """{"<auc>" | "real": [the filter directory holding judge_quality.json and filter_summary.json, per seed]} of a
    judge-quality study (empty for other studies): every simulated judge's, and the run's own judge's."""
    spec = ABLATIONS[study]
    if not spec.get("judge_aucs"):
        return {}
    names = {ablation_filter(_RECIPE, study, v) for v in spec.variants if trains_on_judged_negatives(_RECIPE, study, v)}
    name = sorted(names)[0]
    quality = {f"{auc:g}": [f"{simulated_judge_dir(study, auc, seed)}/{name}" for seed in spec.seeds]
               for auc in spec.judge_aucs}
    quality["real"] = [filter_dir(name)]
    return quality


def model_of_tag(tag):
    """The model artifact an evaluation tag names (a stage of the run, an identity-trained model, or an ablation
    repetition)."""
    return EVAL_MODELS.get(tag) or VISME_TRAINED.get(tag) or ABLATION_MODELS[tag]


def filter_dir(name):
    return f"{RUN_DIR}/mining/filters/{name}"


def filter_outputs(name):
    """The files filter `name` writes; a filter on judge scores of the synthetic world's M-BEIR queries (whose truth
    the world holds) also reports judge quality."""
    outputs = {"negatives": f"{filter_dir(name)}/hard_negatives.parquet", "summary": f"{filter_dir(name)}/filter_summary.json"}
    if mined_source_has_truth(STAGE_CONFIG) and needs_judge_scores(STAGE_CONFIG.recipe.filters[name]):
        outputs.update(quality=f"{filter_dir(name)}/judge_quality.json", report=f"{filter_dir(name)}/judge_quality.md",
                       figure=f"{filter_dir(name)}/judge_scores.png")
    return outputs


def curated(source, table):
    return f"{RUN_DIR}/curated/{source}/{table}.parquet"


def generated_data():
    """The generated dataset directory when the data config has a generator, else nothing
    (its truth/ holds every genuine match: the judge-quality report reads it)."""
    return [DATA_ROOT] if STAGE_CONFIG.data.generator is not None else []


def built_model():
    """Every model step the DAG makes (build, vision pretraining, instruct) of the embedder's and the judge's model;
    the judge's only when something uses it (a judge, or rerankers started from it)."""
    judge_model = (JUDGING and not SIMULATED_JUDGE) or (RERANKERS and RERANK_BASE == "judge_model")
    roles = ["model"] + (["judge_model"] if judge_model else [])
    return [path for role in roles for _, path in MODEL_STEPS[role]]


def all_targets():
    """Every artifact of the run, intermediates included: a missing one (a killed or deleted job)
    is rebuilt by a plain `snakemake`, and what depends on it reruns because its input is newer."""
    summaries = [f"{RUN_DIR}/curated/{s}/summary.json" for s in SOURCES]
    models = TRAINED_MODELS + [stage_output(f"reranker_{r}") for r in RERANKERS]
    evaluations = [f"{RUN_DIR}/eval/{tag}/scores.parquet" for tag in [*EVAL_MODELS, *RERANK_TAGS]] if EVAL_SOURCES else []
    evaluations += [f"{RUN_DIR}/eval/{tag}/rerank_summary.json" for tag in RERANK_TAGS] if EVAL_SOURCES else []
    evaluations += MIEB_SCORES
    tables = [f"{RUN_DIR}/tables/{name}" for name in ("per_stage.md", "per_stage.png", "temperature.png",
                                                      "training_curves.png", "papers.md")] if EVAL_SOURCES else []
    mining = [f"{RUN_DIR}/mining/mined.parquet"] + [f for name in FILTERS for f in filter_outputs(name).values()]
    judging = [f"{RUN_DIR}/mining/judge_scores.parquet"] if JUDGING else []
    manifest = [f"{RUN_DIR}/run_manifest.json"]
    return built_model() + generated_data() + manifest + summaries + models + evaluations + tables + mining + judging


def section(key):
    """A composed config section as plain data (None when the recipe has no such section)."""
    node = OmegaConf.select(STAGE_CONFIG, key)
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def rule_settings(*keys, base_model=None, ignore=()):
    """The configuration a rule depends on, as canonical JSON (the rule's params), so Snakemake reruns
    the rule (and, through newer outputs, what follows it) exactly when one of these changes.
    ``base_model`` (a model role: "model", "judge_model") adds that model's identity (its config, and for a
    checkpoint on disk its files); ``ignore``: keys of the sections that do not change the rule's output.
    ``recipe.loader`` (the input workers) is in no rule's settings on purpose: embeddings, losses, weights and judge
    scores are identical for any worker count (tests/embed, tests/train, tests/judge *workers*), so changing it
    reruns nothing; only run_manifest.json, which records the whole recipe."""
    settings = {key: section(key) for key in keys}
    settings = {key: {k: v for k, v in value.items() if k not in ignore} if isinstance(value, dict) else value
                for key, value in settings.items()}
    if base_model:
        settings["base_model"] = model_identity(STAGE_CONFIG[base_model])
    return json.dumps(settings, sort_keys=True)


def reranker_retrieval(name):
    """A reranker's training table: the hard negatives of the filter its `negatives` names (UniME-V2-Reranker,
    eq. 5-6), else the mined retrieval of the training queries (U-MARVEL's pointwise reranker)."""
    negatives = STAGE_CONFIG.recipe.rerank.rerankers[name].get("negatives")
    return filter_outputs(negatives)["negatives"] if negatives else f"{RUN_DIR}/mining/mined.parquet"


def rerank_settings(tag):
    """What one rerank job depends on: its own reranker's settings only (a listwise reranker's depth, or a
    pointwise one's depth, fusion weight and its choice), plus the recall, scoring and evaluation sections both read."""
    listwise = STAGE_CONFIG.recipe.rerank.rerankers[RERANK_TAGS[tag]].objective.name == "pair_list"
    own = (("recipe.rerank.listwise_top_k",) if listwise else
           ("recipe.rerank.top_k", "recipe.rerank.alpha", "recipe.rerank.choose_alpha"))
    return rule_settings("recipe.rerank.recall", *own, "recipe.rerank.scoring", "recipe.embedding", "recipe.evaluate",
                         "recipe.device")


# Config keys of resources_per_rule passed to snakemake-executor-plugin-slurm unchanged.
SLURM_PASSTHROUGH = ("cpus_per_task", "mem_mb", "runtime", "slurm_partition", "slurm_account", "constraint",
                     "slurm_extra", "nodes")


def rule_resources(name):
    """The SLURM resources of one rule, in snakemake-executor-plugin-slurm names.

    resources_per_rule.default updated with the entry named `name` (an unknown name gets the default).
    GPUs become ``gres=gpu[:<gpu_model>]:<gpus>`` with ``tasks_per_gpu=0``: one task holds every GPU,
    the command runs once and its own launcher (torchrun, vLLM) starts one worker per GPU. The
    plugin's ``gpu=N`` turns any ``tasks`` into ``--ntasks-per-gpu`` (N tasks, N x the CPUs; before
    plugin 2.7 even without ``tasks``, and the command ran N times), so it is not used, and a GPU
    rule must keep tasks at 1. CPU rules pass ``tasks`` on as ``--ntasks``.
    """
    spec = rule_spec(name)
    resources = {key: spec[key] for key in SLURM_PASSTHROUGH if key in spec}
    if not spec.get("gpus"):
        return {**resources, **({"tasks": spec["tasks"]} if "tasks" in spec else {})}
    per_node = max(1, spec.get("nodes", 1))
    if spec.get("tasks", per_node) != per_node:
        raise ValueError(f"resources_per_rule.{name}: with gpus, tasks must be 1 per node (one task that starts "
                         f"its own workers); got tasks={spec['tasks']} for {per_node} node(s)")
    model = f"{spec['gpu_model']}:" if spec.get("gpu_model") else ""
    tasks = {"tasks": per_node} if per_node > 1 else {}
    return {**resources, **tasks, "gres": f"gpu:{model}{spec['gpus']}", "tasks_per_gpu": 0}


def rule_spec(name):
    """resources_per_rule.default updated with the entry `name` (config keys, not plugin names)."""
    table = config.get("resources_per_rule", {})
    return {**table.get("default", {}), **table.get(name, {})}


def launcher(name):
    """The process launcher of a training rule: python, torchrun, or srun + torchrun (uniembed.launch)."""
    return launch_command(rule_spec(name))
