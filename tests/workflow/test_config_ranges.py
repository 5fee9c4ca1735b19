"""Every numeric setting declares its range (``uniembed.ranges.Range``), checked when the workflow is parsed."""
import copy
import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Annotated, Union

import pytest
from omegaconf import OmegaConf

from uniembed.config import compose_config
from uniembed.config_schema import (FILTER_PARAMS, ConfigTypeError, DataGroup, FilterSettings, ModelGroup, TinyBuild,
                                    _recipe_schema, validate_groups)
from uniembed.ranges import Range
from uniembed.train.objectives import OBJECTIVES

ROOT = Path(__file__).resolve().parents[2]
GROUPS = ("model", "judge_model", "data", "recipe")
MISSING = object()


def _schemas():
    return {"model": ModelGroup, "judge_model": ModelGroup, "data": DataGroup, "recipe": _recipe_schema()}


def _hints(schema):
    return typing.get_type_hints(schema, include_extras=True)


def _key(f: dataclasses.Field) -> str:
    return f.metadata.get("key", f.name)


def _range(tp):
    """The Range of ``Annotated[int | float, Range(...)]``, else None."""
    if typing.get_origin(tp) is Annotated and typing.get_args(tp)[0] in (int, float):
        return next((a for a in typing.get_args(tp)[1:] if isinstance(a, Range)), None)
    return None


def _bounded(rng: Range) -> bool:
    return any(b is not None for b in (rng.ge, rng.gt, rng.le, rng.lt))


# --- (a) every int/float field of every reachable dataclass is annotated with a Range -------------------------------

def _unranged(tp, where: str, queue: list) -> list[str]:
    """``where`` for every int/float inside ``tp`` without a Range; dataclasses met are queued."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Annotated:
        return [] if _range(tp) is not None else _unranged(args[0], where, queue)
    if tp in (int, float):
        return [where]
    if dataclasses.is_dataclass(tp):
        queue.append(tp)
        return []
    if origin in (Union, types.UnionType, list):
        return [w for a in args for w in _unranged(a, where, queue)]
    if origin is dict:
        return _unranged(args[1], where, queue)
    return []


def _reachable_dataclasses() -> list[type]:
    queue = [*_schemas().values(), *(settings for _, settings in OBJECTIVES.values()), *FILTER_PARAMS.values()]
    seen: list[type] = []
    while queue:
        schema = queue.pop()
        if schema in seen:
            continue
        seen.append(schema)
        for name, hint in _hints(schema).items():
            _unranged(hint, "", queue)
    return seen


def test_every_numeric_field_of_the_schemas_declares_its_range():
    reachable = _reachable_dataclasses()
    names = {schema.__name__ for schema in reachable}
    assert {"TinyBuild", "InstructSettings", "InstructMix", "GroupLoss", "Generator", "JudgeEngine", "JudgeServer",
            "ChooseAlpha", "Rerank", "Distill", "OptimizerSettings", "LoraSettings", "TrainingStage", "InfoNCESettings",
            "SoftLabelSettings", "DistillSettings", "PointwiseSettings", "PairListSettings", "UnimeV2Params",
            "UmarvelParams"} <= names, names
    missing = [f"{schema.__module__}.{schema.__name__}.{name}"
               for schema in reachable for name, hint in _hints(schema).items() if _unranged(hint, name, [])]
    assert not missing, "int/float settings without a Range annotation:\n" + "\n".join(missing)


# --- (b) every bounded setting of the composed embedded default, set just outside its range, is refused -----------

def _inside(rng: Range, kind: type):
    return next(kind(v) for v in (1, 0, 0.5, 2, 10, 1000, -1) if rng.violation(v) is None)


def _fill(tp):
    """A valid value of a required field in a section the config leaves null (to reach the settings inside)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if _range(tp) is not None:
        return _inside(_range(tp), typing.get_args(tp)[0])
    if dataclasses.is_dataclass(tp):
        return _minimal(tp)
    if origin in (Union, types.UnionType):
        return None
    return {list: [], dict: {}}.get(origin, {str: "x", bool: False}.get(tp))


def _minimal(schema) -> dict:
    hints = _hints(schema)
    return {_key(f): _fill(hints[f.name]) for f in dataclasses.fields(schema)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}


def _cases(value, tp, key: str, path: list):
    """(full key, range, path, value to set) of every bounded numeric setting under ``value`` (of type ``tp``).

    ``path`` is the list of (key, fill) steps from the root; ``fill`` is the section to create where the config
    has none (null or absent: the key is legal, so the setting can be given)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    rng = _range(tp)
    if rng is not None:
        if _bounded(rng):
            yield key, rng, path, rng.outside()
        return
    if dataclasses.is_dataclass(tp):
        section = value if isinstance(value, dict) else _minimal(tp)
        if not isinstance(value, dict):
            path = path[:-1] + [(path[-1][0], section)]
        hints = _hints(tp)
        for f in dataclasses.fields(tp):
            name, sub = _key(f), section.get(_key(f), MISSING)
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if sub is MISSING and required and tp not in FILTER_PARAMS.values():
                continue  # filter params: resolve_params fills the strategy's defaults
            hint = hints[f.name]
            if f.name == "objective" and isinstance(sub, dict):
                hint = OBJECTIVES[sub["name"]][1]          # an objective section: the settings of the one it names
            elif tp is FilterSettings and f.name == "params":
                hint = FILTER_PARAMS[section["strategy"]]
            yield from _cases(sub, hint, f"{key}.{name}", path + [(name, None)])
    elif origin in (Union, types.UnionType):
        for option in args:
            if option is not type(None):
                yield from _cases(value, option, key, path)
    elif origin is list and _range(args[0]) is not None and _bounded(_range(args[0])):
        yield f"{key}[0]", _range(args[0]), path, [_range(args[0]).outside()]
    elif origin is dict and _range(args[1]) is not None and _bounded(_range(args[1])):
        name = next(iter(value)) if isinstance(value, dict) and value else "x"
        yield f"{key}.{name}", _range(args[1]), path, {name: _range(args[1]).outside()}
    elif origin is dict and isinstance(value, dict):
        for name, item in value.items():
            yield from _cases(item, args[1], f"{key}.{name}", path + [(name, None)])


def _apply(root: dict, path: list, value) -> dict:
    root = copy.deepcopy(root)
    node = root
    for name, fill in path[:-1]:
        if not isinstance(node.get(name), dict):
            node[name] = copy.deepcopy(fill)
        node = node[name]
    node[path[-1][0]] = value
    return root


@pytest.fixture(scope="module")
def default_groups() -> dict:
    cfg = compose_config(["model=tiny", "data=synthetic", "recipe=tiny"], ROOT / "config")
    return {group: OmegaConf.to_container(cfg[group], resolve=True) for group in GROUPS}


def test_every_bounded_setting_is_refused_outside_its_range_naming_the_key(default_groups):
    validate_groups(OmegaConf.create(default_groups))  # the embedded default itself is valid
    cases = [case for group, schema in _schemas().items()
             for case in _cases(default_groups[group], schema, group, [(group, None)])]
    keys = [key for key, *_ in cases]
    assert len(keys) == len(set(keys)) and len(keys) > 150, keys
    for key in ("recipe.distill.alpha", "recipe.train_hn.objectives.umarvel.optimizer.lr",
                "recipe.rerank.rerankers.pointwise.objective.depth", "judge_model.instruct.group.weight",
                "judge_model.instruct.world.negatives", "judge_model.vision_pretrain.steps",
                "recipe.filters.unime_v2.params.seed", "recipe.rerank.choose_alpha.grid[0]", "data.generator.sizes.x",
                "recipe.ablations.umarvel.seeds[0]", "recipe.judge.engine.gpu_memory_utilization"):
        assert key in keys, key
    failures = []
    for key, rng, path, value in cases:
        expected = f"{key}: expected a value {rng.describe()}"
        try:
            validate_groups(OmegaConf.create(_apply(default_groups, path, value)))
            failures.append(f"{key} = {value!r}: accepted (expected a value {rng.describe()})")
        except ConfigTypeError as error:
            if not str(error).startswith(expected):
                failures.append(f"{key} = {value!r}: {error}")
    assert not failures, f"{len(failures)} of {len(cases)} settings:\n" + "\n".join(failures)


def test_non_finite_numbers_are_refused_even_where_every_finite_value_is_valid(default_groups):
    for key, value in (("recipe.filters.unime_v2.params.beta", math.nan), ("recipe.filters.umarvel.params.threshold",
                                                                          math.inf),
                       ("recipe.judge.server.timeout", math.inf), ("recipe.rerank.alpha", math.nan)):
        path = [(name, None) for name in key.split(".")]
        with pytest.raises(ConfigTypeError, match=f"^{key}: expected a finite number"):
            validate_groups(OmegaConf.create(_apply(default_groups, path, value)))


# --- (c) the faults that used to surface only inside a stage ---------------------------------------------------------

@pytest.mark.parametrize("override, message", [
    ("recipe.distill.alpha=1.5", "recipe.distill.alpha: expected a value >= 0 and <= 1, got 1.5"),
    ("recipe.train_hn.objectives.umarvel.optimizer.lr=-1e-4",
     "recipe.train_hn.objectives.umarvel.optimizer.lr: expected a value > 0, got -0.0001"),
    ("recipe.rerank.rerankers.pointwise.objective.depth=0",
     "recipe.rerank.rerankers.pointwise.objective.depth: expected a value >= 1, got 0"),
    ("recipe.ablations.unime_v2.variants.k4.objective.num_negatives=0",
     "recipe.ablations.unime_v2.variants.k4.objective.num_negatives: expected a value >= 1, got 0"),
    ("recipe.pretrain.stages.nli.objective.temperature=2.0",
     "recipe.pretrain.stages.nli.objective: expected temperature_min <= temperature <= temperature_max"),
    ("recipe.train_hn.objectives.umarvel.objective.temperature=warm",
     "recipe.train_hn.objectives.umarvel.objective.temperature: expected a number or 'previous', got 'warm'"),
    ("+recipe.filters.umarvel.params.beta=0.1", "recipe.filters.umarvel.params: umarvel: unknown parameters ['beta']"),
    ("~recipe.filters.unime_v2.params.beta", "recipe.filters.unime_v2.params: unime_v2: missing required parameters"),
    ("recipe.filters.unime_v2.params.k=2.5", "recipe.filters.unime_v2.params.k: expected int, got 2.5"),
])
def test_stage_faults_are_refused_when_the_config_is_read(override, message):
    with pytest.raises(ConfigTypeError) as error:
        validate_groups(compose_config([override], ROOT / "config"))
    assert message in str(error.value)


def test_an_out_of_range_setting_fails_the_dry_run_naming_the_key(tmp_path):
    from tests.workflow.dag import scratch_project, snakemake
    project = scratch_project(tmp_path, hydra_overrides=["recipe.distill.alpha=1.5"])
    result = snakemake(project, "-n")
    assert result.returncode != 0 and "recipe.distill.alpha: expected a value >= 0 and <= 1, got 1.5" in result.output


def test_filter_schemas_cover_the_strategies_and_the_vocab_minimum_is_the_tokenizers():
    from uniembed.model.families import families
    from uniembed.model.tokenizer import minimum_vocab_size
    from uniembed.negatives.select import STRATEGIES

    assert set(FILTER_PARAMS) == set(STRATEGIES)
    for strategy, (required, defaults) in STRATEGIES.items():
        assert {_key(f) for f in dataclasses.fields(FILTER_PARAMS[strategy])} == required | set(defaults)
    # the schema's bound is the least any family takes (each family's own is checked with it: workflow_checks)
    assert _range(_hints(TinyBuild)["vocab_size"]).ge == min(minimum_vocab_size(f) for f in families().values())
