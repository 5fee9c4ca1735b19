"""Typed schemas of the Hydra groups (model, judge_model, data, recipe), checked when the workflow is parsed.

Hydra refuses an override of a key that does not exist; this module refuses a value of the wrong
type, a missing required key or an unknown key in a group file, with a message naming the full
key, the value and the expected type (``recipe.evaluate.batch_size: expected int, got 'abc'
(str)``), before any job runs. The schemas are dataclasses; where a library dataclass already
describes a section (``TrainSettings`` for a training stage, ``EmbeddingMode`` for the embedding)
it is the schema, so a setting has one definition. A numeric field declares its range there too
(``Annotated[int, Range(ge=1)]``, :mod:`uniembed.ranges`): a value outside it, or a non-finite float,
is refused naming the key (``recipe.distill.alpha: expected a value >= 0 and <= 1, got 1.5``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Annotated, Any, Optional, Union

from omegaconf import DictConfig, OmegaConf

from .data.loader_settings import LoaderSettings
from .instruct.settings import InstructSettings
from .judge.engine import JudgeEngine
from .negatives.params import STRATEGY_PARAMS
from .vision.settings import VisionPretrainSettings
from .config_check import ConfigRangeError, ConfigTypeError, check  # noqa: F401 (the schema's errors, re-exported)
from .config_objects import OBJEMBED_KEY_DOCS, RegionSource, check_objembed, objembed_schema
from .ranges import Range

Count = Annotated[int, Range(ge=1)]     # sizes, depths, steps: at least one
Seed = Annotated[int, Range(ge=0)]      # numpy refuses negative seeds
Fraction = Annotated[float, Range(ge=0, le=1)]


@dataclass
class TinyBuild:
    hidden_size: Count  # the decoder's width
    num_layers: Count  # decoder layers
    num_heads: Count  # attention heads (head size = hidden_size / num_heads; vLLM's CPU attention serves 32, 64, ...)
    num_kv_heads: Count  # key/value heads (grouped-query attention)
    intermediate_size: Count  # the decoder MLP's width
    vision_depth: Count  # vision tower blocks
    vision_embed_dim: Count  # the vision tower's width
    vocab_size: Annotated[int, Range(ge=277)]  # the least a byte-level BPE of any family takes (its own: workflow_checks)
    seed: Seed  # weights' initialisation seed
    init_std: Annotated[float, Range(gt=0)] = 0.02         # initializer_range of the language model
    vision_init_std: Annotated[float, Range(gt=0)] = 0.02  # ... and of the vision tower
    image_min_pixels: Count = 56 * 56  # images are resized into [min, max] pixels (28-pixel steps)
    image_max_pixels: Count = 112 * 112  # the processor's upper bound of pixels per image


@dataclass
class ModelGroup:
    name: str  # a label; a built model's directory name
    family: str      # the model family: a config.json model_type registered in uniembed.model.families
    path: str  # the checkpoint directory (from_pretrained); a built model is written there
    build: Optional[TinyBuild] = None
    instruct: Optional[InstructSettings] = None  # the embedded default's instruct stage; null for a real checkpoint
    vision_pretrain: Optional[VisionPretrainSettings] = None  # the tiny tower's CLIP-style pretraining; null: as built
    # a real checkpoint's published sizes (config.json keys: tie_word_embeddings, text_config, vision_config), checked
    # against the checkpoint's config.json at parse time (workflow_checks.model_families), and its model card's count
    architecture: Optional[dict[str, Any]] = None
    published_parameters: Optional[Annotated[float, Range(gt=0)]] = None  # the model card's parameter count


@dataclass
class Generator:
    seed: Seed  # the synthetic world's seed
    sizes: Optional[dict[str, Count]] = None  # uniembed.data.synthetic.generate.resolve_sizes: positive


@dataclass
class DeclaredSizes:
    """``data.sources.<name>.declared``: a source's sizes before it is curated, for the cost plan
    (``python -m uniembed.plan``; a curated source's own sizes replace them)."""
    queries: dict[str, Count]  # queries per split
    candidates: Count  # candidates in the source
    pool: Count  # candidates a mined query is searched against (global: the union pool; own: its own pool, mean)
    query_tokens: Annotated[float, Range(gt=0)]  # mean text tokens of a query (instruction included)
    candidate_tokens: Annotated[float, Range(gt=0)]  # mean text tokens of a candidate
    query_images: Fraction = 0.0  # the share of queries with an image
    candidate_images: Fraction = 0.0  # the share of candidates with an image
    positives: Annotated[float, Range(ge=1)] = 1.0  # mean positives per query


@dataclass
class Source:
    # the reader: mbeir | mmeb | nli_csv | captions | karpathy | sugarcrepe | sharegpt4v | urban1k | circo | cirr |
    # fashioniq
    format: str
    root: Optional[str] = None  # a directory source's root (M-BEIR, MMEB)
    path: Optional[str] = None  # a file source (NLI CSV, caption TSV/Parquet)
    image_root: Union[str, dict[str, str], None] = None  # MMEB: one root per split
    splits: Optional[list[str]] = None  # splits to read (default: the format's)
    instruction_seed: Optional[Seed] = None  # M-BEIR: seed of each query's instruction draw among its task's four
    declared: Optional[DeclaredSizes] = None  # its sizes for the cost plan before curation (uniembed.plan)


@dataclass
class DataGroup:
    name: str  # a label of the data (synthetic | real | yours)
    root: str  # where the data lives (the synthetic world is generated there)
    sources: dict[str, Source]  # the sources to curate, by name (each: format + paths)
    generator: Optional[Generator] = None  # set for the synthetic world: generate_data writes it
    validate_images: bool = True  # curation opens and decodes every image (bad ones are quarantined)
    image_workers: Count = 1  # processes that decode images during curation
    regions: dict[str, RegionSource] = field(default_factory=dict)  # ObjEmbed's region sets (curate_regions)


@dataclass
class EvaluateSettings:
    batch_size: Count  # items per encoding batch
    cache_dtype: str  # float32 | float16: the embedding cache's dtype
    shard_size: Count  # rows per embedding-cache shard (a killed encode resumes from finished shards)
    mbeir_split: str  # the M-BEIR split evaluated
    mbeir_settings: list[str]  # local (the task's pool) and/or global (the union pool)
    mmeb_split: str  # the MMEB split evaluated
    # the MIEB-style tasks on the synthetic world, one evaluate_mieb job per model tag (docs/evaluation.md)
    mieb: bool = False


@dataclass
class VismeSettings:
    """``recipe.visme`` (VisME supplement; `snakemake visme`, not part of `all`): the identity meta-tasks for every
    model tag, the t-SNE of identities and the candidate-pool scaling study."""
    models: list[str]  # model tags compared: the first before training, the last after (t-SNE, pool scaling)
    pool_sizes: list[Count]  # candidates per pool (VisME Table 7: 3k to 100k)
    batch_size: Count = 64  # items per encoding batch of the pool-scaling study


@dataclass
class MineSettings:
    source: str  # the curated source whose queries are mined
    split: str  # its split (train)
    pool: str  # global: the split's union pool; own: each query's own pool (MMEB train: its dataset's targets)
    top_k: Count  # candidates kept per query (the papers: 50)
    index: str  # flat (exact) | ivf | hnsw (FAISS)
    delta: Optional[Annotated[float, Range(ge=-1, le=1)]] = None  # a cosine threshold
    from_: Optional[str] = field(default="pretrain_mbeir", metadata={"key": "from"})  # a model tag of this run
    # or a local embedder checkpoint instead of `from` (UniME-V2 §4.1 mines with VLM2Vec, Qwen2-VL-7B)
    checkpoint: Optional[str] = None
    parts: Count = 1  # cluster jobs the encoding of queries and pool is split over (whole cache shards), then mined


@dataclass
class JudgeServer:
    url: Optional[str] = None  # a running OpenAI-compatible endpoint; null starts `vllm serve` for the job
    host: str = "127.0.0.1"  # where a started server binds
    api_key_env: Optional[str] = "UNIEMBED_JUDGE_API_KEY"  # environment variable holding the API key (unset/empty: none)
    command: Optional[list[str]] = None  # argv of the server program (null: vllm serve)
    concurrency: Count = 16  # requests in flight
    timeout: Annotated[float, Range(gt=0)] = 120  # seconds
    retries: Annotated[int, Range(ge=0)] = 3  # retries of a failed request
    extra_args: list[str] = field(default_factory=list)  # more flags for a started server


@dataclass
class SimulatedJudge:
    """``recipe.judge.simulated`` (backend ``simulated``, the synthetic world only; :mod:`uniembed.judge.simulated`):
    scores from the world's truth with seeded noise of this expected ROC-AUC."""
    auc: Annotated[float, Range(ge=0.5, le=1)]  # the simulated judge's expected ROC-AUC
    seed: Seed = 0  # its noise seed


JUDGE_BACKENDS = ("transformers", "vllm_offline", "vllm_server", "simulated")


@dataclass
class JudgeSettings:
    backend: str  # transformers | vllm_offline | vllm_server | simulated (study only)
    batch_size: Count  # pairs per forward / request batch
    queries_per_shard: Count  # queries per resumable shard
    top_logprobs: Annotated[int, Range(ge=2)]  # both Yes and No must be among the top logprobs
    seed: Seed = 0  # seed of the max_queries subset
    model: Optional[str] = None  # the judge's checkpoint; null: the judge_model section's
    max_queries: Optional[Count] = None  # a seeded subset of mined queries to judge; null: all
    max_failed_fraction: Fraction = 0.01  # above it the stage fails (shards kept)
    parts: Count = 1  # cluster jobs the pairs are split over (each its own GPU job and engine), then gathered
    trust_remote_code: bool = False  # vLLM backends: run the model repository's own code
    server: JudgeServer = field(default_factory=JudgeServer)  # vllm_server settings
    engine: JudgeEngine = field(default_factory=JudgeEngine)  # vLLM engine settings (both vLLM backends)
    simulated: Optional[SimulatedJudge] = None  # backend simulated: {auc, seed}


LISTWISE_TOP_K = 5   # UniME-V2 Table 3 reranks the top 5 listwise


@dataclass
class ChooseAlpha:
    """``recipe.rerank.choose_alpha``: pick the fusion weight on a held-out split (U-MARVEL App. C eq. 4 tunes
    alpha): the grid value with the best mean Recall@k of the recall + rerank lists of that split's M-BEIR queries."""
    split: str = "val"  # the held-out M-BEIR split alpha is chosen on
    k: Count = 5  # Recall@k it maximises
    grid: Optional[list[Fraction]] = None      # null: 0.0, 0.1, ..., 1.0


@dataclass
class AblationStudy:
    seeds: list[Seed]  # each variant is trained once per seed
    variants: dict[str, dict[str, Any]]   # each: {base: <train_hn objective>, changes...}; checked merged
    tables: dict[str, list[str]]  # table name -> its variants, in column order
    # the judge-quality study: each variant on judged negatives repeated per simulated judge of these ROC-AUCs
    # (uniembed.train.settings.study_variants; the synthetic world only, workflow_checks)
    judge_aucs: Optional[list[Annotated[float, Range(ge=0.5, le=1)]]] = None


@dataclass
class FilterSettings:
    strategy: str  # unime_v2 (judge scores) | umarvel (similarity or score threshold)
    params: dict[str, Any]   # checked against FILTER_PARAMS[strategy], defaults filled (_check_filters)


#: strategy -> the schema of its parameters (keys, defaults and ranges: uniembed.negatives.params)
FILTER_PARAMS = STRATEGY_PARAMS


#: What the keys of the sections _recipe_schema assembles mean (the dataclasses above carry theirs as comments);
#: docs/reference/configuration.md is generated from both (scripts/docs_reference.py).
KEY_DOCS = {
    "recipe.name": "the recipe's label", "recipe.seed": "the run's seed", "recipe.device": "auto | cpu | cuda",
    "recipe.embedding": "how embeddings are extracted (uniembed.embed.embedder.EmbeddingMode)",
    "recipe.evaluate": "evaluation and the embedding cache",
    "recipe.loader": "the data-loader workers that prepare model inputs (image decode, prompts, processor) for "
                     "encoding, training and the transformers judge; results are identical for any value, so no "
                     "rule reruns when it changes",
    "recipe.pretrain": "the progressive transition (U-MARVEL §3.1.3); null: none",
    "recipe.pretrain.order": "the stages in training order, each starting from the previous one's model",
    "recipe.pretrain.stages": "one training stage per name",
    "recipe.mine": "global-retrieval candidate mining (UniME-V2 eq. 1)",
    "recipe.judge": "the MLLM-as-a-judge (UniME-V2 §3.2); null: no judge",
    "recipe.filters": "hard-negative filters by name",
    "recipe.train_hn": "hard-negative training, one model per objective",
    "recipe.train_hn.from": "the model tag it starts from", "recipe.train_hn.objectives": "one trained model per name",
    "recipe.ablations": "ablation studies (separate targets: snakemake ablation_<study>)",
    "recipe.rerank": "generative rerankers and recall-then-rerank evaluation",
    "recipe.rerank.rerankers": "one reranker per name", "recipe.rerank.recall": "the model tag whose top_k is reranked",
    "recipe.rerank.top_k": "candidates reranked per query", "recipe.rerank.alpha": "fusion weight of the recall score",
    "recipe.rerank.scoring": "the backend that scores (P(Yes)) or generates (listwise) with a reranker",
    "recipe.rerank.choose_alpha": "choose alpha on a held-out split; null: use alpha",
    "recipe.rerank.listwise_top_k": "candidates one listwise prompt holds",
    "recipe.rerank.base": "model | judge_model: the model section the rerankers start from",
    "recipe.distill": "U-MARVEL §3.3 distillation; null: none", "recipe.distill.from": "the model tag it continues",
    "recipe.distill.reranker": "the reranker of the teacher", "recipe.distill.fraction": "share of training queries",
    "recipe.distill.seed": "seed of that share",
    "recipe.distill.candidates": "candidates per query in the teacher table",
    "recipe.distill.alpha": "fusion weight of the teacher's recall score", "recipe.distill.train": "the training stage",
    "recipe.visme.train": "identity training (one model per seed)", "recipe.visme.train.from": "the model tag it starts from",
    "recipe.visme.train.seeds": "one trained model per seed",
    "source": "the curated source it trains on", "negatives": "the filter whose hard negatives it trains on",
    **OBJEMBED_KEY_DOCS,
}


def _training_stage_schemas():
    """(a training stage: TrainSettings + its curated source; a hard-negative stage: + its filter)."""
    from .train.settings import TrainSettings

    stage = dataclasses.make_dataclass("TrainingStage", [("source", str, field(kw_only=True))], bases=(TrainSettings,))
    hn_stage = dataclasses.make_dataclass("HardNegativeStage", [("negatives", str, field(kw_only=True))], bases=(stage,))
    return stage, hn_stage


def _recipe_schema():
    from .embed.mode import EmbeddingMode
    from .train.settings import TrainSettings

    stage, hn_stage = _training_stage_schemas()
    # a reranker trains on the mined table, or on the hard negatives of the filter its `negatives` names
    reranker = dataclasses.make_dataclass("RerankerStage", [("negatives", Optional[str],
                                                             field(default=None, kw_only=True))], bases=(stage,))
    pretrain = dataclasses.make_dataclass("Pretrain", [("order", list[str]), ("stages", dict[str, stage])])
    train_hn = dataclasses.make_dataclass("TrainHardNegatives", [("objectives", dict[str, hn_stage]),
                                                                 ("from_", str, field(default="pretrain_mbeir",
                                                                                      metadata={"key": "from"}))])
    rerank = dataclasses.make_dataclass("Rerank", [("rerankers", dict[str, reranker]), ("recall", str), ("top_k", Count),
                                                   ("alpha", Fraction), ("scoring", JudgeSettings),
                                                   ("choose_alpha", Optional[ChooseAlpha], field(default=None)),
                                                   ("listwise_top_k", Count, field(default=LISTWISE_TOP_K)),
                                                   # the model section the rerankers start from: model | judge_model
                                                   ("base", str, field(default="judge_model"))])
    # recipe.visme.train: identity training off the main chain, continuing `from` once per seed
    visme_train = dataclasses.make_dataclass("VismeTraining", [("from_", str, field(kw_only=True, metadata={"key": "from"})),
                                                               ("seeds", list[Seed], field(kw_only=True))], bases=(stage,))
    visme = dataclasses.make_dataclass("Visme", [("train", Optional[visme_train], field(default=None))],
                                       bases=(VismeSettings,))
    distill = dataclasses.make_dataclass("Distill", [("from_", str, field(metadata={"key": "from"})), ("reranker", str),
                                                     ("fraction", Annotated[float, Range(gt=0, le=1)]), ("seed", Seed),
                                                     ("candidates", Count), ("alpha", Fraction), ("train", stage)])
    optional = [(name, Optional[kind], field(default=None))
                for name, kind in (("pretrain", pretrain), ("mine", MineSettings), ("judge", JudgeSettings),
                                   ("filters", dict[str, FilterSettings]), ("train_hn", train_hn),
                                   ("ablations", dict[str, AblationStudy]), ("rerank", rerank),
                                   ("distill", distill), ("visme", visme),
                                   ("objembed", objembed_schema(TrainSettings)))]
    return dataclasses.make_dataclass("Recipe", [("name", str), ("seed", Seed), ("device", str),
                                                 ("embedding", EmbeddingMode), ("evaluate", EvaluateSettings),
                                                 *optional, ("loader", LoaderSettings, field(default_factory=LoaderSettings))])


def validate_groups(cfg: DictConfig) -> None:
    """Check ``cfg.model``, ``cfg.judge_model``, ``cfg.data`` and ``cfg.recipe`` against their schemas (raises ConfigTypeError)."""
    from .train.settings import JUDGED_MARK, ablation_entry

    groups = {key: OmegaConf.to_container(cfg[key], resolve=True) for key in ("model", "judge_model", "data", "recipe")}
    for key, schema in (("model", ModelGroup), ("judge_model", ModelGroup), ("data", DataGroup),
                        ("recipe", _recipe_schema())):
        check(groups[key], schema, key)
    recipe = groups["recipe"]
    stages = {f"recipe.pretrain.stages.{n}": v for n, v in ((recipe.get("pretrain") or {}).get("stages") or {}).items()}
    stages.update({f"recipe.train_hn.objectives.{n}": v
                   for n, v in ((recipe.get("train_hn") or {}).get("objectives") or {}).items()})
    if recipe.get("distill"):
        stages["recipe.distill.train"] = recipe["distill"]["train"]
    if (recipe.get("visme") or {}).get("train"):
        stages["recipe.visme.train"] = recipe["visme"]["train"]
        seeds = recipe["visme"]["train"]["seeds"]
        if not seeds or len(set(seeds)) != len(seeds):
            raise ConfigTypeError(f"recipe.visme.train.seeds: expected at least one seed, each once, got {seeds}")
    for study, spec in (recipe.get("ablations") or {}).items():
        if JUDGED_MARK in "".join(spec["variants"]):
            raise ConfigTypeError(f"recipe.ablations.{study}.variants: {JUDGED_MARK!r} is kept for the judge-quality "
                                  f"study's repetitions; rename {[v for v in spec['variants'] if JUDGED_MARK in v]}")
        for variant in spec["variants"]:
            where = f"recipe.ablations.{study}.variants.{variant}"
            _check_variant(recipe, spec["variants"], variant, where)
            entry = ablation_entry(recipe, study, variant)
            if entry is not None:
                stages[where] = entry
                check(entry, _training_stage_schemas()[1 if "negatives" in entry else 0], where)
        for table, variants in spec["tables"].items():
            unknown = [v for v in variants if v not in spec["variants"]]
            if unknown:
                raise ConfigTypeError(f"recipe.ablations.{study}.tables.{table}: unknown variant(s) {unknown}; "
                                      f"expected some of {sorted(spec['variants'])}")
    for where, stage in stages.items():
        _check_objective(stage["objective"], f"{where}.objective", task="embedding")
    objembed = check_objembed(recipe, ConfigTypeError)
    if objembed:
        _check_objective(objembed["objective"], "recipe.objembed.train.objective", task="objects")
    for name, stage in ((recipe.get("rerank") or {}).get("rerankers") or {}).items():
        _check_objective(stage["objective"], f"recipe.rerank.rerankers.{name}.objective", task="rerank")
    _check_filters(recipe.get("filters") or {})


def _check_filters(filters: dict) -> None:
    """Each filter's params: the strategy's keys (defaults filled, uniembed.negatives.select.resolve_params)
    against FILTER_PARAMS[strategy] (types and ranges)."""
    from .negatives.select import resolve_params

    for name, spec in filters.items():
        where, strategy = f"recipe.filters.{name}", spec["strategy"]
        if strategy not in FILTER_PARAMS:
            raise ConfigTypeError(f"{where}.strategy: expected one of {sorted(FILTER_PARAMS)}, got {strategy!r}")
        try:
            params = resolve_params(strategy, spec["params"])
        except ValueError as exc:
            raise ConfigTypeError(f"{where}.params: {exc}") from None
        check(params, FILTER_PARAMS[strategy], f"{where}.params")


def _check_variant(recipe: dict, variants: dict, variant: str, where: str) -> None:
    """An ablation variant names what it is (uniembed.train.settings.variant_kind) and what it needs exists."""
    from .train.settings import variant_kind

    spec, kind = variants[variant], variant_kind(variants[variant])
    if kind == "model":
        if set(spec) != {"model"} or not isinstance(spec["model"], str):
            raise ConfigTypeError(f"{where}: a model variant holds only `model: <evaluated model tag>`, got {spec}")
    elif kind == "distill":
        source = spec["distill_from"]
        if not recipe.get("distill"):
            raise ConfigTypeError(f"{where}.distill_from: a distillation variant needs recipe.distill")
        if source not in variants or variant_kind(variants[source]) != "train_hn":
            raise ConfigTypeError(f"{where}.distill_from: expected a hard-negative variant of the same study "
                                  f"{sorted(v for v in variants if variant_kind(variants[v]) == 'train_hn')}, got {source!r}")
    elif spec.get("base") not in ((recipe.get("train_hn") or {}).get("objectives") or {}):
        raise ConfigTypeError(f"{where}.base: expected one of recipe.train_hn.objectives, got {spec.get('base')!r}")


def _check_objective(objective: dict, where: str, task: str) -> None:
    """An objective section against the settings of the objective it names, which must train ``task``."""
    from .train.objective_settings import OBJECTIVE_SETTINGS, OBJECTIVE_TASKS

    name = objective.get("name")
    fitting = sorted(n for n in OBJECTIVE_SETTINGS if OBJECTIVE_TASKS[n] == task)
    if name not in fitting:
        raise ConfigTypeError(f"{where}.name: expected one of {fitting} (objectives of the {task} task), got {name!r}")
    values = {k: v for k, v in objective.items() if k != "name"}
    check(values, OBJECTIVE_SETTINGS[name], where)
    try:  # the settings' own cross-field rules (__post_init__)
        settings = OBJECTIVE_SETTINGS[name](**values)
    except ValueError as error:
        raise ConfigTypeError(f"{where}: {error}") from None
    tau, low, high = (getattr(settings, f"temperature{end}", None) for end in ("", "_min", "_max"))
    if isinstance(tau, str) and tau != "previous":
        raise ConfigTypeError(f"{where}.temperature: expected a number or 'previous', got {tau!r}")
    if high is not None and (low > high or not isinstance(tau, str) and not low <= tau <= high):  # train.temperature
        raise ConfigTypeError(f"{where}: expected temperature_min <= temperature <= temperature_max, got "
                              f"{low} <= {tau!r} <= {high}")
