"""`snakemake objembed` on the session's finished embedded default (2 seeds of 300 steps instead of 3 of 600: the full
study's numbers are in docs/evaluation.md): the region set curated from its public files, object embedders trained
from hn_umarvel, and grounding, local and global retrieval against the same model before training and the run's
whole-image embedders."""
import json

import pyarrow.parquet as pq
import pytest
import yaml

from tests.workflow.dag import snakemake

SEEDS = ("objembed_seed0", "objembed_seed1")


@pytest.fixture(scope="module")
def objembed_run(finished_run, tmp_path_factory):
    extra = tmp_path_factory.mktemp("objembed") / "objembed.yaml"
    extra.write_text(yaml.safe_dump({"hydra_overrides": ["recipe.objembed.train.seeds=[0,1]",
                                                         "recipe.objembed.train.max_steps=300"]}))
    result = snakemake(finished_run, "objembed", "--configfile", "config/config.yaml", str(extra), timeout=1200)
    assert result.returncode == 0, result.output[-3000:]
    return finished_run / "results" / "default"


@pytest.mark.slow
def test_snakemake_objembed_writes_the_region_tables_the_models_and_the_tables(objembed_run):
    counts = json.loads((objembed_run / "regions" / "objects" / "summary.json").read_text())
    assert counts["train"]["images.parquet"] == 512 and counts["eval"]["images.parquet"] == 100
    assert counts["train"]["quarantine.parquet"] == counts["eval"]["quarantine.parquet"] == 0
    for seed in (0, 1):
        model = objembed_run / "models" / "objembed" / f"seed{seed}" / "model"
        assert (model / "object_heads.safetensors").is_file() and (model / "config.json").is_file()
    tables = objembed_run / "tables"
    text = (tables / "objects.md").read_text()
    assert "ObjEmbed §4 layout" in text and "| zero_shot | whole-image |" in text and "| objembed_seed1 | objembed |" in text
    summary = json.loads((tables / "objects.json").read_text())
    assert summary["expressions"] == 350 and summary["local_queries"] > 50
    timing = {t["proposals"]: t["ms_per_image"] for t in summary["timing"] if t["proposals"] is not None}
    assert sorted(timing) == [1, 10, 50] and all(ms > 0 for ms in timing.values())
    grounding = pq.read_table(tables / "objects_grounding.parquet").to_pylist()
    assert {r["model"] for r in grounding} == {"objembed_before", *SEEDS}


@pytest.mark.slow
def test_training_lifts_grounding_and_local_retrieval_far_above_chance_and_the_whole_image_embedders(objembed_run):
    """Every trained seed grounds and retrieves far above chance, above the object embedder before training and above
    the run's whole-image embedders on the same queries, each by more than the two seeds differ."""
    rows = pq.read_table(objembed_run / "tables" / "objects_scores.parquet").to_pylist()
    value = {(r["model"], r["task"], r["metric"]): r["value"] for r in rows}
    chance = value[("objembed_before", "grounding", "chance")]
    grounding = [value[(m, "grounding", "accuracy@0.5")] for m in SEEDS]
    spread = abs(grounding[0] - grounding[1])
    assert min(grounding) > 2.5 * chance
    assert min(grounding) - value[("objembed_before", "grounding", "accuracy@0.5")] > max(spread, 10)
    local = [value[(m, "local", "R@5")] for m in SEEDS]
    best_whole = max(value[(m, "local", "R@5")] for m in ("zero_shot", "hn_umarvel"))
    gallery = json.loads((objembed_run / "tables" / "objects.json").read_text())["local_queries"]   # one image each
    assert min(local) > 3 * 100 * 5 / gallery                           # 3 x the R@5 of a random ranking
    assert min(local) - max(best_whole, value[("objembed_before", "local", "R@5")]) > max(abs(local[0] - local[1]), 10)
