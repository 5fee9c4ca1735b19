"""`snakemake ablation_judge_quality` on the session's finished embedded default (one AUC, one seed, a few steps:
the sweep's numbers are in docs/hard-negative-training.md; this checks the study's plumbing end to end)."""
import json

import pyarrow.parquet as pq
import pytest
import yaml

from tests.workflow.dag import snakemake

STUDY = "recipe.ablations.judge_quality"


@pytest.mark.slow
def test_the_judge_quality_study_trains_on_a_simulated_judges_negatives_and_draws_its_table(finished_run, tmp_path):
    extra = tmp_path / "study.yaml"
    extra.write_text(yaml.safe_dump({"hydra_overrides": [
        f"{STUDY}.seeds=[0]", f"{STUDY}.judge_aucs=[1.0]",
        *(f"+{STUDY}.variants.{v}.max_steps=3" for v in ("no_hard_negatives", "hard_negatives", "soft_labels"))]}))
    result = snakemake(finished_run, "ablation_judge_quality", "--configfile", "config/config.yaml", str(extra),
                       timeout=1200)
    assert result.returncode == 0, result.output[-3000:]
    run = finished_run / "results" / "default"
    study = run / "ablations" / "judge_quality"
    judged = pq.read_table(study / "judges" / "auc1_seed0" / "judge_scores.parquet").to_pylist()
    assert {r["judge_model"] for r in judged} == {"simulated(auc=1, seed=0)"}   # the judge and its settings
    real = pq.read_table(run / "mining" / "judge_scores.parquet", columns=["query_id", "candidate_id"]).to_pylist()
    assert sorted((r["query_id"], r["candidate_id"]) for r in judged) == sorted((r["query_id"], r["candidate_id"]) for r in real)
    values = json.loads((study / "values.json").read_text())
    quality = values["judge_quality"]
    assert quality["1"]["roc_auc"] == [pytest.approx(1.0)]          # a sure judge separates every judged pair
    assert quality["1"]["removal_precision"][0] > quality["real"]["removal_precision"][0]
    assert set(values["values"]) == {"no_hard_negatives", "hard_negatives", "soft_labels", "hard_negatives@auc1",
                                     "soft_labels@auc1"}
    summary = json.loads((run / "models" / "ablations" / "judge_quality" / "soft_labels@auc1" / "seed0" /
                          "training_summary.json").read_text())
    assert summary["finished"] and summary["step"] == 3 and summary["objective"] == "soft_label"
    assert summary["history"][0]["q_positive"] > 0.5      # a sure judge's soft labels put most mass on the positive
    table = (study / "judge_quality.md").read_text()
    assert "| simulated 1 |" in table and "| run's judge |" in table and "no_hard_negatives (no judge)" in table
    assert (study / "figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
