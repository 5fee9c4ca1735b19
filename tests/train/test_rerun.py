"""A rerun of a finished training stage trains again (what `snakemake --forcerun` means); a killed
one resumes; the code version is part of the run fingerprint; checkpoints load with weights_only."""

import pytest
import torch

from uniembed.train import core as trainer_module
from uniembed.train.checkpoint import FINISHED, load_latest, save_checkpoint
from uniembed.train.trainer import train_contrastive

from .settings import make_settings

SETTINGS = make_settings(max_steps=3, save_every=1)


def run(tmp, world, model, **kwargs):
    return train_contrastive(SETTINGS, base_model=model, curated_dir=world["curated"]["mbeir"], out_dir=tmp / "out",
                             checkpoint_dir=tmp / "ckpt", log_dir=tmp / "tb", device="cpu", progress=False, **kwargs)


def test_rerun_of_a_finished_stage_trains_again(tmp_path, small_world, tiny_qwen2vl, caplog):
    first = run(tmp_path, small_world, tiny_qwen2vl)
    assert list(tmp_path.glob("ckpt/*/" + FINISHED))
    caplog.set_level("INFO")
    second = run(tmp_path, small_world, tiny_qwen2vl)
    assert "training again from the start" in caplog.text and "resumed from" not in caplog.text
    assert [h["loss"] for h in second["history"]] == [h["loss"] for h in first["history"]]


def test_a_killed_stage_resumes(tmp_path, small_world, tiny_qwen2vl, caplog):
    assert run(tmp_path, small_world, tiny_qwen2vl, stop_after=2) == {"finished": False, "step": 2}
    caplog.set_level("INFO")
    assert run(tmp_path, small_world, tiny_qwen2vl)["step"] == 3
    assert "resumed from" in caplog.text


def test_a_code_change_starts_a_fresh_checkpoint_directory(tmp_path, small_world, tiny_qwen2vl, monkeypatch):
    run(tmp_path, small_world, tiny_qwen2vl, stop_after=1)
    monkeypatch.setattr(trainer_module, "code_version", lambda *modules: "a-fixed-loss")
    run(tmp_path, small_world, tiny_qwen2vl, stop_after=1)
    assert len(list((tmp_path / "ckpt").iterdir())) == 2


def test_checkpoints_hold_no_pickled_objects(tmp_path):
    state = {"fingerprint": {"a": 1}, "sampler": {"epoch": 0, "batch": 1}, "history": [{"loss": 1.0}],
             "trainable": {"w": torch.ones(2)}, "objective": {"temperature.tau": torch.tensor([0.05])},
             "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "betas": (0.9, 0.99), "params": [0]}]},
             "scheduler": {"last_epoch": 1}}
    directory = save_checkpoint(tmp_path, 1, state)
    raw = torch.load(directory / "state.pt", weights_only=True)   # would raise on any pickled object
    assert set(raw) == {"trainable", "objective", "optimizer", "scheduler", "rng"}
    loaded = load_latest(tmp_path, {"a": 1})
    assert loaded["step"] == 1 and loaded["sampler"] == {"epoch": 0, "batch": 1}
    with pytest.raises(ValueError, match="different"):
        load_latest(tmp_path, {"a": 2})


def test_orphan_temporary_saves_are_removed_at_resume(tmp_path):
    (tmp_path / ".step-00000002.abc.tmp").mkdir()
    (tmp_path / ".latest.xyz.tmp").write_text("x")
    assert load_latest(tmp_path, {}) is None
    assert not list(tmp_path.glob(".*.tmp"))
