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
