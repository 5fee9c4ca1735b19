"""The workflow itself, run by Snakemake on the embedded default in a scratch copy of the project
(``finished_run``: tests/integration/conftest.py, once per session)."""
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from uniembed.artifacts import read_parquet
from uniembed.data.schemas import ARTIFACTS
from uniembed.evaluate.results import SCORES
from uniembed.mine.schemas import HARD_NEGATIVES, JUDGE_SCORES, MINED
from uniembed.model.loading import load_for_embedding

from tests.workflow.dag import snakemake

from . import mbeir_averages

@pytest.mark.slow
def test_full_run_produces_every_artifact(finished_run):
    run_dir = finished_run / "results" / "default"
    for source in ("mbeir", "mmeb", "nli", "captions"):
        summary = json.loads((run_dir / "curated" / source / "summary.json").read_text())
        assert summary["rows_in"] == summary["kept"] > 0
        for name, schema in ARTIFACTS.items():
            read_parquet(run_dir / "curated" / source / f"{name}.parquet", schema)
        assert (run_dir / "logs" / f"curate_{source}.log").stat().st_size > 0
        assert (run_dir / "benchmarks" / f"curate_{source}.tsv").exists()
    tables = (run_dir / "eval" / "zero_shot" / "tables.md").read_text()
    assert "M-BEIR, local pool" in tables and "MMEB P@1" in tables
    model = load_for_embedding(finished_run / "resources" / "models" / "tiny-qwen2vl")
    assert model.config.model_type == "qwen2_vl"


@pytest.mark.slow
def test_progressive_transition_trains_far_above_the_untrained_baseline(finished_run):
    """After stage 1c the held-out M-BEIR averages must be far above zero-shot.

    Margins: local average >= zero-shot + 20 points and >= 30 absolute; global >= zero-shot + 15.
    Why chance cannot pass: a pool has 130-200 candidates, so a model with no signal scores
    R@5 ~= 2.5-4% per task; over 7 tasks x 60 held-out queries the sd of such an average is
    ~1 point, so +20 points is > 15 sd. Observed on 2 CPU cores (vision-pretrained tower): 18.8 -> 72.9 local,
    10.0 -> 46.4 global (random tower: 11.9 -> 53.1, 3.8 -> 41.0).
    """
    per_stage = {tag: mbeir_averages(finished_run / "results" / "default", tag)
                 for tag in ("zero_shot", "pretrain_nli", "pretrain_captions", "pretrain_mbeir")}
    zero, final = per_stage["zero_shot"], per_stage["pretrain_mbeir"]
    assert final["local"] >= zero["local"] + 20 and final["local"] >= 30, per_stage
    assert final["global"] >= zero["global"] + 15, per_stage
    for stage in ("pretrain_nli", "pretrain_captions", "pretrain_mbeir"):
        model_dir = finished_run / "results" / "default" / "models" / stage
        assert load_for_embedding(model_dir / "model").config.model_type == "qwen2_vl"
        assert (model_dir / "adapter" / "adapter_config.json").is_file()
    table = (finished_run / "results" / "default" / "tables" / "per_stage.md").read_text()
    assert "| Task | Dataset | Metric | zero_shot | pretrain_nli | pretrain_captions | pretrain_mbeir |" in table


@pytest.mark.slow
def test_mining_judge_and_filter_artifacts(finished_run):
    mining = finished_run / "results" / "default" / "mining"
    mined = read_parquet(mining / "mined.parquet", MINED)
    judged = read_parquet(mining / "judge_scores.parquet", JUDGE_SCORES)
    unime = read_parquet(mining / "filters" / "unime_v2" / "hard_negatives.parquet", HARD_NEGATIVES)
    umarvel = read_parquet(mining / "filters" / "umarvel" / "hard_negatives.parquet", HARD_NEGATIVES)
    judged_queries = set(judged["query_id"].to_pylist())
    assert len(judged_queries) == 1680 and set(unime["query_id"].to_pylist()) == judged_queries  # every training query
    assert set(judged["status"].to_pylist()) == {"ok"}
    assert sum(judged["is_positive"].to_pylist()) >= len(judged_queries)       # every positive is judged too
    assert mined.num_rows == 1680 * 10                                          # all train queries, top 10
    assert all(len(ids) >= 8 for ids in unime["negative_ids"].to_pylist())
    assert umarvel.num_rows == 1680 and set(umarvel["strategy"].to_pylist()) == {"umarvel"}  # no judge needed
    summary = json.loads((mining / "filters" / "unime_v2" / "filter_summary.json").read_text())
    assert summary["queries_in"] == 1680 and sum(summary["outcomes"].values()) == 1680
    quality = json.loads((mining / "filters" / "unime_v2" / "judge_quality.json").read_text())
    assert 0.0 <= quality["roc_auc"] <= 1.0 and "ROC-AUC" in (mining / "filters" / "unime_v2" / "judge_quality.md").read_text()
    assert not (mining / "filters" / "umarvel" / "judge_quality.json").exists()


def _judge_numbers(run: Path) -> dict:
    """The judge's measures on the mined pairs (judge_quality.json against the world's truth; the filter's fallback)."""
    filters = run / "results" / "default" / "mining" / "filters" / "unime_v2"
    quality = json.loads((filters / "judge_quality.json").read_text())
    summary = json.loads((filters / "filter_summary.json").read_text())
    return {"roc_auc": quality["roc_auc"], "fallback": summary["fallback_fraction"],
            "precision": quality["removal_precision"], "recall": quality["removal_recall"],
            "with_match": quality["queries_with_genuine_match_fraction"]}


@pytest.mark.slow
def test_the_judge_model_knows_more_than_an_untrained_one(finished_run):
    """The judge's own instruct model (config/judge_model/tiny.yaml) separates the judged pairs that truly match
    from those that do not and leaves UniME-V2's filter few fallbacks. Measured (deterministic on CPU) on the pairs
    the vision-pretrained embedder mines (every training query judged): ROC-AUC 0.68, fallback 9%, removal recall
    0.70, 40% of queries with a genuine match; on the random tower's easier mined pairs 0.81, 7%. The untrained model it replaced: 0.50, 56%."""
    numbers = _judge_numbers(finished_run)
    assert numbers["roc_auc"] >= 0.65 and numbers["fallback"] <= 0.2 and numbers["recall"] >= 0.5, numbers
    assert numbers["with_match"] >= 0.15, numbers   # something for the filter to find


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="the judge's targets ROC-AUC >= 0.85 and removal precision >= 0.5 are not "
                                       "reached yet (0.73, 0.11 on an AMD EPYC; 0.68, 0.09 on an Intel Xeon): "
                                       "docs/hard-negatives.md")
def test_the_judge_reaches_the_quality_unime_v2s_filter_needs(finished_run):
    numbers = _judge_numbers(finished_run)
    assert numbers["roc_auc"] >= 0.85 and numbers["fallback"] <= 0.2, numbers
    assert numbers["precision"] >= 0.5 and numbers["recall"] >= 0.5 and numbers["with_match"] >= 0.15, numbers


@pytest.mark.slow
def test_hard_negative_training_trains_both_objectives(finished_run):
    """UniME-V2's soft-label model and U-MARVEL's filtered-negative model, each evaluated as its own column."""
    run_dir = finished_run / "results" / "default"
    for objective, name in (("umarvel", "info_nce"), ("unime_v2", "soft_label")):
        summary = json.loads((run_dir / "models" / f"hn_{objective}" / "training_summary.json").read_text())
        assert summary["finished"] and summary["objective"] == name and summary["num_queries"] > 0
        assert load_for_embedding(run_dir / "models" / f"hn_{objective}" / "model").config.model_type == "qwen2_vl"
    umarvel = json.loads((run_dir / "models" / "hn_umarvel" / "training_summary.json").read_text())
    previous = json.loads((run_dir / "models" / "pretrain_mbeir" / "training_summary.json").read_text())
    assert umarvel["history"][0]["temperature"] == pytest.approx(previous["final_temperature"], rel=0.05)  # continued
    unime = json.loads((run_dir / "models" / "hn_unime_v2" / "training_summary.json").read_text())
    usable = [r for r in pq.read_table(run_dir / "mining" / "filters" / "unime_v2" / "hard_negatives.parquet").to_pylist()
              if r["negative_ids"]]
    assert unime["num_queries"] == len(usable) and unime["final_temperature"] == pytest.approx(0.02)
    assert unime["step"] == 150 and {"kl_p_q", "kl_q_p", "p_positive", "q_positive"} <= set(unime["history"][-1])
    table = (run_dir / "tables" / "per_stage.md").read_text()
    assert "| pretrain_mbeir | hn_umarvel | hn_unime_v2 |" in table


# U-MARVEL §3.2.2 on the embedded default (vision-pretrained tower): hn_umarvel against its start (pretrain_mbeir,
# 72.9 / 46.4), 150 steps, seeds 0 / 1 / 2 (`ablation_umarvel`): local 71.3 +- 0.8, global 48.3 +- 0.1; the
# in-batch-only control, same steps: local 72.4 +- 0.6, global 46.1 +- 0.9 (docs/training.md "Vision pretraining"). The DAG's
# model is seed 0. The margin is twice the larger sd of the stage and its control.
HN_SEED_SD = {"local": 0.8, "global": 0.9}


@pytest.mark.slow
def test_umarvel_hard_negatives_improve_global_retrieval_beyond_the_seed_spread(finished_run):
    """Filtered hard negatives from the global pool lift the global-pool average over the start."""
    run_dir = finished_run / "results" / "default"
    start, trained = mbeir_averages(run_dir, "pretrain_mbeir"), mbeir_averages(run_dir, "hn_umarvel")
    assert trained["global"] - start["global"] > 2 * HN_SEED_SD["global"], (start, trained)


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="on the vision-pretrained tower hn_umarvel ends below its start locally "
                                       "(70.0 -> 68.1 on an AMD EPYC; 72.9 -> 70.5 on an Intel Xeon, seeds 71.3 +- 0.8, "
                                       "in-batch control 72.4 +- 0.6): docs/training.md 'Vision pretraining'")
def test_umarvel_hard_negatives_improve_local_retrieval_beyond_the_seed_spread(finished_run):
    run_dir = finished_run / "results" / "default"
    start, trained = mbeir_averages(run_dir, "pretrain_mbeir"), mbeir_averages(run_dir, "hn_umarvel")
    assert trained["local"] - start["local"] > 2 * HN_SEED_SD["local"], (start, trained)


# The image-side M-BEIR tasks (dataset, task id) and their local Recall@5 from the random tower (the DAG with
# model.vision_pretrain=null, hn_umarvel, deterministic on CPU), and the sd of each over hn_umarvel's seeds 0-2 on
# the pretrained tower (`ablation_umarvel`).
IMAGE_SIDE_RANDOM_TOWER = {("ShapeCaption", 0): 36.7, ("ShapeCaption", 3): 45.0, ("ShapeTwin", 4): 61.7,
                           ("ShapeEdit", 7): 21.7, ("ShapeQA", 6): 25.0}
IMAGE_SIDE_SEED_SD = {("ShapeCaption", 0): 1.67, ("ShapeCaption", 3): 0.96, ("ShapeTwin", 4): 0.96,
                      ("ShapeEdit", 7): 0.96, ("ShapeQA", 6): 1.67}


def _image_side_gains(run: Path) -> dict:
    rows = read_parquet(run / "results" / "default" / "eval" / "hn_umarvel" / "scores.parquet", SCORES).to_pylist()
    local = {(r["dataset"], int(r["task_id"])): r["value"] for r in rows
             if r["benchmark"] == "mbeir" and r["setting"] == "local"}
    return {task: local[task] - before for task, before in IMAGE_SIDE_RANDOM_TOWER.items()}


@pytest.mark.slow
def test_the_vision_pretrained_tower_lifts_the_image_side_tasks_beyond_the_seed_spread(finished_run):
    """Measured (hn_umarvel, local; random tower on an Intel Xeon): ShapeCaption qt->ci 36.7 -> 56.7 on an AMD EPYC
    (63.3 on the Xeon), qi->ct 45.0 -> 80.0 (83.3), ShapeTwin 61.7 -> 76.7 (81.7), ShapeEdit 21.7 -> 45.0 (46.7)
    (ShapeQA: the next test)."""
    gains = _image_side_gains(finished_run)
    for task in [t for t in IMAGE_SIDE_RANDOM_TOWER if t[0] != "ShapeQA"]:
        assert gains[task] > 2 * IMAGE_SIDE_SEED_SD[task], (task, gains)


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="ShapeQA does not gain from the pretrained tower (25.0 -> 25.0; seeds 26.7 +- "
                                       "1.7): docs/training.md 'Vision pretraining'")
def test_the_vision_pretrained_tower_lifts_shapeqa_beyond_the_seed_spread(finished_run):
    task = ("ShapeQA", 6)
    assert _image_side_gains(finished_run)[task] > 2 * IMAGE_SIDE_SEED_SD[task]


@pytest.mark.slow
def test_rerun_is_a_no_op_and_forcerun_reruns_one_stage(finished_run):
    assert "Nothing to be done" in snakemake(finished_run, "-n").stdout
    plan = snakemake(finished_run, "-n", "--forcerun", "curate").stdout
    assert "curate" in plan and "build_model" not in plan and "generate_data" not in plan


@pytest.mark.slow
def test_learnable_temperature_moves_in_stage_1c_and_is_logged(finished_run):
    """U-MARVEL Finding 4 / Table 12: the learnable tau must actually learn (it used to stay at 0.0503)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = finished_run / "results" / "default"
    summary = json.loads((run_dir / "models" / "pretrain_mbeir" / "training_summary.json").read_text())
    tau = summary["final_temperature"]
    assert abs(tau - 0.05) / 0.05 > 0.10, tau
    events = EventAccumulator(str(run_dir / "tensorboard" / "pretrain_mbeir"))
    events.Reload()
    logged = [e.value for e in events.Scalars("train/temperature")]
    assert logged[0] != logged[-1] and logged[-1] == pytest.approx(tau, rel=1e-5)


@pytest.mark.slow
def test_report_holds_the_figures_with_captions_and_the_workflow_lints_clean(finished_run, tmp_path):
    run_dir = finished_run / "results" / "default"
    for path in ("tables/per_stage.png", "tables/temperature.png", "tables/training_curves.png",
                 "mining/filters/unime_v2/judge_scores.png"):
        assert (run_dir / path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    report = tmp_path / "report.html"
    result = snakemake(finished_run, "--report", str(report))
    assert result.returncode == 0, result.output[-3000:]
    html = report.read_text()
    for caption in ("Headline held-out scores per model", "The contrastive temperature", "Every evaluated model",
                    "The training loss per step of every training stage", "of every judged pair"):
        assert caption in html, caption
    lint = snakemake(finished_run, "--lint")
    assert lint.returncode == 0 and "good condition" in lint.output, lint.output[-3000:]


@pytest.mark.slow
def test_the_results_page_and_the_readme_table_have_this_runs_shape(finished_run):
    """docs/results.md and the README's summary are generated from a run (scripts/docs_results.py); this run, on the
    code under test, must give them the same tables, rows, columns and jobs (numbers may differ by machine)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "scripts/docs_results.py", str(finished_run / "results" / "default"),
                           "--check"], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
