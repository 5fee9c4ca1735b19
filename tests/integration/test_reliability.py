"""Reruns of a finished embedded-default run do exactly what they should: a deleted intermediate is
rebuilt with what depends on it, a changed setting reruns only the rules that depend on it, and a
different base model reruns everything made from it (dry runs on the session's finished run)."""
import shutil

import pytest
import yaml

from tests.workflow.dag import planned_jobs, snakemake


def _plan(project, tmp_path, overrides=()):
    extra = tmp_path / "extra.yaml"
    extra.write_text(yaml.safe_dump({"hydra_overrides": list(overrides)}))
    result = snakemake(project, "-n", "--configfile", "config/config.yaml", str(extra))
    assert result.returncode == 0, result.output[-3000:]
    return {} if "Nothing to be done" in result.output else planned_jobs(result.output)


@pytest.mark.slow
def test_a_deleted_intermediate_is_rebuilt_with_everything_after_it(finished_run, tmp_path):
    stage = finished_run / "results" / "default" / "models" / "pretrain_nli"
    aside = tmp_path / "aside"
    shutil.move(stage, aside)
    try:
        plan = _plan(finished_run, tmp_path)
    finally:
        shutil.move(aside, stage)
    assert plan["pretrain"] == 3 and plan["evaluate"] == 6 and plan["train_hn"] == 2   # + distill's evaluation
    assert {"mine", "judge", "filter", "judge_quality", "tables", "train_reranker", "rerank", "distill_data",
            "distill"} <= set(plan)
    assert "curate" not in plan and "build_model" not in plan
    assert _plan(finished_run, tmp_path) == {}


@pytest.mark.slow
@pytest.mark.parametrize("override, expected", [
    # the listwise reranker (UniME-V2's) trains on the unime_v2 filter's hard negatives
    ("recipe.judge.batch_size=8", {"judge", "filter", "judge_quality", "train_hn", "evaluate", "evaluate_mieb",
                                   "tables", "train_reranker", "rerank"}),
    ("recipe.filters.unime_v2.params.beta=0.2", {"filter", "judge_quality", "train_hn", "evaluate", "evaluate_mieb",
                                                 "tables", "train_reranker", "rerank"}),
    # hn_umarvel is the recall model of rerank and the start of distillation
    ("recipe.train_hn.objectives.umarvel.max_steps=7", {"train_hn", "evaluate", "evaluate_mieb", "tables", "rerank",
                                                        "distill_data", "distill"}),
    # rerank and distill_data embed with the evaluation settings (evaluate_mieb does not: only distill's model)
    ("recipe.evaluate.batch_size=8", {"evaluate", "tables", "rerank", "distill_data", "distill", "evaluate_mieb"}),
    # the rerankers train on the mined table
    ("recipe.pretrain.stages.mbeir.optimizer.lr=0.002", {"pretrain", "evaluate", "evaluate_mieb", "tables", "mine",
                                                         "judge", "filter", "judge_quality", "train_hn",
                                                         "train_reranker", "rerank", "distill_data", "distill"}),
    # the judge's model: its instruct training (a resource), then everything the judge and the rerankers feed
    ("judge_model.instruct.lr=0.002", {"instruct_judge_model", "judge", "filter", "judge_quality", "train_hn",
                                       "evaluate", "evaluate_mieb", "tables", "train_reranker", "rerank",
                                       "distill_data", "distill"}),
    ("data.sources.nli.path=resources/synthetic/nli/other.csv", {"curate", "pretrain", "evaluate", "evaluate_mieb",
                                                                 "tables", "mine", "judge", "filter", "judge_quality",
                                                                 "train_hn", "train_reranker", "rerank", "distill_data",
                                                                 "distill"}),
    # a source's declared sizes feed the cost plan only
    ("+data.sources.mbeir.declared={queries: {train: 9}, candidates: 9, pool: 9, query_tokens: 9, candidate_tokens: 9}",
     set()),
])
def test_a_changed_setting_reruns_only_what_depends_on_it(finished_run, tmp_path, override, expected):
    plan = _plan(finished_run, tmp_path, [override])
    assert set(plan) - {"all", "run_manifest"} == expected, plan


@pytest.mark.slow
@pytest.mark.parametrize("override", ["+recipe.rerank.choose_alpha.grid=[0.0,0.5,1.0]", "recipe.rerank.alpha=0.3",
                                      "recipe.rerank.top_k=8", "recipe.rerank.listwise_top_k=4"])
def test_a_rerank_setting_reruns_only_its_own_rerankers_job(finished_run, tmp_path, override):
    """Each rerank job's params hold only its own reranker's settings: the pointwise fusion settings do not
    rerun the listwise job, and the listwise depth does not rerun the pointwise one (2 rerank jobs in all)."""
    plan = _plan(finished_run, tmp_path, [override])
    assert {k: v for k, v in plan.items() if k not in ("all", "run_manifest")} == {"rerank": 1, "tables": 1}, plan


@pytest.mark.slow
def test_a_different_base_model_reruns_everything_made_from_it(finished_run, tmp_path):
    other = tmp_path / "other-model"
    shutil.copytree(finished_run / "resources" / "models" / "tiny-qwen2vl", other)
    plan = _plan(finished_run, tmp_path, ["model=qwen2vl_7b", f"model.path={other}",
                                         "model.architecture=null"])
    assert plan["pretrain"] == 3 and plan["evaluate"] == 7 and {"mine", "judge", "filter", "tables", "train_hn",
                                                                "train_reranker", "distill"} <= set(plan)
    assert "curate" not in plan and "generate_data" not in plan


@pytest.mark.slow
@pytest.mark.parametrize("module, remade, kept", [
    ("data/synthetic/mbeir.py", {"generate_data", "curate", "pretrain", "evaluate"}, {"build_model"}),
    ("model/tiny.py", {"build_model", "pretrain", "evaluate"}, {"generate_data", "curate"}),
])
def test_a_change_to_the_generator_or_builder_code_remakes_its_output(finished_run, tmp_path, module, remade, kept):
    """The world and the tiny model are keyed by their code too: an edited generator must not leave a
    stale world in resources/ (the workflow imports the edited copy through PYTHONPATH)."""
    src = tmp_path / "src"
    shutil.copytree(finished_run / "src", src)
    with open(src / "uniembed" / module, "a") as handle:
        handle.write("\n# an edit\n")
    result = snakemake(finished_run, "-n", env={"PYTHONPATH": str(src)})
    assert result.returncode == 0, result.output[-3000:]
    plan = planned_jobs(result.output)
    assert remade <= set(plan) and not kept & set(plan), plan
    assert "Nothing to be done" in snakemake(finished_run, "-n").output
