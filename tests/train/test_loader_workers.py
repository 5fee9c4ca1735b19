"""Training with DataLoader workers preparing each step: the same batches, losses and adapter weights as without
workers, GradCache's chunks included; a resumed run with workers equals an uninterrupted one."""
import dataclasses

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file

from uniembed.data.loader import LoaderSettings
from uniembed.train.data import BatchSampler
from uniembed.train.trainer import train_contrastive, train_reranker

from tests.judge import mined_table

from .settings import make_settings

SETTINGS = make_settings(max_steps=4, save_every=2, log_every=1)


def _contrastive(tmp, name, world, model, workers, settings=SETTINGS, **kwargs):
    return train_contrastive(settings, base_model=model, curated_dir=world["curated"]["mbeir"], out_dir=tmp / name / "out",
                             checkpoint_dir=tmp / name / "ckpt", log_dir=tmp / name / "tb", device="cpu", progress=False,
                             loader=LoaderSettings(workers=workers), **kwargs)


def _adapter(tmp, name):
    return load_file(str(tmp / name / "out" / "adapter" / "adapter_model.safetensors"))


def _same(tmp, a, b, summaries):
    assert [h["loss"] for h in summaries[a]["history"]] == [h["loss"] for h in summaries[b]["history"]]
    x, y = _adapter(tmp, a), _adapter(tmp, b)
    assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def test_the_sampler_draws_step_by_step_what_it_gives_for_any_step():
    sampler, fresh = BatchSampler(10, 3, seed=7), BatchSampler(10, 3, seed=7)
    for step in range(8):   # three batches an epoch: steps 3 and 6 start new epochs
        indices, rng = sampler.next()
        again, again_rng = fresh.at(step)
        assert np.array_equal(indices, again) and rng.integers(1 << 30) == again_rng.integers(1 << 30)
        moved = BatchSampler(10, 3, seed=7)
        moved.seek(step + 1)
        assert moved.state() == sampler.state() and moved.position == step + 1


@pytest.mark.parametrize("chunk_size", [None, 3], ids=["direct", "gradcache"])
def test_contrastive_training_is_identical_for_0_and_2_workers(tmp_path, small_world, tiny_qwen2vl, chunk_size):
    settings = dataclasses.replace(SETTINGS, chunk_size=chunk_size)
    summaries = {f"w{w}": _contrastive(tmp_path, f"w{w}", small_world, tiny_qwen2vl, w, settings) for w in (0, 2)}
    _same(tmp_path, "w0", "w2", summaries)


def test_reranker_training_is_identical_for_0_and_2_workers(tmp_path, small_world, tiny_qwen2vl):
    curated = small_world["curated"]["mbeir"]
    ids = [r["query_id"] for r in pq.read_table(curated / "queries.parquet").to_pylist() if r["split"] == "train"]
    pq.write_table(mined_table(curated, ids, per_query=4), tmp_path / "mined.parquet")
    settings = make_settings(max_steps=3, save_every=2, log_every=1, objective={"name": "pair_list", "list_size": 3})
    summaries = {f"w{w}": train_reranker(settings, base_model=tiny_qwen2vl, curated_dir=curated,
                                         retrieval=tmp_path / "mined.parquet", out_dir=tmp_path / f"w{w}" / "out",
                                         checkpoint_dir=tmp_path / f"w{w}" / "ckpt", log_dir=tmp_path / f"w{w}" / "tb",
                                         device="cpu", progress=False, loader=LoaderSettings(workers=w)) for w in (0, 2)}
    _same(tmp_path, "w0", "w2", summaries)


def test_a_run_resumed_with_workers_equals_an_uninterrupted_one(tmp_path, small_world, tiny_qwen2vl):
    """Killed after step 3 (checkpoint at 2), resumed with 2 workers: the loader starts at step 2."""
    settings = dataclasses.replace(SETTINGS, max_steps=5, chunk_size=3)
    summaries = {"straight": _contrastive(tmp_path, "straight", small_world, tiny_qwen2vl, 0, settings)}
    assert _contrastive(tmp_path, "resumed", small_world, tiny_qwen2vl, 2, settings, stop_after=3) == {
        "finished": False, "step": 3}
    summaries["resumed"] = _contrastive(tmp_path, "resumed", small_world, tiny_qwen2vl, 2, settings)
    _same(tmp_path, "straight", "resumed", summaries)
