"""A saved tiny model directory holds every file a downloaded checkpoint of its family has, and stays loadable."""
from __future__ import annotations

import json

import pytest
import torch
from tokenizers import Tokenizer, models

from uniembed.model.processor import load_processor
from uniembed.model.families import family, family_of_dir
from uniembed.model.families.base import VLLM_HEAD_SIZES
from uniembed.model.saving import CHECKPOINT_FILES, missing_checkpoint_files
from uniembed.model.tiny import build_tiny_model, tiny_config
from uniembed.model.tokenizer import train_tokenizer


def test_saved_directory_has_every_checkpoint_file(tiny_model_dir):
    assert missing_checkpoint_files(tiny_model_dir) == []
    assert {"video_preprocessor_config.json", "preprocessor_config.json", "vocab.json", "merges.txt"} <= set(
        CHECKPOINT_FILES)


def test_video_preprocessor_config_matches_the_image_processor(tiny_model_dir):
    chosen = family_of_dir(tiny_model_dir)
    video = json.loads((tiny_model_dir / "video_preprocessor_config.json").read_text())
    image = load_processor(tiny_model_dir).image_processor
    assert video["video_processor_type"] == chosen.video_processor_name
    assert video["processor_class"] == chosen.processor_name
    for key in ("image_mean", "image_std", "rescale_factor", "do_normalize", "do_rescale", "do_resize",
                "do_convert_rgb", "resample", *(("patch_size", "merge_size", "temporal_patch_size")
                                                 if chosen.model_type != "llava_onevision" else ())):
        expected = getattr(image, key)
        assert video[key] == (list(expected) if isinstance(expected, tuple) else expected), key
    if chosen.model_type == "llava_onevision":   # one tile size, as the image processor's
        assert video["size"] == {"height": 56, "width": 56} and (image.size.height, image.size.width) == (56, 56)
        return
    assert video["size"] == {"shortest_edge": image.size.shortest_edge, "longest_edge": image.size.longest_edge}
    assert (video["min_pixels"], video["max_pixels"]) == (image.size.shortest_edge, image.size.longest_edge)
    flat = json.loads((tiny_model_dir / "preprocessor_config.json").read_text())
    assert (flat["min_pixels"], flat["max_pixels"], flat["patch_size"]) == (56 * 56, 112 * 112, chosen.patch_size)


def test_video_config_needs_the_image_settings():
    with pytest.raises(ValueError, match="lacks"):
        family("qwen2_vl").processor_files({"size": {"shortest_edge": 1, "longest_edge": 2}})


def test_vocab_and_merges_rebuild_the_same_bpe(tiny_models):
    """vocab.json + merges.txt (what a slow Qwen2Tokenizer reads) hold the tokenizer.json model."""
    directory = tiny_models["qwen2_vl"]
    saved = json.loads((directory / "tokenizer.json").read_text())["model"]
    vocab = json.loads((directory / "vocab.json").read_text())
    assert vocab == saved["vocab"]
    rebuilt = Tokenizer(models.BPE.from_file(str(directory / "vocab.json"), str(directory / "merges.txt")))
    reference = Tokenizer.from_file(str(directory / "tokenizer.json"))
    for word in ("Ġcircle", "Ġcandidate", "Yes"):
        assert rebuilt.model.token_to_id(word) == reference.model.token_to_id(word) is not None


def test_processor_of_the_saved_directory_processes_as_before(tiny_model_dir):
    processor = load_processor(tiny_model_dir)
    from PIL import Image

    text = processor.apply_chat_template([{"role": "user", "content": [{"type": "image"},
                                                                       {"type": "text", "text": "a red circle"}]}],
                                         tokenize=False)
    batch = processor(text=[text], images=[Image.new("RGB", (56, 56), "red")], return_tensors="pt")
    if "image_grid_thw" in batch:
        assert batch["image_grid_thw"].tolist() == [[1, 4, 4]]
    assert torch.isfinite(batch["pixel_values"]).all()


@pytest.mark.parametrize("hidden, heads", [(64, 4), (64, 8), (96, 2)])
def test_head_sizes_vllm_cannot_serve_are_refused(corpus, hidden, heads):
    processor = family("qwen2_vl").build_processor(train_tokenizer(corpus, family("qwen2_vl")),
                                                   min_pixels=56 * 56, max_pixels=112 * 112)
    with pytest.raises(ValueError, match=f"{hidden} / {heads} = {hidden // heads} is not one vLLM"):
        tiny_config(processor, family_name="qwen2_vl", hidden_size=hidden, num_heads=heads, num_kv_heads=1)


def test_default_sizes_have_a_servable_head_size(tiny_model_dir):
    text = json.loads((tiny_model_dir / "config.json").read_text())["text_config"]
    head = text["hidden_size"] // text["num_attention_heads"]
    assert head in VLLM_HEAD_SIZES
    # a family with an explicit head_dim (Qwen3-VL) must save it: its default (128) would not match the
    # M-RoPE sections, which vLLM asserts at engine start
    from transformers import AutoConfig

    assert getattr(AutoConfig.from_pretrained(tiny_model_dir).get_text_config(), "head_dim", head) == head


def test_judge_prompt_words_are_whole_tokens(corpus, tmp_path):
    """The tokenizer also learns the fixed prompt texts: the judge instruction is ~60 tokens, not ~170 bytes."""
    from uniembed.judge.prompt import JUDGE_INSTRUCTION

    tokenizer = load_processor(build_tiny_model(tmp_path / "m", corpus, family_name="qwen2_vl")).tokenizer
    assert len(tokenizer(JUDGE_INSTRUCTION)["input_ids"]) < 70
    assert "Ġcandidate" in tokenizer.convert_ids_to_tokens(tokenizer(" candidate")["input_ids"])
