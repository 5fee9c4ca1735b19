"""The MIEB-style categories and the zero-shot split in the embedded default's DAG (``finished_run``): the tables
come out of `snakemake`, and training lifts what it should beyond the seed spread.

Seed spreads: sd over hn_umarvel's seeds 0-2 (the `umarvel` ablation's hard_negatives variant, its
``evaluate_mieb`` / ``evaluate`` on each repetition; 2-core AMD EPYC, deterministic on CPU)."""
import pytest

from uniembed.artifacts import read_parquet
from uniembed.evaluate.mieb.summary import CATEGORIES
from uniembed.evaluate.results import SCORES

TAGS = ("zero_shot", "pretrain_nli", "pretrain_captions", "pretrain_mbeir", "hn_umarvel", "hn_unime_v2", "distill")
#: MIEB-style task -> sd of hn_umarvel over seeds 0-2 (seeds 59.4 / 57.7 / 56.1 for retrieval, ...).
MIEB_SEED_SD = {"UniembedWorldT2IRetrieval": 1.66, "UniembedWorldShapeZeroShot": 0.60,
                "UniembedWorldShapeClustering": 0.41, "UniembedWorldShapeLinearProbe": 0.32,
                "UniembedWorldColorSwap": 4.21, "UniembedWorldPositionSwap": 1.04,
                "UniembedWorldMultipleChoice": 2.76, "UniembedWorldVisualSTS": 0.33}
#: (zero-shot dataset, task, metric) -> sd of hn_umarvel over seeds 0-2.
ZEROSHOT_SEED_SD = {("shapes2", 0, "Recall@1"): 2.68, ("shapes2", 3, "Recall@1"): 0.96,
                    ("sugarcrepe_replace_att", 3, "accuracy"): 2.55, ("sugarcrepe_swap_att", 3, "accuracy"): 2.55,
                    ("sugarcrepe_add_obj", 3, "accuracy"): 0.0}


def _mieb(run, tag):
    rows = read_parquet(run / "results" / "default" / "eval" / tag / "mieb.parquet", SCORES).to_pylist()
    return {r["dataset"]: r["value"] for r in rows}


def _zeroshot(run, tag):
    rows = read_parquet(run / "results" / "default" / "eval" / tag / "scores.parquet", SCORES).to_pylist()
    return {(r["dataset"], r["task_id"], r["metric"]): r["value"] for r in rows if r["benchmark"] == "zeroshot"}


def _gain(before: dict, after: dict, key, sd: dict) -> tuple[bool, str]:
    gain = after[key] - before[key]
    return gain > 2 * sd[key], f"{key}: {before[key]:.1f} -> {after[key]:.1f} (2 sd = {2 * sd[key]:.1f})"


@pytest.mark.slow
def test_every_model_has_its_mieb_table_and_the_run_its_zero_shot_tables(finished_run):
    run = finished_run / "results" / "default"
    for tag in TAGS:
        assert sorted(_mieb(finished_run, tag)) == sorted(MIEB_SEED_SD), tag
        assert set(_zeroshot(finished_run, tag)) >= set(ZEROSHOT_SEED_SD), tag
        assert (run / "benchmarks" / f"evaluate_mieb_{tag}.tsv").exists()
    per_stage = (run / "tables" / "per_stage.md").read_text()
    header = "| Model | " + " | ".join(f"{c} ({n})" for c, n in zip(CATEGORIES, (1, 1, 1, 1, 2, 1, 0, 1)))
    assert header + " | Mean (en) (8) |" in per_stage
    assert "Zero-shot (never trained on), UniME-V2 Table 2 layout" in per_stage
    papers = (run / "tables" / "papers.md").read_text()
    assert "| Model | shapes2 qi→ct R@1 | shapes2 qt→ci R@1 | SugarCrepe Replace | SugarCrepe Swap | SugarCrepe Add |" \
        in papers and "No published number of UniME-V2 Table 2" in papers


#: Measured (zero_shot -> hn_umarvel): retrieval nDCG@10 5.4 -> 59.4, zero-shot classification 8.3 -> 47.9,
#: colour swap 53.1 -> 74.0, position swap 54.2 -> 81.3, multiple choice 26.0 -> 41.7.
LIFTED = ("UniembedWorldT2IRetrieval", "UniembedWorldShapeZeroShot", "UniembedWorldColorSwap",
          "UniembedWorldPositionSwap", "UniembedWorldMultipleChoice")


@pytest.mark.slow
@pytest.mark.parametrize("task", LIFTED)
def test_training_lifts_the_mieb_style_text_image_tasks_beyond_the_seed_spread(finished_run, task):
    lifted, why = _gain(_mieb(finished_run, "zero_shot"), _mieb(finished_run, "hn_umarvel"), task, MIEB_SEED_SD)
    assert lifted, why


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="picture-only tasks do not gain: shape clustering NMI 16.5 -> 11.7 and the "
                                       "16-shot shape probe 58.1 -> 56.7 (seeds 56.9 +- 0.3); the tower is frozen "
                                       "(both papers' recipe) and k-means on the pictures clusters by size (NMI 79 "
                                       "before and after): docs/evaluation.md 'What training buys'")
@pytest.mark.parametrize("task", ["UniembedWorldShapeClustering", "UniembedWorldShapeLinearProbe"])
def test_training_lifts_shape_clustering_and_the_linear_probe_beyond_the_seed_spread(finished_run, task):
    lifted, why = _gain(_mieb(finished_run, "zero_shot"), _mieb(finished_run, "hn_umarvel"), task, MIEB_SEED_SD)
    assert lifted, why


#: Measured (zero_shot -> hn_umarvel): shapes2 t2i R@1 3.3 -> 19.2, i2t 3.3 -> 35.0, replace 50.0 -> 58.3,
#: add 71.7 -> 100.0.
ZEROSHOT_LIFTED = (("shapes2", 0, "Recall@1"), ("shapes2", 3, "Recall@1"), ("sugarcrepe_replace_att", 3, "accuracy"),
                   ("sugarcrepe_add_obj", 3, "accuracy"))


@pytest.mark.slow
@pytest.mark.parametrize("key", ZEROSHOT_LIFTED, ids=lambda k: f"{k[0]}-{k[1]}")
def test_training_lifts_the_unseen_split_beyond_the_seed_spread(finished_run, key):
    lifted, why = _gain(_zeroshot(finished_run, "zero_shot"), _zeroshot(finished_run, "hn_umarvel"), key,
                        ZEROSHOT_SEED_SD)
    assert lifted, why


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="swapping the two objects' colours stays near chance (43.3 -> 46.7, seeds "
                                       "43.9 +- 2.5): the captions' words are the same, the embedding is close to a "
                                       "bag of words (SugarCrepe's Swap is the papers' lowest column too)")
def test_training_lifts_the_colour_swap_of_the_unseen_split_beyond_the_seed_spread(finished_run):
    key = ("sugarcrepe_swap_att", 3, "accuracy")
    lifted, why = _gain(_zeroshot(finished_run, "zero_shot"), _zeroshot(finished_run, "hn_umarvel"), key,
                        ZEROSHOT_SEED_SD)
    assert lifted, why
