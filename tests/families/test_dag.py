"""A whole DAG per family, each family as embedder, judge and reranker base on the small synthetic world: every stage
of the embedded default's recipe (progressive transition, mining, judge, filters, judge quality, hard-negative
training, rerankers, recall + rerank, distillation, evaluation, tables) on LLaVA-OneVision, and UniME-V2's own recipe
(MMEB-train mining with an external embedder, 336-px style resizing, no progressive transition, the mine, the judge and
the rerank in parts) on Qwen2.5-VL, the family of UniME-V2's judge. Qwen2-VL runs the whole default at full size in
tests/integration (Qwen2.5-VL shares its family module, uniembed.model.families.qwen), Qwen3-VL the whole default
through SLURM in tests/slurm/test_slurm_profile.py.

Each run checks what a family could break between stages (tests/families/checks.py): every trained model is saved as
its family, with LoRA on decoder modules only and the vision tower (and projector) bit-identical to the base model's;
every evaluation is a finite score; every judge score a probability.
"""
import pytest

from tests.families.checks import DEFAULT_RULES, check_scores, check_trained_models
from tests.workflow.dag import RANDOM_TOWERS, SIZES, planned_jobs, scratch_project, short_training, snakemake, write_config

pytestmark = pytest.mark.slow

UNIME_V2_RULES = {"generate_data", "build_model", "build_judge_model", "instruct_judge_model", "curate", "evaluate",
                  "mine", "mine_encode_part", "judge", "judge_part", "filter", "train_hn", "train_reranker", "rerank",
                  "rerank_part", "tables", "run_manifest", "all"}
#: UniME-V2's recipe on CPU: the transformers judge and scorer, short training without ZeRO or gradient caching,
#: images resized to 56 px (the tiny processor's range) instead of 336, the judge's tiny model as the miner, and the
#: mine's encoding, the judge and the rerank in 2 parts instead of 8, 8 and 4.
_HN, _RR = "recipe.train_hn.objectives.unime_v2", "recipe.rerank.rerankers.listwise"
UNIME_V2_ON_CPU = [
    "recipe.mine.checkpoint=${paths.resources}/models/tiny-judge", "recipe.embedding.image_size=56",
    "recipe.judge.backend=transformers", "recipe.judge.batch_size=16", "recipe.judge.queries_per_shard=4",
    "recipe.judge.parts=2",   # the recipe's 8 parts, as 2 on the small world (scatter-gather through a real DAG)
    "recipe.mine.parts=2", "recipe.rerank.scoring.parts=2",
    "recipe.judge.engine={}", "recipe.rerank.scoring.backend=transformers", "recipe.rerank.scoring.engine={}",
    "recipe.evaluate.batch_size=16", f"{_HN}.chunk_size=null",
    *(f"{entry}.{key}={value}" for entry in (_HN, _RR) for key, value in (
        ("max_steps", 2), ("batch_size", 4), ("save_every", 1), ("backend", "ddp"), ("optimizer.warmup_steps", 1),
        ("activation_checkpointing", "false")))]
DAGS = [("llava_onevision", "tiny"), ("qwen2_5_vl", "unime_v2_qwen2vl_2b")]


@pytest.fixture(scope="module", params=DAGS, ids=lambda dag: f"{dag[0]}-{dag[1]}")
def family_run(request, tmp_path_factory):
    """(family name, recipe, project, planned rule counts) after the DAG ran with that family everywhere."""
    name, recipe = request.param
    project = scratch_project(tmp_path_factory.mktemp(f"{name}-{recipe}"))
    overrides = [SIZES, f"model.family={name}", f"judge_model.family={name}", *RANDOM_TOWERS]
    if recipe == "tiny":   # the progressive transition's last stage only: the others run the same rule and trainer
        overrides += [*short_training(), "recipe.pretrain.order=[mbeir]"]
    else:
        overrides += ["judge_model.instruct.max_steps=2", "judge_model.instruct.batch_size=4", *UNIME_V2_ON_CPU]
    write_config(project, hydra_overrides=overrides,
                 experiment={"model": "tiny", "judge_model": "tiny", "data": "synthetic", "recipe": recipe})
    result = snakemake(project, timeout=1200)
    assert result.returncode == 0, result.output[-4000:]
    return name, recipe, project, planned_jobs(result.output)


def test_every_stage_runs(family_run):
    _, recipe, _, plan = family_run
    assert set(plan) == (DEFAULT_RULES if recipe == "tiny" else UNIME_V2_RULES), plan


def test_every_trained_model_is_its_family_with_lora_on_the_decoder_and_the_tower_unchanged(family_run):
    name, _, project, _ = family_run
    check_trained_models(project, name)


def test_every_evaluation_is_a_finite_score_and_every_judge_score_a_probability(family_run):
    check_scores(family_run[2])
