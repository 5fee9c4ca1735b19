"""The instruct trainer: every weight trains, outputs a complete model directory, resumes bit-exactly."""
from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import SMALL_WORLD
from uniembed.instruct.settings import GroupLoss, InstructMix, InstructSettings, WorldGroups
from uniembed.instruct.train import group_loss, train_instruct
from uniembed.model.loading import load_for_generation
from uniembed.model.saving import missing_checkpoint_files
from uniembed.train.checkpoint import FINISHED

SETTINGS = InstructSettings(max_steps=4, batch_size=6, lr=1e-3, sources=["mbeir", "mmeb"], warmup_steps=1,
                            save_every=2, log_every=1, mix=InstructMix(yes=1, hard=1, random=1))


def run(tmp, name, world, model, settings=SETTINGS, **kwargs):
    return train_instruct(settings, base_model=model, curated_dir=world["curated"]["mbeir"].parent,
                          out_dir=tmp / name / "out", checkpoint_dir=tmp / name / "ckpt", log_dir=tmp / name / "tb",
                          device="cpu", progress=False, **kwargs)


def test_trains_every_weight_and_saves_a_complete_model(tmp_path, small_world, tiny_qwen2vl):
    summary = run(tmp_path, "full", small_world, tiny_qwen2vl)
    out = tmp_path / "full" / "out"
    assert summary["finished"] and summary["step"] == 4 and len(summary["history"]) == 4
    assert missing_checkpoint_files(out / "model") == []
    assert json.loads((out / "training_summary.json").read_text())["sources"] == ["mbeir", "mmeb"]
    before, after = load_file(tiny_qwen2vl / "model.safetensors"), load_file(out / "model" / "model.safetensors")
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert any("visual." in name for name in changed)                                    # vision tower too
    assert any("layers." in name and "visual" not in name for name in changed) and "lm_head.weight" in changed
    assert load_for_generation(out / "model").config.model_type == "qwen2_vl"
    assert list((tmp_path / "full" / "tb").glob("events.out.tfevents.*"))
    assert list((tmp_path / "full" / "ckpt").glob(f"*/{FINISHED}"))
    assert {"loss", "lr", "items_per_s"} <= set(summary["history"][0])
    assert any(key.startswith("loss_") for key in summary["history"][0])   # each example kind's loss, logged


def test_freeze_vision_keeps_the_tower_and_trains_the_language_model(tmp_path, small_world, tiny_qwen2vl):
    """A pretrained tower stays as loaded (freeze_vision, the judge's setting); the language model still trains."""
    frozen = dataclasses.replace(SETTINGS, freeze_vision=True)
    run(tmp_path, "frozen", small_world, tiny_qwen2vl, settings=frozen)
    before = load_file(tiny_qwen2vl / "model.safetensors")
    after = load_file(tmp_path / "frozen" / "out" / "model" / "model.safetensors")
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert not any("visual." in name for name in changed)
    assert any("layers." in name and "visual" not in name for name in changed) and "lm_head.weight" in changed


def test_the_stage_curates_the_worlds_train_split_itself_and_trains_the_judge_model(tmp_path, small_world,
                                                                                    tiny_qwen2vl):
    """stages.instruct with role judge_model: a resource, it reads the world's files (no run's curated tables)."""
    from uniembed.config import compose_config
    from uniembed.stages.instruct import run as run_stage
    from tests.workflow.dag import ROOT

    cfg = compose_config([f"data.root={small_world['root']}", "judge_model.instruct.max_steps=2",
                          "judge_model.instruct.batch_size=4", "judge_model.instruct.group.queries=2",
                          "recipe.device=cpu"], ROOT / "config")
    for key, value in (("role", "judge_model"), ("model_dir", str(tiny_qwen2vl)), ("out_dir", str(tmp_path / "out")),
                       ("checkpoint_dir", str(tmp_path / "ckpt")), ("log_dir", str(tmp_path / "tb")),
                       ("progress", False)):
        cfg.stage[key] = value
    summary = run_stage(cfg)
    assert summary["finished"] and summary["sources"] == ["mbeir"]
    assert summary["train_queries"] == SMALL_WORLD["mbeir_train_queries"] * 7   # every train query of the 7 tasks
    assert missing_checkpoint_files(tmp_path / "out" / "model") == []
    cfg.stage.role = "embedder"
    with pytest.raises(SystemExit, match="stage.role = 'embedder'"):
        run_stage(cfg)


def test_a_killed_run_resumes_to_identical_weights(tmp_path, small_world, tiny_qwen2vl, caplog):
    run(tmp_path, "straight", small_world, tiny_qwen2vl)
    assert run(tmp_path, "resumed", small_world, tiny_qwen2vl, stop_after=3) == {"finished": False, "step": 3}
    caplog.set_level("INFO")
    resumed = run(tmp_path, "resumed", small_world, tiny_qwen2vl)
    assert "resumed from" in caplog.text and resumed["step"] == 4
    straight = load_file(tmp_path / "straight" / "out" / "model" / "model.safetensors")
    again = load_file(tmp_path / "resumed" / "out" / "model" / "model.safetensors")
    assert all(torch.equal(straight[name], again[name]) for name in straight)


def test_a_finished_run_trains_again_and_other_settings_get_their_own_checkpoints(tmp_path, small_world,
                                                                                   tiny_qwen2vl, caplog):
    first = run(tmp_path, "run", small_world, tiny_qwen2vl)
    caplog.set_level("INFO")
    second = run(tmp_path, "run", small_world, tiny_qwen2vl)
    assert "training again from the start" in caplog.text
    assert [h["loss"] for h in second["history"]] == [h["loss"] for h in first["history"]]
    other = InstructSettings(**{**SETTINGS.__dict__, "lr": 2e-3, "max_steps": 1})
    run(tmp_path, "run", small_world, tiny_qwen2vl, settings=other)
    assert len(list((tmp_path / "run" / "ckpt").iterdir())) == 2


def test_an_unknown_source_names_the_missing_table(tmp_path, small_world, tiny_qwen2vl):
    settings = InstructSettings(**{**SETTINGS.__dict__, "sources": ["captions"]})
    with pytest.raises(FileNotFoundError, match="captions"):
        run(tmp_path, "none", small_world, tiny_qwen2vl, settings=settings)


def test_group_loss_is_the_listwise_cross_entropy_of_the_yes_no_margins():
    torch.manual_seed(0)
    logits, yes, no, size = torch.randn(12, 10, dtype=torch.float64), 7, 2, 4
    want = 0.0
    for g in range(3):
        margins = [logits[g * size + j, yes].item() - logits[g * size + j, no].item() for j in range(size)]
        want += -(margins[0] - math.log(sum(math.exp(m) for m in margins))) / 3
    assert group_loss(logits, yes, no, size).item() == pytest.approx(want, rel=1e-12)
    with pytest.raises(ValueError, match="multiple of the group size"):
        group_loss(logits[:10], yes, no, size)


def test_training_with_world_questions_logs_their_term_and_resumes_bit_exactly(tmp_path, small_world, tiny_qwen2vl):
    """Fresh questions from the world's rules (instruct.world) join each step and its loss; drawn with the step's
    seeded generator, so a killed run resumes to the very same weights."""
    settings = dataclasses.replace(SETTINGS, world=WorldGroups(groups=2, negatives=2, weight=0.5))
    straight = run(tmp_path, "straight", small_world, tiny_qwen2vl, settings=settings)
    for record in straight["history"]:
        assert record["loss"] == pytest.approx(record["loss_answers"] + 0.5 * record["loss_world"], rel=1e-5)
        assert {"loss_world_yes", "loss_world_no"} <= set(record)
    assert run(tmp_path, "resumed", small_world, tiny_qwen2vl, settings=settings, stop_after=2)["step"] == 2
    run(tmp_path, "resumed", small_world, tiny_qwen2vl, settings=settings)
    one = load_file(tmp_path / "straight" / "out" / "model" / "model.safetensors")
    two = load_file(tmp_path / "resumed" / "out" / "model" / "model.safetensors")
    assert all(torch.equal(one[name], two[name]) for name in one)


def test_training_with_groups_logs_both_terms_and_resumes_bit_exactly(tmp_path, small_world, tiny_qwen2vl):
    settings = InstructSettings(**{**SETTINGS.__dict__, "group": GroupLoss(queries=2, negatives=2, weight=0.5)})
    straight = run(tmp_path, "straight", small_world, tiny_qwen2vl, settings=settings)
    for record in straight["history"]:
        assert record["loss"] == pytest.approx(record["loss_answers"] + 0.5 * record["loss_group"], rel=1e-5)
        assert {"loss_judge_group_yes", "loss_compact_group_yes"} & set(record)
    assert run(tmp_path, "resumed", small_world, tiny_qwen2vl, settings=settings, stop_after=2)["step"] == 2
    run(tmp_path, "resumed", small_world, tiny_qwen2vl, settings=settings)
    one = load_file(tmp_path / "straight" / "out" / "model" / "model.safetensors")
    two = load_file(tmp_path / "resumed" / "out" / "model" / "model.safetensors")
    assert all(torch.equal(one[name], two[name]) for name in one)
    plain = run(tmp_path, "plain", small_world, tiny_qwen2vl)
    assert plain["history"][0]["loss"] != straight["history"][0]["loss"]


def test_a_loader_worker_gives_the_same_weights_straight_and_resumed(tmp_path, small_world, tiny_qwen2vl):
    """One loader worker preparing the steps (the rule's setting) trains the very weights the step's own process
    does, groups included, and a run killed after step 2 resumes with the worker to them too."""
    from uniembed.data.loader import LoaderSettings

    settings = InstructSettings(**{**SETTINGS.__dict__, "group": GroupLoss(queries=2, negatives=2, weight=0.5)})
    worker = LoaderSettings(workers=1)
    inline = run(tmp_path, "inline", small_world, tiny_qwen2vl, settings=settings)
    loaded = run(tmp_path, "worker", small_world, tiny_qwen2vl, settings=settings, loader=worker)
    assert [r["loss"] for r in loaded["history"]] == [r["loss"] for r in inline["history"]]
    assert run(tmp_path, "resumed", small_world, tiny_qwen2vl, settings=settings, loader=worker, stop_after=2)["step"] == 2
    run(tmp_path, "resumed", small_world, tiny_qwen2vl, settings=settings, loader=worker)
    reference = load_file(tmp_path / "inline" / "out" / "model" / "model.safetensors")
    for name in ("worker", "resumed"):
        weights = load_file(tmp_path / name / "out" / "model" / "model.safetensors")
        assert all(torch.equal(reference[key], weights[key]) for key in reference), name
