"""The tiny model of every family: build, save, reload offline, run mixed batches, load for each stage."""
from __future__ import annotations

import json
import shutil
import sys

import huggingface_hub.constants
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText

from uniembed.model.loading import load_for_embedding, load_for_generation, set_bidirectional
from uniembed.model.families import family, family_of_dir
from uniembed.model.families.qwen import mrope_section
from uniembed.model.processor import load_processor
from uniembed.model.tiny import build_tiny_model, init_tiny_model, tiny_config
from uniembed.model.tokenizer import JUDGE_WORDS, assert_single_token, train_tokenizer


def _image(colour: str, size: int = 56) -> Image.Image:
    return Image.new("RGB", (size, size), colour)


def _mixed_batch(processor):
    """One text-only item and two image+text items, rendered with the chat template."""
    texts = ["a small blue star at the top"]
    for caption in ("a large red circle on the left", "a tiny green square"):
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": caption}]}]
        texts.append(processor.apply_chat_template(messages, add_generation_prompt=True))
    images = [_image("red"), _image("green")]
    return processor(text=texts, images=images, padding=True, return_tensors="pt")


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def test_importing_needs_no_torchvision():
    assert "torchvision" not in sys.modules


def test_mrope_section_sums_to_half_head_dim():
    assert mrope_section(128) == [16, 24, 24]
    assert sum(mrope_section(16)) == 8


def test_reload_gives_identical_logits(tiny_model_dir, offline):
    processor = load_processor(tiny_model_dir)
    chosen = family_of_dir(tiny_model_dir)
    assert type(processor) is chosen.processor_class
    before = init_tiny_model(tiny_config(processor, family_name=chosen.model_type), seed=0)
    after = AutoModelForImageTextToText.from_pretrained(tiny_model_dir, local_files_only=True).eval()
    assert type(after) is type(before)
    batch = _mixed_batch(processor)
    with torch.no_grad():
        assert torch.equal(before(**batch).logits, after(**batch).logits)


#: decoder tokens of a 56x56 image: Qwen-VL merges 2x2 patches (4); LLaVA-OneVision's anyres gives the base
#: tile's 16, the best grid's 16 and a newline per row (36)
TOKENS_56PX = {"qwen2_vl": 4, "qwen2_5_vl": 4, "qwen3_vl": 4, "llava_onevision": 36}


def test_mixed_batch_runs_and_56px_image_is_the_familys_token_count(tiny_model_dir):
    processor = load_processor(tiny_model_dir)
    batch = _mixed_batch(processor)
    chosen = family_of_dir(tiny_model_dir)
    if "image_grid_thw" in batch:     # the Qwen-VL families
        assert batch["image_grid_thw"].tolist() == [[1, 4, 4], [1, 4, 4]]
        assert batch["pixel_values"].shape[0] == 2 * 16
    pads = (batch["input_ids"] == processor.tokenizer.convert_tokens_to_ids(chosen.image_token)).sum(dim=1)
    assert pads.tolist() == [0, TOKENS_56PX[chosen.model_type], TOKENS_56PX[chosen.model_type]]
    model = load_for_generation(tiny_model_dir)
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (*batch["input_ids"].shape, model.config.text_config.vocab_size)
    assert torch.isfinite(logits).all()


def test_processor_loads_a_downloaded_style_directory(tiny_models, tmp_path):
    """A downloaded Qwen2-VL-7B-Instruct's layout: legacy preprocessor_config.json, chat_template.json."""
    source, target = tiny_models["qwen2_vl"], tmp_path / "downloaded"
    shutil.copytree(source, target)
    (target / "artifact_manifest.json").unlink()  # a download has none; the edits below would not verify
    image_config = json.loads((target / "processor_config.json").read_text())["image_processor"]
    (target / "processor_config.json").unlink()
    image_config.pop("size")
    image_config.update(min_pixels=56 * 56, max_pixels=28 * 28 * 1280, processor_class="Qwen2VLProcessor")
    (target / "preprocessor_config.json").write_text(json.dumps(image_config))
    template = (target / "chat_template.jinja").read_text()
    (target / "chat_template.json").write_text(json.dumps({"chat_template": template}))
    (target / "chat_template.jinja").unlink()
    tokenizer_config = json.loads((target / "tokenizer_config.json").read_text())
    tokenizer_config.update(processor_class="Qwen2VLProcessor", tokenizer_class="Qwen2Tokenizer")
    (target / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))

    processor = load_processor(target)
    assert isinstance(processor, family("qwen2_vl").processor_class)
    assert processor.chat_template and processor.image_processor.size.longest_edge == 28 * 28 * 1280
    assert _mixed_batch(processor)["image_grid_thw"].tolist() == [[1, 4, 4], [1, 4, 4]]


def test_chat_template_and_judge_words(tiny_model_dir):
    tokenizer = load_processor(tiny_model_dir).tokenizer
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Is it red?"}]}]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    default_system = ("" if family_of_dir(tiny_model_dir).model_type in ("qwen3_vl", "llava_onevision")
                      else "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n")   # only Qwen2(.5)-VL add one
    turn = ("<image>\nIs it red?" if family_of_dir(tiny_model_dir).model_type == "llava_onevision"   # images first
            else "<|vision_start|><|image_pad|><|vision_end|>Is it red?")
    assert rendered == default_system + f"<|im_start|>user\n{turn}<|im_end|>\n<|im_start|>assistant\n"
    assert (tokenizer.pad_token, tokenizer.eos_token) == ("<|endoftext|>", "<|im_end|>")
    assert len(set(assert_single_token(tokenizer, JUDGE_WORDS))) == 4
    with pytest.raises(ValueError, match="'hippopotamus' is not a single token"):
        assert_single_token(tokenizer, ["Yes", "hippopotamus"])


def test_tokenizer_training_is_deterministic(corpus):
    first, second = train_tokenizer(corpus, family("qwen2_vl")), train_tokenizer(corpus, family("qwen2_vl"))
    assert first.backend_tokenizer.to_str() == second.backend_tokenizer.to_str()


def test_same_seed_same_weights_other_seed_different(tiny_models, corpus, tmp_path):
    reference = load_file(tiny_models["qwen2_vl"] / "model.safetensors")
    same = load_file(build_tiny_model(tmp_path / "same", corpus, family_name="qwen2_vl", seed=0) / "model.safetensors")
    other = load_file(build_tiny_model(tmp_path / "other", corpus, family_name="qwen2_vl", seed=1) / "model.safetensors")
    assert reference.keys() == same.keys() == other.keys()
    assert all(torch.equal(reference[name], same[name]) for name in reference)
    assert not all(torch.equal(reference[name], other[name]) for name in reference)


def test_build_replaces_output_atomically(corpus, tmp_path):
    target = build_tiny_model(tmp_path / "model", corpus, family_name="qwen2_vl")
    (target / "stale.txt").write_text("left over")
    build_tiny_model(target, corpus, family_name="qwen2_vl")
    assert not (target / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_parameter_count(tiny_model_dir):
    model = load_for_generation(tiny_model_dir)
    assert 100_000 <= sum(p.numel() for p in model.parameters()) <= 1_000_000


def test_load_without_weights_names_the_path(tiny_models, tmp_path):
    (tmp_path / "config.json").write_text((tiny_models["qwen2_vl"] / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}.*no model weights"):
        load_for_embedding(tmp_path)
    with pytest.raises(FileNotFoundError, match="missing"):
        load_for_generation(tmp_path / "missing")


def test_bidirectional_lets_early_tokens_see_late_ones(tiny_model_dir):
    model = load_for_embedding(tiny_model_dir)
    ids = torch.tensor([[10, 20, 30, 40, 50]])
    changed = ids.clone()
    changed[0, -1] = 60

    def early_shift() -> float:
        with torch.no_grad():
            a, b = model(input_ids=ids).last_hidden_state, model(input_ids=changed).last_hidden_state
        return (a[0, 0] - b[0, 0]).abs().max().item()

    assert early_shift() == 0.0
    set_bidirectional(model, True)
    assert model.config.text_config.is_causal is False
    assert early_shift() > 1e-4
    set_bidirectional(model.config, False)
    assert early_shift() == 0.0


def _save_lora(model, path):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=4,
        target_modules=r".*language_model\.layers\.\d+\.(self_attn|mlp)\.\w+_proj",
        init_lora_weights=False,
    )
    get_peft_model(model, config).save_pretrained(path)


def test_adapter_loads_and_mismatches_are_errors(tiny_models, tmp_path):
    base = tiny_models["qwen2_vl"]
    _save_lora(load_for_embedding(base), tmp_path / "adapter")
    ids = torch.tensor([[10, 20, 30]])
    with torch.no_grad():
        plain = load_for_embedding(base)(input_ids=ids).last_hidden_state
        adapted = load_for_embedding(base, tmp_path / "adapter")(input_ids=ids).last_hidden_state
    assert not torch.allclose(plain, adapted)
    generator = load_for_generation(base, tmp_path / "adapter")  # keys moved under the full model's `model.`
    with torch.no_grad():
        assert torch.allclose(generator.get_base_model().model(input_ids=ids).last_hidden_state, adapted, atol=1e-6)
    with pytest.raises(ValueError, match="does not match the base model"):
        load_for_embedding(tiny_models["qwen2_5_vl"], tmp_path / "adapter")
