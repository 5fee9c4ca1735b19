"""The plan's jobs against the recipe they come from, and the command on a 7B recipe of real data (declared
sizes, published architectures: no weights, no data)."""
import json
import subprocess
import sys

import pytest

from uniembed.config import compose_config
from uniembed.plan.model_cost import model_cost
from uniembed.plan.sizes import SourceSizes
from uniembed.plan.workload import EMBED_TEMPLATE, JUDGE_TEMPLATE, LISTWISE_ANSWER, Workload
from uniembed.workflow_checks import run_model_tags


def _sizes(**queries) -> SourceSizes:
    return SourceSizes(queries=queries, candidates=500, pool=300, query_tokens=12.0, candidate_tokens=8.0,
                       query_images=0.5, candidate_images=1.0, positives=1.5, image_side=56, origin="test")


@pytest.fixture(scope="module")
def tiny_plan(tiny_qwen2vl):
    cfg = compose_config(["model=tiny", "judge_model=tiny", "data=synthetic", "recipe=tiny"], "config")
    cost = model_cost({"name": "tiny", "family": "qwen2_vl", "path": str(tiny_qwen2vl)})
    sizes = {name: _sizes(train=100, val=10, test=40, eval=30) for name in cfg.data.sources}
    jobs = {job.name: job for job in Workload(cfg, sizes, {"model": cost, "judge_model": cost, "miner": cost}).jobs()}
    return cfg, cost, sizes, jobs


def test_training_jobs_count_the_query_positive_and_negatives_of_every_step(tiny_plan):
    cfg, cost, _, jobs = tiny_plan
    for name, stage in cfg.recipe.pretrain.stages.items():
        assert jobs[f"pretrain_{name}"].sequences == stage.max_steps * stage.batch_size * 2
    umarvel = cfg.recipe.train_hn.objectives.umarvel
    job = jobs["hn_umarvel"]
    assert job.sequences == umarvel.max_steps * umarvel.batch_size * (2 + umarvel.objective.num_negatives)
    queries, candidates = umarvel.max_steps * umarvel.batch_size, umarvel.max_steps * umarvel.batch_size * 6
    # half the queries have an image: a batch of b pads every query to an image's length unless none has one
    image = cost.image_tokens(56)[1]
    padded = 12 + EMBED_TEMPLATE + image * (1 - 0.5 ** umarvel.batch_size)
    expected = (queries * cost.training_flops(12 + EMBED_TEMPLATE, 0.5, 56, False, False, padded_to=padded)
                + candidates * cost.training_flops(8 + EMBED_TEMPLATE, 1.0, 56, False, False))
    assert job.flops == pytest.approx(expected)
    assert job.flops > queries * cost.training_flops(12 + EMBED_TEMPLATE, 0.5, 56, False, False) + candidates * \
        cost.training_flops(8 + EMBED_TEMPLATE, 1.0, 56, False, False)


def test_a_listwise_rerankers_step_pads_its_pairs_to_its_lists(tiny_plan):
    """UniME-V2-Reranker's step collates two pairs and one list per query into one batch
    (uniembed.train.rerank_task.RerankSteps): every pair runs the decoder at the list's length."""
    cfg, cost, _, jobs = tiny_plan
    stage, job = cfg.recipe.rerank.rerankers.listwise, jobs["reranker_listwise"]
    k, examples = stage.objective.get("list_size") or 6, stage.max_steps * stage.batch_size
    pair_tokens, pair_images = 12 + 8 + JUDGE_TEMPLATE, 0.5 + 1.0
    list_tokens, list_images = pair_tokens + (k - 1) * 8, pair_images + (k - 1) * 1.0
    image = cost.image_tokens(56)[1]
    # the lists have int(list_images) images, and one more unless none of the batch's lists has it
    longest = list_tokens + image * (int(list_images) + 1 - 0.5 ** stage.batch_size)
    checkpointing = bool(stage.get("activation_checkpointing"))
    expected = (2 * examples * cost.training_flops(pair_tokens, pair_images, 56, checkpointing, False, True,
                                                   padded_to=longest)
                + examples * cost.training_flops(list_tokens, list_images, 56, checkpointing, False, True,
                                                 padded_to=longest))
    assert job.sequences == 3 * examples and job.flops == pytest.approx(expected)


def test_the_judge_scores_every_mined_candidate_and_the_positives(tiny_plan):
    cfg, cost, sizes, jobs = tiny_plan
    judge = jobs["judge"]
    queries = sizes[cfg.recipe.mine.source].queries[cfg.recipe.mine.split]
    assert judge.sequences == queries * (cfg.recipe.mine.top_k + 1.5)
    assert judge.text_tokens == 12 + 8 + JUDGE_TEMPLATE and judge.images == 1.5
    assert judge.flops == pytest.approx(judge.sequences * cost.forward_flops(12 + 8 + JUDGE_TEMPLATE, 1.5, 56, 1))
    assert jobs["mine"].sequences == queries + 300   # the split's queries and its global pool


def test_every_model_of_the_run_is_evaluated_and_every_reranker_reranks(tiny_plan):
    cfg, cost, _, jobs = tiny_plan
    assert {n for n in jobs if n.startswith("evaluate_")} == {f"evaluate_{t}" for t in run_model_tags(cfg)}
    assert {n for n in jobs if n.startswith("rerank_")} == {f"rerank_{cfg.recipe.rerank.recall}+{r}"
                                                            for r in cfg.recipe.rerank.rerankers}
    settings, top_k = len(cfg.recipe.evaluate.mbeir_settings), cfg.recipe.rerank.top_k
    # pointwise: M-BEIR's test lists in each setting, MMEB's eval lists, the held-out val lists choose_alpha reads
    pointwise = jobs["rerank_hn_umarvel+pointwise"]
    assert pointwise.sequences == (40 * settings + 30 + 10 * settings) * top_k
    assert pointwise.encode_flops == pytest.approx(10 * cost.forward_flops(12 + EMBED_TEMPLATE, 0.5, 56))
    # listwise: one prompt per list, the query and listwise_top_k candidates, then its answer generated
    listwise, depth = jobs["rerank_hn_umarvel+listwise"], cfg.recipe.rerank.listwise_top_k
    assert listwise.sequences == 40 * settings + 30 and listwise.images == 0.5 + depth * 1.0
    per_list = (cost.forward_flops(12 + depth * 8 + JUDGE_TEMPLATE, 0.5 + depth, 56, 1)
                + cost.decode_flops(12 + depth * 8 + JUDGE_TEMPLATE, 0.5 + depth, 56, LISTWISE_ANSWER))
    assert listwise.flops == pytest.approx(listwise.sequences * per_list)


def test_decoding_costs_one_decoder_position_and_the_head_per_new_token(tiny_plan):
    _, cost, _, _ = tiny_plan
    one = cost.decode_flops(30, 0, 56, 1)
    assert one == pytest.approx(cost.decoder_flops(1, 30.5) + 2 * max(cost.head_parameters, cost.embedding_parameters))
    assert cost.decode_flops(30, 0, 56, 8) > 8 * cost.decoder_flops(1, 30)


def test_the_plan_of_unime_v2_7b_on_declared_sizes(tmp_path):
    done = subprocess.run([sys.executable, "-m", "uniembed.plan", "--configfile",
                           "config/experiments/real_unime_v2_qwen2vl_7b.yaml", "--gpu", "A800-80GB", "--gpus", "8",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    plan = json.loads((tmp_path / "plan.json").read_text())
    jobs = {row["job"]: row for row in plan["jobs"]}
    assert list(jobs)[:3] == ["mine", "judge", "hn_unime_v2"]
    assert jobs["hn_unime_v2"]["sequences"] == 2000 * 1024 * 10          # §4.1: 2,000 steps of 1024, k = 8
    assert jobs["judge"]["sequences"] == pytest.approx(662_000 * 51)     # 50 mined + the positive per query
    assert all(row["memory_gib_per_gpu"] < 80 for row in jobs.values()), jobs
    # the recipe's parts: 8 single-GPU judge jobs side by side; training holds the 8 GPUs of one job
    assert (jobs["judge"]["jobs"], jobs["judge"]["gpus"]) == (8, 1) and (jobs["mine"]["jobs"], jobs["mine"]["gpus"]) == (8, 1)
    assert jobs["judge"]["wall_hours"] == pytest.approx(jobs["judge"]["gpu_hours"] / 8)
    assert (jobs["hn_unime_v2"]["jobs"], jobs["hn_unime_v2"]["gpus"]) == (1, 8)
    assert plan["total_gpu_hours"] == pytest.approx(sum(row["gpu_hours"] for row in jobs.values()))
    assert "| `judge` | Qwen2.5-VL-7B-Instruct |" in (tmp_path / "plan.md").read_text()


def test_the_cpu_rates_are_the_timed_batches_flops_over_their_seconds(tiny_plan, tiny_qwen2vl):
    """uniembed.plan.hardware.measure_cpu times each kind of job through the stages' code (an embedder's LoRA step
    and encode, the judge's one-token forward, a listwise reranker's generative step) and rates it by the FLOPs of
    exactly what it ran: its batch's padded length and images."""
    from uniembed.plan.hardware import Timed, measure_cpu, timed_flops

    _, cost, _, jobs = tiny_plan
    chosen = [jobs[name] for name in ("hn_umarvel", "evaluate_zero_shot", "judge", "reranker_listwise")]
    model_dirs = {role: str(tiny_qwen2vl) for role in ("model", "judge_model", "miner")}
    rates = measure_cpu(chosen, model_dirs, {role: cost for role in model_dirs}, batch=4, repeats=1)
    assert set(rates.flops) == {job.rate_key for job in chosen} and all(r > 0 for r in rates.flops.values())
    assert rates.startup_s > 0 and rates.step_s > 0 and rates.save_s > 0
    listwise = jobs["reranker_listwise"]
    assert timed_flops(listwise, cost, Timed(1.0, 90, 3.0)) == pytest.approx(
        cost.training_flops(0, 3.0, 56, listwise.checkpointing, False, True, padded_to=90))
    assert timed_flops(jobs["judge"], cost, Timed(1.0, 90, 2.0)) == pytest.approx(
        cost.forward_flops(0, 2.0, 56, head_tokens=1, padded_to=90))
