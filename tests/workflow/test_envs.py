"""envs/*.yaml and the pyproject extras list the same packages."""
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ENVS = PYPROJECT["tool"]["uniembed"]["envs"]


def pip_requirements(env_file: Path) -> list[str]:
    deps = yaml.safe_load(env_file.read_text())["dependencies"]
    return next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)


def test_every_env_file_is_declared_and_vice_versa():
    assert sorted(p.stem for p in (ROOT / "envs").glob("*.yaml")) == sorted(ENVS)


@pytest.mark.parametrize("env", sorted(ENVS))
def test_env_file_matches_pyproject(env):
    extras = PYPROJECT["project"]["optional-dependencies"]
    expected = PYPROJECT["project"]["dependencies"] + [d for e in ENVS[env] for d in extras[e]]
    assert sorted(pip_requirements(ROOT / "envs" / f"{env}.yaml")) == sorted(expected)


def test_rules_only_use_declared_envs():
    for rule_file in (ROOT / "workflow" / "rules").glob("*.smk"):
        for line in rule_file.read_text().splitlines():
            if "envs/" in line and ".yaml" in line:
                name = line.split("envs/")[1].split(".yaml")[0]
                assert name in ENVS, f"{rule_file.name} uses undeclared env {name}"
