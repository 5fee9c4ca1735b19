"""The reranker, recall + rerank and distillation stages of the embedded default's DAG (U-MARVEL App. C,
§3.3), on the shared DAG run (``finished_run``)."""
import json

import pyarrow.parquet as pq
import pytest
import yaml

from uniembed.artifacts import read_parquet
from uniembed.evaluate.results import SCORES
from uniembed.model.loading import load_for_embedding

from . import mbeir_averages


def _recipe(project) -> dict:
    return yaml.safe_load((project / "config" / "recipe" / "tiny.yaml").read_text())



def _reranked_benchmarks(rows: list[dict]) -> list[dict]:
    """The rows of the benchmarks recall + rerank is evaluated on (M-BEIR and MMEB; the zero-shot sets are not)."""
    return [r for r in rows if r["benchmark"] in ("mbeir", "mmeb")]

@pytest.mark.slow
def test_reranker_trains_and_every_recalled_pair_is_scored(finished_run):
    run = finished_run / "results" / "default"
    recipe = _recipe(finished_run)
    summary = json.loads((run / "models" / "reranker_pointwise" / "training_summary.json").read_text())
    assert summary["finished"] and len(summary["history"]) == recipe["rerank"]["rerankers"]["pointwise"]["max_steps"]
    assert (run / "models" / "reranker_pointwise" / "adapter" / "adapter_config.json").is_file()

    tag = f"{recipe['rerank']['recall']}+pointwise"
    pairs = pq.read_table(run / "eval" / tag / "rerank_scores.parquet").to_pandas()
    assert (pairs["status"] == "ok").all() and pairs["score"].between(0, 1).all()
    # each (query, candidate) once: a query's local and global top-k share candidates, so k to 2k pairs
    assert not pairs.duplicated(["query_id", "candidate_id"]).any()
    per_query = pairs.groupby("query_id").size()
    assert per_query.between(recipe["rerank"]["top_k"], 2 * recipe["rerank"]["top_k"]).all()
    assert pairs["is_positive"].any()

    recall = _reranked_benchmarks(read_parquet(run / "eval" / recipe["rerank"]["recall"] / "scores.parquet",
                                               SCORES).to_pylist())
    reranked = read_parquet(run / "eval" / tag / "scores.parquet", SCORES).to_pylist()
    key = lambda r: (r["benchmark"], r["setting"], r["task_id"], r["dataset"], r["metric"])  # noqa: E731
    assert sorted(map(key, reranked)) == sorted(map(key, recall))
    table = (run / "tables" / "per_stage.md").read_text()
    assert f"| {tag} |" in table and "| distill |" in table


@pytest.mark.slow
def test_the_pointwise_reranker_from_the_judge_model_improves_recall_beyond_the_seed_spread(finished_run):
    """U-MARVEL+ (App. C eq. 4): recall + rerank over the recall model's top list, the reranker trained from the
    judge's instruct model, beats the recall model on the M-BEIR local average by more than twice the seed sd
    of the hard-negative stage (0.8, test_embedded_default). Measured: 70.5 -> 74.8 (global 48.3 -> 52.4)."""
    run = finished_run / "results" / "default"
    recall = _recipe(finished_run)["rerank"]["recall"]
    before, after = mbeir_averages(run, recall), mbeir_averages(run, f"{recall}+pointwise")
    assert after["local"] - before["local"] > 2 * 0.8, (before, after)


@pytest.mark.slow
# not strict: which side of its start distill ends on depends on the CPU's floating-point paths (see the reason)
@pytest.mark.xfail(strict=False, reason="distill ends below its start on an AMD EPYC (local 68.1 -> 67.1, global "
                                       "50.5 -> 48.6; an Intel Xeon gave 70.5 -> 71.0, 48.3 -> 48.6): "
                                       "locally within hn_umarvel's seed spread (sd 0.8), globally ~2 sd (0.9): "
                                       "docs/rerankers.md")
def test_distillation_ends_at_or_above_its_start(finished_run):
    """U-MARVEL §3.3: the student distilled from recall + rerank keeps at least what its start (the recall model,
    distill.from) retrieves, on both M-BEIR averages."""
    run = finished_run / "results" / "default"
    start = mbeir_averages(run, _recipe(finished_run)["distill"]["from"])
    distilled = mbeir_averages(run, "distill")
    assert distilled["local"] >= start["local"] and distilled["global"] >= start["global"], (start, distilled)


@pytest.mark.slow
def test_distillation_trains_on_a_tenth_of_the_queries_from_the_hard_negative_model(finished_run):
    run = finished_run / "results" / "default"
    recipe = _recipe(finished_run)
    teacher = json.loads((run / "distill" / "distill_summary.json").read_text())
    assert teacher["queries"] == round(recipe["distill"]["fraction"] * teacher["training_queries"])
    assert teacher["candidates_per_query"] == recipe["distill"]["candidates"]
    negatives = pq.read_table(run / "distill" / "hard_negatives.parquet").to_pandas()
    assert negatives["query_id"].nunique() == teacher["queries"]

    summary = json.loads((run / "models" / "distill" / "training_summary.json").read_text())
    assert summary["finished"]
    assert summary["dropped_queries"] == {"not_in_hard_negative_table": teacher["training_queries"] - teacher["queries"]}
    start = json.loads((run / "models" / recipe["distill"]["from"] / "model" / "uniembed_temperature.json").read_text())
    assert summary["history"][0]["temperature"] == pytest.approx(start["temperature"], rel=0.05)  # tau continues
    assert load_for_embedding(run / "models" / "distill" / "model").config.model_type == "qwen2_vl"
    assert (run / "eval" / "distill" / "scores.parquet").is_file()


@pytest.mark.slow
def test_the_fusion_weight_is_chosen_on_the_val_split(finished_run):
    """alpha = the grid value with the best mean Recall@k over the val split's lists (ties: the larger alpha),
    the val queries' pairs scored beside the test ones, and no val query in the test tables."""
    run = finished_run / "results" / "default"
    recipe = _recipe(finished_run)
    tag = f"{recipe['rerank']['recall']}+pointwise"
    choice = json.loads((run / "eval" / tag / "rerank_summary.json").read_text())
    assert choice["chosen_on"] == recipe["rerank"]["choose_alpha"]["split"] == "val"
    by_alpha = {float(a): v for a, v in choice["recall_at_k"].items()}
    assert sorted(by_alpha) == pytest.approx([i / 10 for i in range(11)])
    assert choice["alpha"] == max(by_alpha.items(), key=lambda item: (item[1], item[0]))[0]

    queries = pq.read_table(run / "curated" / "mbeir" / "queries.parquet", columns=["query_id", "split"]).to_pandas()
    val = set(queries.loc[queries["split"] == "val", "query_id"])
    assert choice["lists"] == 2 * len(val)   # local and global lists of every val query
    pairs = pq.read_table(run / "eval" / tag / "rerank_scores.parquet").to_pandas()
    assert val <= set(pairs["query_id"])
    counts = lambda t: sorted((r["benchmark"], r["setting"], r["dataset"], r["task_id"], r["n_queries"])  # noqa: E731
                              for r in _reranked_benchmarks(read_parquet(run / "eval" / t / "scores.parquet",
                                                                         SCORES).to_pylist()))
    assert counts(tag) == counts(recipe["rerank"]["recall"])   # the test lists only, as many as the recall model's


@pytest.mark.slow
def test_the_papers_tables_hold_every_stage_and_set_no_published_number_beside_synthetic_data(finished_run):
    papers = (finished_run / "results" / "default" / "tables" / "papers.md").read_text()
    for caption in ("U-MARVEL Table 7 layout", "U-MARVEL Table 14 layout", "U-MARVEL Table 13 layout",
                    "UniME-V2 Table 1 layout", "UniME-V2 Table 3 layout", "UniME-V2 Table 2 layout",
                    "U-MARVEL Table 8 layout"):
        assert caption in papers, caption
    assert "| Progressive transition | pretrain_mbeir |" in papers and "| Distillation | distill |" in papers
    assert "hn_umarvel+pointwise" in papers and "as printed (data/published)" not in papers
    assert papers.count("No published number of") == 7


@pytest.mark.slow
def test_the_listwise_reranker_generates_for_every_test_list_and_counts_what_it_could_not_parse(finished_run):
    """UniME-V2-Reranker inference: one generation per test list (M-BEIR local + global, MMEB); an unparsed one
    keeps the recall order, so with no parsed answer the scores are exactly the recall model's."""
    run = finished_run / "results" / "default"
    recipe = _recipe(finished_run)
    tag = f"{recipe['rerank']['recall']}+listwise"
    summary = json.loads((run / "eval" / tag / "rerank_summary.json").read_text())
    generations = pq.read_table(run / "eval" / tag / "rerank_scores.parquet").to_pandas()
    assert summary["mode"] == "listwise" and summary["depth"] == recipe["rerank"]["listwise_top_k"]
    assert summary["lists"] == len(generations) == summary["ok"] + summary["unparsed"] + summary["failed"]
    assert summary["failed"] == 0 and generations["candidate_ids"].map(len).max() == summary["depth"]
    recall = _reranked_benchmarks(read_parquet(run / "eval" / recipe["rerank"]["recall"] / "scores.parquet",
                                               SCORES).to_pylist())
    assert summary["lists"] == sum(r["n_queries"] for r in recall)
    if summary["ok"] == 0:
        reranked = read_parquet(run / "eval" / tag / "scores.parquet", SCORES).to_pylist()
        value = lambda rows: sorted((r["setting"], r["dataset"], r["metric"], r["value"]) for r in rows)  # noqa: E731
        assert value(reranked) == value(recall)


@pytest.mark.slow
def test_unime_v2s_reranker_trains_on_the_filtered_negatives_and_the_soft_label_summary_counts_fallback_rows(finished_run):
    """UniME-V2-Reranker (eq. 5-6) trains on the judge-filtered hard negatives, not the raw mined list; the
    soft-label model's training summary reports the share of its rows the filter's random fallback filled."""
    run = finished_run / "results" / "default"
    filtered = pq.read_table(run / "mining" / "filters" / "unime_v2" / "hard_negatives.parquet").to_pylist()
    usable = [r for r in filtered if r["negative_ids"]]
    summary = json.loads((run / "models" / "reranker_listwise" / "training_summary.json").read_text())
    assert summary["finished"] and summary["num_queries"] == len(usable)   # the judged queries with usable negatives
    soft = json.loads((run / "models" / "hn_unime_v2" / "training_summary.json").read_text())
    fallback = sum(r["outcome"] == "fallback_random" for r in usable)
    assert soft["hard_negative_outcomes"].get("fallback_random", 0) == fallback
    assert soft["fallback_fraction"] == pytest.approx(fallback / soft["num_queries"])
    assert soft["fallback_rows"] == "keep"
