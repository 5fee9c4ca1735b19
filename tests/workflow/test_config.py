"""Config validation: the Snakemake config schema and strict Hydra composition."""
from pathlib import Path

import pytest
import yaml
from hydra.errors import ConfigCompositionException
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from uniembed.config import compose_config, experiment_overrides

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = str(ROOT / "workflow" / "schemas" / "config.schema.yaml")


def default_config():
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


@pytest.mark.parametrize("path", sorted((ROOT / "config").glob("config.yaml")) + sorted((ROOT / "config" / "experiments").glob("*.yaml")))
def test_shipped_configs_validate(path):
    validate(yaml.safe_load(path.read_text()), SCHEMA)


def test_typo_in_key_is_rejected_with_its_name():
    cfg = default_config()
    cfg["run_nmae"] = cfg.pop("run_name")
    with pytest.raises(WorkflowError, match="run_nmae"):
        validate(cfg, SCHEMA)


def test_wrong_type_is_rejected():
    cfg = default_config()
    cfg["hydra_overrides"] = "data.image_workers=4"
    with pytest.raises(WorkflowError, match="is not of type 'array'"):
        validate(cfg, SCHEMA)


def test_typo_in_experiment_group_is_rejected():
    cfg = default_config()
    cfg["experiment"]["modle"] = "tiny"
    with pytest.raises(WorkflowError, match="modle"):
        validate(cfg, SCHEMA)


def test_hydra_composes_every_shipped_group_option():
    for group in ("model", "data", "recipe"):
        for option in sorted((ROOT / "config" / group).glob("*.yaml")):
            cfg = compose_config([f"{group}={option.stem}"], ROOT / "config")
            assert cfg[group].name


def test_experiment_overrides_reach_the_stage_config():
    cfg = compose_config(experiment_overrides({"model": "tiny", "data": "synthetic", "recipe": "tiny"}, "/tmp/res",
                                              ["data.image_workers=3"]), ROOT / "config")
    assert cfg.model.path == "/tmp/res/models/tiny-qwen2vl"
    assert cfg.data.sources.mbeir.root == "/tmp/res/synthetic/mbeir"
    assert cfg.data.image_workers == 3


def test_hydra_typo_override_names_the_key():
    with pytest.raises(ConfigCompositionException, match="imge_workers"):
        compose_config(["data.imge_workers=3"], ROOT / "config")
    with pytest.raises(ConfigCompositionException, match="tinny"):
        compose_config(["model=tinny"], ROOT / "config")


@pytest.mark.parametrize("override, message", [
    ("recipe.evaluate.batch_size=abc", "recipe.evaluate.batch_size: expected int, got 'abc' (str)"),
    ("recipe.pretrain.stages.mbeir.optimizer.lr=fast", "recipe.pretrain.stages.mbeir.optimizer.lr: expected float, got 'fast'"),
    ("recipe.judge.server.timeout=[1]", "recipe.judge.server.timeout: expected float, got [1]"),
    ("+recipe.pretrain.stages.nli.lrr=1", "recipe.pretrain.stages.nli: unknown key(s) ['lrr']"),
    ("~recipe.mine.top_k", "recipe.mine.top_k: required key is missing"),
    ("model.build.hidden_size=null", "model.build.hidden_size: expected int, got None"),
    ("recipe.train_hn.objectives.umarvel.objective={name: pointwise}",
     "recipe.train_hn.objectives.umarvel.objective.name: expected one of ['distill', 'info_nce', 'soft_label'] "
     "(objectives of the embedding task), got 'pointwise'"),
    ("recipe.visme.train.seeds=[]", "recipe.visme.train.seeds: expected at least one seed, each once, got []"),
    ("recipe.visme.train.seeds=[0,0]", "recipe.visme.train.seeds: expected at least one seed, each once, got [0, 0]"),
    ("+recipe.visme.train.negatives=umarvel", "recipe.visme.train: unknown key(s) ['negatives']"),
    ("recipe.objembed.train.seeds=[1,1]", "recipe.objembed.train.seeds: expected at least one seed, each once, got [1, 1]"),
    ("recipe.objembed.train.objective={name: info_nce}", "recipe.objembed.train.objective.name: expected one of "
                                                        "['objembed'] (objectives of the objects task), got 'info_nce'"),
    ("+recipe.objembed.train.source=mbeir", "recipe.objembed.train: unknown key(s) ['source']"),
    ("data.regions.objects.proposals=null", "data.regions.objects.proposals: expected str, got None"),
])
def test_group_values_are_type_checked_naming_key_value_and_type(override, message):
    from uniembed.config_schema import ConfigTypeError, validate_groups
    with pytest.raises(ConfigTypeError) as error:
        validate_groups(compose_config([override], ROOT / "config"))
    assert message in str(error.value)


@pytest.mark.parametrize("recipe", sorted(p.stem for p in (ROOT / "config" / "recipe").glob("*.yaml")))
@pytest.mark.parametrize("data", ["synthetic", "real"])
def test_every_shipped_group_file_fits_its_schema(recipe, data):
    from uniembed.config_schema import validate_groups
    for model in sorted(p.stem for p in (ROOT / "config" / "model").glob("*.yaml")):
        validate_groups(compose_config([f"recipe={recipe}", f"data={data}", f"model={model}"], ROOT / "config"))


def test_a_wrong_type_fails_the_dry_run_naming_the_key(tmp_path):
    from tests.workflow.dag import scratch_project, snakemake
    project = scratch_project(tmp_path, hydra_overrides=["recipe.judge.batch_size=abc"])
    result = snakemake(project, "-n")
    assert result.returncode != 0 and "recipe.judge.batch_size: expected int, got 'abc'" in result.output


def test_stage_arguments_are_taken_verbatim_and_unknown_ones_refused(monkeypatch):
    from uniembed.config import OVERRIDES_ENV, stage_config
    monkeypatch.setenv(OVERRIDES_ENV, '["recipe.judge.batch_size=7"]')
    cfg = stage_config(["--config-dir", str(ROOT / "config"), "--stage", "out_dir", "a b;'$(x)", "--stage", "scores", '["p q"]'])
    assert cfg.stage.out_dir == "a b;'$(x)" and list(cfg.stage.scores) == ["p q"] and cfg.recipe.judge.batch_size == 7
    with pytest.raises(SystemExit, match="unknown stage argument"):
        stage_config(["--config-dir", str(ROOT / "config"), "--stage", "outdir", "x"])
