"""The study-only simulated judge (uniembed.judge.simulated): scores from the world's truth with noise calibrated
to a requested ROC-AUC, each pair's score independent of its shard and order, refused outside the synthetic
world when the workflow is parsed, and run by the judge stage over the world's truth file."""
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from uniembed.config import compose_config, hydra_quote
from uniembed.evaluate.judge_quality import read_truth, roc_auc
from uniembed.judge.pairs import JudgePair
from uniembed.judge.simulated import PERFECT_SEPARATION, SimulatedJudge, separation
from uniembed.mine.schemas import JUDGE_SCORES
from uniembed.stages import judge as judge_stage
from uniembed.workflow_checks import RecipeError, check_recipe

from . import mined_table

ROOT = Path(__file__).resolve().parents[2]


def _pairs(n_matches: int, n_others: int) -> tuple[list[JudgePair], dict[str, set[str]]]:
    """Pairs of 100 queries: the first ``n_matches`` pairs are genuine matches in the truth, the rest are not."""
    pairs, truth = [], {f"q{i}": set() for i in range(100)}
    for i in range(n_matches + n_others):
        qid, cid = f"q{i % 100}", f"c{i}"
        if i < n_matches:
            truth[qid].add(cid)
        pairs.append(JudgePair(qid, cid, False, 1, None, None))
    return pairs, truth


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


@pytest.mark.parametrize("auc", [0.5, 0.6, 0.75, 0.9, 0.99])
def test_the_separation_gives_the_requested_auc_by_the_normal_cdf(auc):
    """A match's logit minus a non-match's is N(d, 2): P(> 0) = Phi(d / sqrt(2)) must be the requested AUC."""
    assert _phi(separation(auc) / math.sqrt(2.0)) == pytest.approx(auc, abs=1e-9)


@pytest.mark.parametrize("auc", [0.5, 0.7, 0.8, 0.9])
def test_the_measured_roc_auc_is_the_requested_one(auc):
    pairs, truth = _pairs(3000, 3000)
    results = SimulatedJudge(truth, auc, seed=1).score(pairs)
    labels = [p.candidate_id in truth[p.query_id] for p in pairs]
    # sd of an AUC estimate from 3,000 + 3,000 pairs is below 0.008: 0.025 is > 3 sd
    assert roc_auc([r.score for r in results], labels) == pytest.approx(auc, abs=0.025)


def test_a_perfect_judge_ranks_every_match_first_and_reports_its_logits():
    pairs, truth = _pairs(500, 1500)
    results = SimulatedJudge(truth, 1.0).score(pairs)
    labels = np.array([p.candidate_id in truth[p.query_id] for p in pairs])
    scores = np.array([r.score for r in results])
    assert roc_auc(scores, labels) == 1.0 and scores[labels].min() > scores[~labels].max()
    for result in results:   # s = e_yes / (e_yes + e_no), as every backend reports it
        assert result.status == "ok" and result.no_logit == 0.0
        assert result.score == pytest.approx(1 / (1 + math.exp(-result.yes_logit)))
    assert separation(1.0) == PERFECT_SEPARATION


def test_a_pairs_score_depends_on_the_seed_and_the_pair_alone():
    pairs, truth = _pairs(50, 150)
    judge = SimulatedJudge(truth, 0.8, seed=3)
    whole = [r.score for r in judge.score(pairs)]
    shuffled = list(reversed(pairs[:120])) + pairs[120:]
    by_pair = {(p.query_id, p.candidate_id): r.score for p, r in zip(shuffled, judge.score(shuffled))}
    assert [by_pair[(p.query_id, p.candidate_id)] for p in pairs] == whole
    assert [r.score for r in SimulatedJudge(truth, 0.8, seed=3).score(pairs[:7])] == whole[:7]
    assert [r.score for r in SimulatedJudge(truth, 0.8, seed=4).score(pairs[:7])] != whole[:7]
    assert SimulatedJudge(truth, 0.8, seed=3).settings != SimulatedJudge(truth, 0.9, seed=3).settings


def test_a_query_outside_the_truth_fails_by_name_and_out_of_range_aucs_are_refused():
    pairs, truth = _pairs(1, 1)
    del truth["q0"]
    (result,) = SimulatedJudge(truth, 0.8).score(pairs[:1])
    assert result.status == "failed" and "q0" in result.error and result.score is None
    for auc in (0.49, 1.01, float("nan")):
        with pytest.raises(ValueError, match="must be in"):
            separation(auc)
    assert SimulatedJudge(truth, 0.8).generate(["a prompt"])[0].status == "failed"


def test_the_simulated_judge_is_refused_outside_the_synthetic_world_when_the_config_is_read():
    simulated = ["recipe=tiny", "recipe.judge.backend=simulated", "recipe.judge.simulated={auc: 0.8}"]
    check_recipe(compose_config(simulated, ROOT / "config"))   # the synthetic world: accepted
    with pytest.raises(RecipeError, match=r"judge.backend = simulated .* study-only judge; data 'real'"):
        check_recipe(compose_config([*simulated, "data=real"], ROOT / "config"))
    with pytest.raises(RecipeError, match=r"needs judge.simulated"):
        check_recipe(compose_config(["recipe=tiny", "recipe.judge.backend=simulated"], ROOT / "config"))
    with pytest.raises(RecipeError, match=r"judge.backend = 'oracle': expected one of"):
        check_recipe(compose_config(["recipe=tiny", "recipe.judge.backend=oracle"], ROOT / "config"))


def test_the_judge_stage_scores_the_mined_pairs_from_the_worlds_truth(small_world, tmp_path, monkeypatch):
    monkeypatch.delenv("UNIEMBED_OVERRIDES", raising=False)
    curated = small_world["curated"]["mbeir"]
    qids = [r["query_id"] for r in pq.read_table(curated / "queries.parquet").to_pylist() if r["split"] == "train"][:8]
    out = tmp_path / "mining"
    out.mkdir()
    pq.write_table(mined_table(curated, qids, per_query=4), out / "mined.parquet")

    def run(auc):
        judge_stage.main(["--config-dir", str(ROOT / "config"), "--stage", "curated_dir", str(curated.parent),
                          "--stage", "out_dir", str(out), "--stage", "checkpoint_dir", str(tmp_path / "shards"),
                          "stage.progress=false", "recipe.judge.max_queries=null", "recipe.judge.backend=simulated",
                          f"recipe.judge.simulated={{auc: {auc}, seed: 0}}", f"data.root={hydra_quote(small_world['root'])}"])
        return pq.read_table(out / "judge_scores.parquet", schema=JUDGE_SCORES).to_pylist()

    truth = read_truth(Path(small_world["root"]) / "truth" / "mbeir_truth.parquet")
    rows = run(1.0)
    assert {r["judge_model"] for r in rows} == {"simulated(auc=1, seed=0)"} and {r["status"] for r in rows} == {"ok"}
    matches = [r["score"] for r in rows if r["candidate_id"] in truth[r["query_id"]]]
    others = [r["score"] for r in rows if r["candidate_id"] not in truth[r["query_id"]]]
    assert len(matches) >= len(qids) and min(matches) > max(others)   # every positive is a genuine match
    noisy = run(0.6)   # another AUC: another resume key, scored afresh
    assert [r["score"] for r in noisy] != [r["score"] for r in rows]


@pytest.mark.dag
def test_the_workflow_judges_from_the_worlds_truth_without_the_judge_model(tmp_path):
    """The judge job of a simulated run waits for the generated world (its truth), not the judge's instruct model."""
    from tests.workflow.dag import scratch_project, snakemake

    project = scratch_project(tmp_path, hydra_overrides=["recipe.judge.backend=simulated",
                                                         "recipe.judge.simulated={auc: 0.9}"])
    result = snakemake(project, "-n", "-p")
    assert result.returncode == 0, result.output[-3000:]
    judge = result.output.split("rule judge:", 1)[1].split("\n\n", 1)[0]
    (inputs,) = [line for line in judge.splitlines() if line.strip().startswith("input:")]
    assert "resources/synthetic" in inputs and "tiny-judge" not in inputs
