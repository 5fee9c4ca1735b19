"""The trainer on the tiny model: resume equals uninterrupted, gradient caching equals direct,
artifacts load with from_pretrained, bad input fails clearly."""
import dataclasses
import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file

from uniembed.data.schemas import QUERIES
from uniembed.embed.embedder import EmbedItem, Embedder, EmbeddingMode
from uniembed.model.loading import load_for_embedding
from uniembed.train.trainer import train_contrastive

from .settings import INFO_NCE, make_settings

SETTINGS = make_settings(max_steps=6, save_every=2)


def run(tmp, name, world, model, settings=SETTINGS, source="mbeir", **kwargs):
    return train_contrastive(settings, base_model=model, curated_dir=world["curated"][source], out_dir=tmp / name / "out",
                             checkpoint_dir=tmp / name / "ckpt", log_dir=tmp / name / "tb", device="cpu",
                             progress=False, **kwargs)


def weights(out):
    return load_file(str(out / "model" / "model.safetensors"))


def test_killed_run_resumes_to_the_same_final_weights(tmp_path, small_world, tiny_family_model):
    straight = run(tmp_path, "straight", small_world, tiny_family_model)
    first = run(tmp_path, "resumed", small_world, tiny_family_model, stop_after=3)   # "killed" after step 3
    assert first == {"finished": False, "step": 3} and not (tmp_path / "resumed" / "out").exists()
    resumed = run(tmp_path, "resumed", small_world, tiny_family_model)
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in straight["history"]]
    a, b = weights(tmp_path / "straight" / "out"), weights(tmp_path / "resumed" / "out")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["final_temperature"] == straight["final_temperature"] != 0.05  # learnable, logged, moved


@pytest.mark.parametrize("variant", [{"chunk_size": 3}, {"activation_checkpointing": True},
                                     {"chunk_size": 3, "activation_checkpointing": True}])
def test_gradient_caching_and_checkpointing_match_direct_training(tmp_path, small_world, tiny_qwen2vl, variant):
    direct = run(tmp_path, "direct", small_world, tiny_qwen2vl, dataclasses.replace(SETTINGS, max_steps=3))
    other = run(tmp_path, "other", small_world, tiny_qwen2vl, dataclasses.replace(SETTINGS, max_steps=3, **variant))
    for x, y in zip(direct["history"], other["history"]):
        assert abs(x["loss"] - y["loss"]) < 1e-5
    a, b = weights(tmp_path / "direct" / "out"), weights(tmp_path / "other" / "out")
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5


def test_artifacts_load_back_and_only_lora_on_the_llm_trained(tmp_path, small_world, tiny_family_model):
    settings = dataclasses.replace(SETTINGS, max_steps=2, objective={**INFO_NCE, "bidirectional": True})
    summary = run(tmp_path, "caps", small_world, tiny_family_model, settings, source="mbeir")
    out = tmp_path / "caps" / "out"
    assert json.loads((out / "training_summary.json").read_text())["step"] == 2
    merged = load_for_embedding(out / "model")
    base = load_for_embedding(tiny_family_model)
    changed = [n for n, p in merged.state_dict().items() if not torch.equal(p, base.state_dict()[n])]
    assert changed and all("language_model.layers" in n for n in changed)
    adapted = Embedder.from_pretrained(tiny_family_model, out / "adapter", EmbeddingMode(), device="cpu")
    merged_embedder = Embedder.from_pretrained(out / "model", mode=EmbeddingMode(), device="cpu")
    items = [EmbedItem("a large red circle on the left"), EmbedItem("a small blue square", None, "Find it.")]
    assert torch.allclose(torch.tensor(adapted.encode(items)), torch.tensor(merged_embedder.encode(items)), atol=1e-5)
    assert list((tmp_path / "caps" / "tb").glob("events.out.tfevents.*"))
    assert summary["history"][-1]["items_per_s"] > 0


def test_a_changed_config_starts_fresh_and_a_foreign_checkpoint_is_refused(tmp_path, small_world, tiny_qwen2vl):
    run(tmp_path, "a", small_world, tiny_qwen2vl, stop_after=2)
    changed = run(tmp_path, "a", small_world, tiny_qwen2vl, make_settings(max_steps=6, save_every=2, lr=5e-4), stop_after=2)
    assert changed == {"finished": False, "step": 2}  # fresh: a resume of the other run would be at step 4
    first, second = sorted((tmp_path / "a" / "ckpt").iterdir(), key=lambda p: p.stat().st_mtime)
    shutil.rmtree(second)
    shutil.copytree(first, second)  # another run's checkpoint where this run's should be
    with pytest.raises(ValueError, match=r"different \['settings'\]; resume refused"):
        run(tmp_path, "a", small_world, tiny_qwen2vl, make_settings(max_steps=6, save_every=2, lr=5e-4))


def test_empty_training_table_and_unknown_hard_negatives(tmp_path, small_world, tiny_qwen2vl):
    empty = tmp_path / "curated" / "all_quarantined"
    shutil.copytree(small_world["curated"]["mbeir"], empty)
    pq.write_table(QUERIES.empty_table(), empty / "queries.parquet")
    world = {"curated": {"all_quarantined": empty}}
    with pytest.raises(ValueError, match="no 'train' queries to train on \\(empty or all quarantined; see .*summary.json"):
        run(tmp_path, "empty", world, tiny_qwen2vl, source="all_quarantined")
    table = pa.table({"query_id": ["0:0"], "negative_ids": [["no-such-candidate"]], "negative_scores": [[0.1]],
                      "positive_score": [0.9], "positive_ids": [[]], "positive_scores": pa.array([[]], pa.list_(pa.float64())),
                      "outcome": ["selected"], "strategy": ["umarvel"], "params": ['{"k": 5}']})
    pq.write_table(table, tmp_path / "negatives.parquet")
    with pytest.raises(ValueError, match="row 0 \\(query 0:0\\) references unknown candidate ids"):
        run(tmp_path, "hn", small_world, tiny_qwen2vl, dataclasses.replace(SETTINGS, objective={**INFO_NCE, "num_negatives": 2}),
            hard_negatives=tmp_path / "negatives.parquet")


def test_deepspeed_zero2_backend_trains_like_ddp_and_resumes(tmp_path, small_world, tiny_qwen2vl):
    """ZeRO-2 (DeepSpeed on CPU with gloo here; NCCL on GPUs) gives the same updates as plain
    torch AdamW and resumes from its own checkpoints to the same weights."""
    zero = dataclasses.replace(SETTINGS, max_steps=4, backend="deepspeed_zero2")
    plain = run(tmp_path, "plain", small_world, tiny_qwen2vl, dataclasses.replace(zero, backend="ddp"))
    straight = run(tmp_path, "zero", small_world, tiny_qwen2vl, zero)
    for x, y in zip(plain["history"], straight["history"]):
        assert abs(x["loss"] - y["loss"]) < 1e-4
    a, b = weights(tmp_path / "plain" / "out"), weights(tmp_path / "zero" / "out")
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-4
    assert run(tmp_path, "zero_resumed", small_world, tiny_qwen2vl, zero, stop_after=2)["step"] == 2
    assert len(list((tmp_path / "zero_resumed" / "ckpt").glob("*/deepspeed/latest"))) == 1
    resumed = run(tmp_path, "zero_resumed", small_world, tiny_qwen2vl, zero)
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in straight["history"]]
    c = weights(tmp_path / "zero_resumed" / "out")
    assert all(torch.equal(b[k], c[k]) for k in b)
    with pytest.raises(ValueError, match="cannot be combined with DeepSpeed ZeRO-2"):
        run(tmp_path, "zero_gc", small_world, tiny_qwen2vl, dataclasses.replace(zero, chunk_size=2))
