"""Config values reach the shell quoted: spaces and shell metacharacters in paths neither break a
rule nor run anything (issue: `results='x;touch PWNED;#'` ran the injected command)."""
import pytest

from tests.conftest import SMALL_WORLD

from .dag import scratch_project, snakemake

HOSTILE_RESULTS = "res ults;touch PWNED;#"
HOSTILE_RESOURCES = "reso'urces $(touch PWNED2) `touch PWNED3`"


@pytest.mark.slow
def test_paths_with_spaces_and_metacharacters_run_without_injection(tmp_path):
    sizes = "{" + ", ".join(f"{k}: {v}" for k, v in SMALL_WORLD.items()) + "}"
    short = ["model.vision_pretrain.steps=5", "++model.vision_pretrain.probe_train=10", "++model.vision_pretrain.probe_test=10",
             "recipe.pretrain.stages.nli.max_steps=2", "recipe.pretrain.stages.nli.batch_size=4"]   # quoting, not quality
    project = scratch_project(tmp_path, hydra_overrides=[f"data.generator.sizes={sizes}", *short],
                              results=HOSTILE_RESULTS, resources=HOSTILE_RESOURCES)
    run_dir = project / HOSTILE_RESULTS / "default"
    targets = [f"{HOSTILE_RESULTS}/default/models/pretrain_nli", f"{HOSTILE_RESULTS}/default/eval/zero_shot/scores.parquet"]
    result = snakemake(project, *targets)
    assert result.returncode == 0, result.output[-4000:]
    assert not list(project.rglob("PWNED*")) and not list(tmp_path.parent.glob("PWNED*"))
    assert (project / HOSTILE_RESOURCES / "models" / "tiny-qwen2vl" / "config.json").is_file()
    assert (run_dir / "models" / "pretrain_nli" / "model" / "config.json").is_file()
    assert (run_dir / "logs" / "curate_nli.log").stat().st_size > 0
    assert "Nothing to be done" in snakemake(project, "-n", *targets).output


def test_a_run_name_with_shell_metacharacters_is_refused_at_parse_time(tmp_path):
    project = scratch_project(tmp_path, run_name="x;touch PWNED")
    result = snakemake(project, "-n")
    assert result.returncode != 0 and "run_name" in result.output and not list(project.rglob("PWNED*"))


def test_a_path_with_an_interpolation_marker_is_refused_naming_it(tmp_path):
    project = scratch_project(tmp_path, resources="a${oops}")
    result = snakemake(project, "-n")
    assert result.returncode != 0 and "a${oops}" in result.output
