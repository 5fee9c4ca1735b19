"""Bad input stops the workflow with a clear message and keeps what is already made: a typo in the config fails
the parse naming the key; a curation that meets a broken record fails naming the file and the line, and the world
it read stays (on the small world, so no test waits on the embedded default's run)."""
import yaml

from tests.workflow.dag import SIZES, scratch_project, snakemake


def test_config_with_a_typo_fails_naming_the_key(tmp_path):
    project = scratch_project(tmp_path, hydra_overrides=[SIZES])
    cfg = yaml.safe_load((project / "config" / "config.yaml").read_text())
    cfg["resourcse"] = cfg.pop("resources")
    (project / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    result = snakemake(project, "-n")
    assert result.returncode != 0 and "resourcse" in result.output


def test_failed_curation_keeps_upstream_outputs_and_names_the_line(tmp_path):
    project = scratch_project(tmp_path, hydra_overrides=[SIZES])
    assert snakemake(project, "generate_data").returncode == 0
    bad = sorted((project / "resources" / "synthetic" / "mbeir" / "query" / "test").glob("*.jsonl"))[0]
    lines = bad.read_text().splitlines()
    bad.write_text("\n".join(lines[:2] + [lines[2][: len(lines[2]) // 2]]) + "\n")
    result = snakemake(project, "results/default/curated/mbeir/summary.json")
    assert result.returncode != 0
    log = (project / "results" / "default" / "logs" / "curate_mbeir.log").read_text()
    assert f"{bad.name}:3: expected one complete JSON object per line" in log
    assert (project / "resources" / "synthetic" / "manifest.json").exists()
    assert not (project / "results" / "default" / "curated" / "mbeir" / "summary.json").exists()
