"""LoRA adapters never load silently wrong: a key off by a name, missing or extra is an error naming
it on both heads, and an adapter trained by the project's trainer gives the merged model's embeddings."""
from __future__ import annotations

import re
import shutil
from collections import namedtuple

import pytest
import torch
from safetensors.torch import load_file, save_file

from uniembed.embed.embedder import EmbedItem, Embedder, EmbeddingMode
from uniembed.model.adapters import AdapterMismatchError
from uniembed.model.loading import load_for_embedding, load_for_generation, set_bidirectional
from uniembed.model.processor import load_processor
from uniembed.train.trainer import train_contrastive

from ..train.settings import make_settings

MODES = {"mean-bidirectional": EmbeddingMode(), "last-causal": EmbeddingMode(pooling="last", attention="causal")}
SETTINGS = make_settings(max_steps=3, lr=5e-3, save_every=100, objective={"name": "info_nce"})
LOADERS = {"embedding": load_for_embedding, "generation": load_for_generation}
KEY = "base_model.model.language_model.layers.1.self_attn.v_proj.lora_B.weight"
TOL = 1e-5


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_qwen2vl, small_world) -> dict:
    """``{mode name: stage output dir}``: adapter/ + model/ written by ``train_contrastive``, one per mode."""
    outputs = {}
    for name, mode in MODES.items():
        tmp = tmp_path_factory.mktemp(f"train-{name}")
        summary = train_contrastive(SETTINGS, base_model=tiny_qwen2vl, curated_dir=small_world["curated"]["mbeir"],
                                    out_dir=tmp / "out", checkpoint_dir=tmp / "ckpt", log_dir=tmp / "tb",
                                    mode=mode, device="cpu", progress=False)
        assert summary["finished"]
        outputs[name] = tmp / "out"
    return outputs


@pytest.fixture(scope="module")
def items(small_world) -> list[EmbedItem]:
    images = [str(p) for p in sorted((small_world["root"] / "mbeir" / "mbeir_images").rglob("*.png"))[:2]]
    assert len(images) == 2
    return [EmbedItem("a large red circle on the left", None, "Find the picture."),
            EmbedItem(None, images[0]),
            EmbedItem("make it blue", images[1], "Retrieve the edited image."),
            EmbedItem("a small green square at the top")]


def _max_diff(a, b) -> float:
    return float((torch.as_tensor(a) - torch.as_tensor(b)).abs().max())


@pytest.mark.parametrize("mode_name", MODES)
def test_trained_adapter_gives_the_merged_models_embeddings(trained, tiny_qwen2vl, items, mode_name):
    mode, out = MODES[mode_name], trained[mode_name]
    adapted = Embedder.from_pretrained(tiny_qwen2vl, out / "adapter", mode, device="cpu").encode(items)
    merged = Embedder.from_pretrained(out / "model", mode=mode, device="cpu").encode(items)
    base = Embedder.from_pretrained(tiny_qwen2vl, mode=mode, device="cpu").encode(items)
    assert _max_diff(adapted, merged) <= TOL
    assert _max_diff(adapted, base) > 1e-3  # the adapter is loaded and active, not the base model


@pytest.mark.parametrize("mode_name", MODES)
def test_generation_path_loads_the_trained_adapter(trained, tiny_qwen2vl, items, mode_name):
    """The full model (LM head) takes the embedder's adapter: same embeddings and same logits as merged."""
    mode, out = MODES[mode_name], trained[mode_name]
    generator = load_for_generation(tiny_qwen2vl, out / "adapter")
    inner = generator.get_base_model().model  # the Qwen2VLModel inside the full model, LoRA injected
    processor = load_processor(tiny_qwen2vl)
    adapted = Embedder(inner, processor, mode, device="cpu").encode(items)
    merged = Embedder.from_pretrained(out / "model", mode=mode, device="cpu").encode(items)
    assert _max_diff(adapted, merged) <= TOL

    set_bidirectional(generator, False)  # as the judge runs it (the embedder may have switched it)
    merged_full = load_for_generation(tiny_qwen2vl)
    merged_full.model.load_state_dict(load_for_embedding(out / "model").state_dict())
    plain = set_bidirectional(load_for_generation(tiny_qwen2vl), False)
    set_bidirectional(merged_full, False)
    ids = processor(text=["a large red circle on the left"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = generator(input_ids=ids).logits
        assert _max_diff(logits, merged_full(input_ids=ids).logits) <= TOL
        assert _max_diff(logits, plain(input_ids=ids).logits) > 1e-3


def test_adapter_saved_from_the_full_model_loads_for_embedding(trained, tiny_qwen2vl, items, tmp_path):
    out = trained["mean-bidirectional"]
    load_for_generation(tiny_qwen2vl, out / "adapter").save_pretrained(tmp_path / "full")
    assert all(k.startswith("base_model.model.model.") for k in load_file(tmp_path / "full" / "adapter_model.safetensors"))
    adapted = Embedder.from_pretrained(tiny_qwen2vl, tmp_path / "full", device="cpu").encode(items)
    merged = Embedder.from_pretrained(out / "model", device="cpu").encode(items)
    assert _max_diff(adapted, merged) <= TOL


def _corrupt(source, target, edit):
    shutil.copytree(source, target)
    weights = load_file(target / "adapter_model.safetensors")
    edit(weights)
    save_file(weights, target / "adapter_model.safetensors")
    return target


RENAMED = KEY.replace("language_model.layers.1", "model.layers.1")  # the transformers 4 layout
EXTRA = "base_model.model.visual.blocks.0.attn.qkv.lora_A.weight"
DEFECTS = {
    "renamed": (lambda w: w.__setitem__(RENAMED, w.pop(KEY)), [KEY, RENAMED]),
    "missing": (lambda w: w.pop(KEY), [KEY]),
    "extra": (lambda w: w.__setitem__(EXTRA, torch.zeros(4, 32)), [EXTRA]),
    "no_prefix": (lambda w: w.__setitem__("lm_head.weight", torch.zeros(2, 2)), ["lm_head.weight"]),
}


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("defect", DEFECTS)
def test_a_bad_adapter_key_is_an_error_naming_it(trained, tiny_qwen2vl, tmp_path, defect, loader):
    edit, named = DEFECTS[defect]
    bad = _corrupt(trained["mean-bidirectional"] / "adapter", tmp_path / "bad", edit)
    with pytest.raises(AdapterMismatchError) as error:
        LOADERS[loader](tiny_qwen2vl, bad)
    message = str(error.value)
    assert str(bad / "adapter_model.safetensors") in message
    for key in named:
        assert re.search(rf"'{re.escape(key)}'", message), (key, message)
    if defect != "no_prefix":
        assert "Expected exactly these" in message


@pytest.mark.parametrize("loader", LOADERS)
def test_weights_that_peft_drops_silently_are_an_error(trained, tiny_qwen2vl, monkeypatch, loader):
    """Keys all present but values never copied (PEFT ignoring the file) fail on the value check."""
    import peft.peft_model

    result = namedtuple("Result", "missing_keys unexpected_keys")
    monkeypatch.setattr(peft.peft_model, "set_peft_model_state_dict", lambda *a, **k: result([], []))
    with pytest.raises(AdapterMismatchError, match=r"loaded values differ from the file for keys \['base_model"):
        LOADERS[loader](tiny_qwen2vl, trained["mean-bidirectional"] / "adapter")
